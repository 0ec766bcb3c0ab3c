package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// consumeTimeout bounds how long a test waits for messages it sent to be
// delivered: the client's first rebalance runs right after Start, so delivery
// normally takes well under a second.
const consumeTimeout = 20 * time.Second

// TestSendModes sends with each of the client's send modes and checks, through a
// push consumer reading the topic from its first offset, that every message
// arrives with its body, tag and keys intact.
func TestSendModes(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)

	t.Run("sync", func(t *testing.T) {
		t.Parallel()
		topic := UniqueName("Sync")
		adm.CreateTopic(c.BrokerAddr, topic, 4)
		p := NewProducer(t, c.NameSrvAddr)
		results := SendN(t, p, topic, "TagS", topic, 20)

		next := map[int]int64{} // queue -> next expected offset
		for i, r := range results {
			if r.MsgID == "" || len(r.OffsetMsgID) != 32 {
				t.Errorf("send %d: MsgID %q OffsetMsgID %q: want a unique key and a 32-char offset ID", i, r.MsgID, r.OffsetMsgID)
			}
			if r.MessageQueue == nil || r.MessageQueue.Topic != topic {
				t.Fatalf("send %d: queue %v, want topic %s", i, r.MessageQueue, topic)
			}
			q := r.MessageQueue.QueueId
			if r.QueueOffset != next[q] {
				t.Errorf("send %d: queue %d offset %d, want %d (offsets of a new queue count from 0)", i, q, r.QueueOffset, next[q])
			}
			next[q] = r.QueueOffset + 1
		}
		if len(next) != 4 {
			t.Errorf("messages went to %d queues, want all 4 (round robin)", len(next))
		}

		pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
		WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= len(results) },
			"%d of %d messages consumed", pc.Received.Distinct(), len(results))
		for i, r := range results {
			m := pc.Received.Get(r.MsgID)
			if m == nil {
				t.Errorf("message %d (%s) not consumed", i, r.MsgID)
				continue
			}
			if got, want := string(m.Body), fmt.Sprintf("%s-%d", topic, i); got != want {
				t.Errorf("message %d body %q, want %q", i, got, want)
			}
			if m.GetTags() != "TagS" || m.GetKeys() != fmt.Sprintf("k%d", i) {
				t.Errorf("message %d tags %q keys %q, want TagS, k%d", i, m.GetTags(), m.GetKeys(), i)
			}
			if m.Queue == nil || m.Queue.QueueId != r.MessageQueue.QueueId || m.QueueOffset != r.QueueOffset {
				t.Errorf("message %d consumed at %v offset %d, sent to queue %d offset %d", i, m.Queue, m.QueueOffset, r.MessageQueue.QueueId, r.QueueOffset)
			}
			if m.OffsetMsgId != r.OffsetMsgID {
				t.Errorf("message %d offset ID %s, send result said %s", i, m.OffsetMsgId, r.OffsetMsgID)
			}
			if m.BornTimestamp <= 0 || m.StoreTimestamp < m.BornTimestamp-60_000 {
				t.Errorf("message %d born %d stored %d", i, m.BornTimestamp, m.StoreTimestamp)
			}
		}
	})

	t.Run("async", func(t *testing.T) {
		t.Parallel()
		topic := UniqueName("Async")
		adm.CreateTopic(c.BrokerAddr, topic, 4)
		p := NewProducer(t, c.NameSrvAddr)
		const n = 50
		var done, failed atomic.Int64
		var mu sync.Mutex
		ids := map[string]bool{}
		var firstErr atomic.Value
		for i := 0; i < n; i++ {
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("async-%d", i)))
			err := p.SendAsync(context.Background(), func(_ context.Context, r *primitive.SendResult, err error) {
				if err != nil || r.Status != primitive.SendOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err %v result %v", err, r))
				} else {
					mu.Lock()
					ids[r.MsgID] = true
					mu.Unlock()
				}
				done.Add(1)
			}, m)
			if err != nil {
				t.Fatalf("send async %d: %v", i, err)
			}
		}
		WaitFor(t, consumeTimeout, func() bool { return done.Load() == n }, "%d of %d async callbacks", done.Load(), n)
		if failed.Load() > 0 {
			t.Fatalf("%d async sends failed; first: %v", failed.Load(), firstErr.Load())
		}
		pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
		WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= n },
			"%d of %d messages consumed", pc.Received.Distinct(), n)
		mu.Lock()
		defer mu.Unlock()
		for id := range ids {
			if pc.Received.Count(id) == 0 {
				t.Errorf("async message %s not consumed", id)
			}
		}
	})

	t.Run("oneway", func(t *testing.T) {
		t.Parallel()
		topic := UniqueName("Oneway")
		adm.CreateTopic(c.BrokerAddr, topic, 4)
		p := NewProducer(t, c.NameSrvAddr)
		const n = 20
		var ids []string
		for i := 0; i < n; i++ {
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("oneway-%d", i)))
			if err := p.SendOneWay(context.Background(), m); err != nil {
				t.Fatalf("send oneway %d: %v", i, err)
			}
			// The client stamps the unique key on the message as it sends it.
			ids = append(ids, m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex))
		}
		pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
		WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= n },
			"%d of %d oneway messages consumed", pc.Received.Distinct(), n)
		for i, id := range ids {
			if id != "" && pc.Received.Count(id) == 0 {
				t.Errorf("oneway message %d (%s) not consumed", i, id)
			}
		}
	})

	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		topic := UniqueName("Batch")
		adm.CreateTopic(c.BrokerAddr, topic, 4)
		p := NewProducer(t, c.NameSrvAddr)
		const n = 10
		var msgs []*primitive.Message
		want := map[string]bool{}
		for i := 0; i < n; i++ {
			body := fmt.Sprintf("batch-%d", i)
			m := primitive.NewMessage(topic, []byte(body))
			m.WithTag("TagB")
			msgs = append(msgs, m)
			want[body] = true
		}
		r, err := p.SendSync(context.Background(), msgs...)
		if err != nil {
			t.Fatalf("send batch: %v", err)
		}
		if r.Status != primitive.SendOK || r.QueueOffset != 0 {
			t.Fatalf("send batch: status %v queue offset %d, want SEND_OK at 0", r.Status, r.QueueOffset)
		}
		// A batch goes to one queue; the offset ID names the first message.
		pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
		WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= n },
			"%d of %d batched messages consumed", pc.Received.Distinct(), n)
		offsets := map[int64]bool{}
		for _, id := range pc.Received.IDs() {
			m := pc.Received.Get(id)
			if !want[string(m.Body)] {
				t.Errorf("unexpected message %q", m.Body)
			}
			delete(want, string(m.Body))
			if m.Queue.QueueId != r.MessageQueue.QueueId {
				t.Errorf("batched message %q in queue %d, batch sent to %d", m.Body, m.Queue.QueueId, r.MessageQueue.QueueId)
			}
			if m.GetTags() != "TagB" {
				t.Errorf("batched message %q tags %q, want TagB", m.Body, m.GetTags())
			}
			offsets[m.QueueOffset] = true
		}
		if len(want) > 0 {
			t.Errorf("batched messages not consumed: %v", want)
		}
		for i := int64(0); i < n; i++ {
			if !offsets[i] {
				t.Errorf("no batched message at queue offset %d (each message of a batch gets its own offset)", i)
			}
		}
	})
}

// TestAutoCreateTopic sends to a topic nobody created: the client borrows the
// route of TBW102, the broker creates the topic and registers it, and a consumer
// can then read it.
func TestAutoCreateTopic(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Auto")
	if adm.RouteExists(topic) {
		t.Fatalf("route of %s exists before the first send", topic)
	}
	p := NewProducer(t, c.NameSrvAddr)
	results := SendN(t, p, topic, "", "auto", 8)
	for i, r := range results {
		if r.MessageQueue.QueueId < 0 || r.MessageQueue.QueueId >= 4 {
			t.Errorf("send %d went to queue %d; an auto-created topic has 4 queues (the client's defaultTopicQueueNums)", i, r.MessageQueue.QueueId)
		}
	}
	adm.WaitRoute(topic, 1)
	pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= len(results) },
		"%d of %d messages of the auto-created topic consumed", pc.Received.Distinct(), len(results))
}

// TestAutoCreateDisabled checks that with autoCreateTopicEnable=false a send to
// an unknown topic fails with an error that names the topic, and creates nothing.
func TestAutoCreateDisabled(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{"broker.autoCreateTopicEnable=false"}})
	adm := NewAdmin(t, c.NameSrvAddr)
	p := NewProducer(t, c.NameSrvAddr)
	topic := UniqueName("NoAuto")
	_, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x")))
	if err == nil {
		t.Fatalf("send to unknown topic %s succeeded with autoCreateTopicEnable=false", topic)
	}
	t.Logf("client error: %v", err)
	if !strings.Contains(err.Error(), topic) {
		t.Errorf("error %q does not name the topic %s", err, topic)
	}
	if adm.RouteExists(topic) {
		t.Errorf("topic %s was created although autoCreateTopicEnable=false", topic)
	}

	// A topic created explicitly still works.
	known := UniqueName("Known")
	adm.CreateTopic(c.BrokerAddr, known, 2)
	SendN(t, p, known, "", "known", 2)
}
