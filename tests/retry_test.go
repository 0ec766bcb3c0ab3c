package tests

import (
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqd/mqd/storage/message"
)

// TestRetryThenSuccess fails each message once (ConsumeRetryLater): the
// client sends it back (CONSUMER_SEND_MSG_BACK), the broker stores it in
// %RETRY%<group> through delay level 3 (3 s with short levels), and it comes
// back on its original topic with ReconsumeTimes 1, then succeeds.
func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{shortDelayLevels}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Retry")
	adm.CreateTopic(c.BrokerAddr, topic, 2)
	group := UniqueName("RetryG")
	// The broker creates the retry topic at the consumer's first heartbeat;
	// creating it first spares the test the client's 30 s route refresh.
	adm.CreateTopic(c.BrokerAddr, retryTopicOf(group), 1)

	var mu sync.Mutex
	failed := map[string]time.Time{}
	tc := startTimedConsumer(t, c.NameSrvAddr, topic, group, func(m *primitive.MessageExt) consumer.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		id := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
		if _, done := failed[id]; !done {
			failed[id] = time.Now()
			return consumer.ConsumeRetryLater
		}
		return consumer.ConsumeSuccess
	})
	p := NewProducer(t, c.NameSrvAddr)
	results := SendN(t, p, topic, "TagR", "retry", 3)

	for _, r := range results {
		WaitFor(t, 45*time.Second, func() bool { return len(tc.get(r.MsgID)) >= 2 }, "message %s redelivered after its failure", r.MsgID)
		got := tc.get(r.MsgID)
		first, again := got[0].msg, got[1].msg
		if first.ReconsumeTimes != 0 || again.ReconsumeTimes < 1 {
			t.Errorf("reconsume times %d then %d, want 0 then >= 1", first.ReconsumeTimes, again.ReconsumeTimes)
		}
		if again.Topic != topic || string(again.Body) != string(first.Body) || again.GetTags() != "TagR" {
			t.Errorf("retried message: topic %s body %q tags %q, want %s %q TagR", again.Topic, again.Body, again.GetTags(), topic, first.Body)
		}
		if again.GetProperty(message.PropertyRetryTopic) != topic || again.GetProperty(message.PropertyOriginMessageID) == "" {
			t.Errorf("retried message properties %v: want RETRY_TOPIC=%s and ORIGIN_MESSAGE_ID", again.GetProperties(), topic)
		}
		// Level 3 is 3 s: not back before that.
		mu.Lock()
		failedAt := failed[r.MsgID]
		mu.Unlock()
		if d := got[1].at.Sub(failedAt); d < 2900*time.Millisecond {
			t.Errorf("retry came back after %s, before the 3 s of level 3", d)
		}
	}
	if !adm.RouteExists(retryTopicOf(group)) {
		t.Errorf("retry topic %s has no route", retryTopicOf(group))
	}
	// Every message succeeded on its second delivery: nothing further arrives
	// in the retry topic than the three copies.
	if n := storedCount(t, c, retryTopicOf(group), 1); n != int64(len(results)) {
		t.Errorf("retry topic holds %d messages, want %d", n, len(results))
	}
}

func retryTopicOf(group string) string { return "%RETRY%" + group }

// TestDeadLetterAfterMaxRetries always fails with WithMaxReconsumeTimes(2):
// the message is delivered three times (reconsume times 0, 1, 2) and then
// lands in %DLQ%<group> (one queue, readable), from which a consumer of that
// topic receives it with its original body and properties.
func TestDeadLetterAfterMaxRetries(t *testing.T) {
	t.Parallel()
	// Level 3 + n must be short for n = 0, 1: all levels 1 s.
	c := StartCluster(t, ClusterOptions{Broker: []string{"messageDelayLevel=1s 1s 1s 1s 1s 1s 1s 1s"}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Dlq")
	adm.CreateTopic(c.BrokerAddr, topic, 1)
	group := UniqueName("DlqG")
	adm.CreateTopic(c.BrokerAddr, retryTopicOf(group), 1)

	tc := startTimedConsumer(t, c.NameSrvAddr, topic, group,
		func(*primitive.MessageExt) consumer.ConsumeResult { return consumer.ConsumeRetryLater },
		consumer.WithMaxReconsumeTimes(2))
	p := NewProducer(t, c.NameSrvAddr)
	res := SendN(t, p, topic, "TagD", "dead", 1)[0]

	dlq := "%DLQ%" + group
	WaitFor(t, 60*time.Second, func() bool { return storedCount(t, c, dlq, 1) >= 1 }, "message in %s (delivered %d times)", dlq, len(tc.get(res.MsgID)))
	got := tc.get(res.MsgID)
	if len(got) != 3 {
		t.Errorf("delivered %d times before the DLQ, want 3 (max reconsume times 2)", len(got))
	}
	for i, a := range got {
		if a.msg.ReconsumeTimes != int32(i) {
			t.Errorf("delivery %d has reconsume times %d", i, a.msg.ReconsumeTimes)
		}
	}

	// The DLQ topic is routable and readable by a consumer.
	adm.WaitRoute(dlq, 1)
	dc := StartPushConsumer(t, c.NameSrvAddr, dlq, ConsumerOptions{FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return dc.Received.Distinct() >= 1 }, "DLQ message consumed")
	m := dc.Received.Get(res.MsgID)
	if m == nil {
		t.Fatalf("DLQ holds another message: %v", dc.Received.IDs())
	}
	if string(m.Body) != "dead-0" || m.GetTags() != "TagD" || m.GetProperty(message.PropertyRetryTopic) != topic ||
		m.GetProperty(message.PropertyOriginMessageID) == "" || m.GetProperty("DELAY") != "" || m.ReconsumeTimes != 3 {
		t.Errorf("DLQ message body %q reconsume %d props %v", m.Body, m.ReconsumeTimes, m.GetProperties())
	}
	if n := storedCount(t, c, dlq, 1); n != 1 {
		t.Errorf("DLQ holds %d messages, want 1", n)
	}
}
