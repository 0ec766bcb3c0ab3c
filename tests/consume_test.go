package tests

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/plugins/broker"
)

// ownedOf returns the queues of topic that pc owns, sorted by queue ID.
func ownedOf(pc *PushConsumer, topic string) []int {
	var ids []int
	for _, mq := range pc.OwnedQueues() {
		if mq.Topic == topic {
			ids = append(ids, mq.QueueId)
		}
	}
	sort.Ints(ids)
	return ids
}

// TestClusteringRebalance runs two push consumers of one group: once the queues
// are split between them (the broker lists both client IDs and tells the first
// that the group changed), every message sent is consumed exactly once overall
// and both consumers get a share.
func TestClusteringRebalance(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Rebalance")
	const queues = 8
	adm.CreateTopic(c.BrokerAddr, topic, queues)

	group := UniqueName("RebalanceG")
	c1 := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group})
	c2 := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group})

	// The split is stable when the two consumers hold disjoint, non-empty sets
	// that cover the topic. Without NOTIFY_CONSUMER_IDS_CHANGED the first
	// consumer only notices the second at its 20 s rebalance tick.
	start := time.Now()
	WaitFor(t, 45*time.Second, func() bool {
		a, b := ownedOf(c1, topic), ownedOf(c2, topic)
		if len(a) == 0 || len(b) == 0 || len(a)+len(b) != queues {
			return false
		}
		seen := map[int]bool{}
		for _, q := range append(a, b...) {
			if seen[q] {
				return false
			}
			seen[q] = true
		}
		return true
	}, "queues split between two consumers: c1 %v c2 %v", ownedOf(c1, topic), ownedOf(c2, topic))
	t.Logf("queues split after %s: c1 %v c2 %v", time.Since(start).Round(time.Millisecond), ownedOf(c1, topic), ownedOf(c2, topic))

	p := NewProducer(t, c.NameSrvAddr)
	const n = 200
	results := SendN(t, p, topic, "", "rb", n)
	total := func() int { return c1.Received.Distinct() + c2.Received.Distinct() }
	WaitFor(t, consumeTimeout, func() bool { return total() >= n }, "%d of %d messages consumed", total(), n)

	for i, r := range results {
		got := c1.Received.Count(r.MsgID) + c2.Received.Count(r.MsgID)
		if got != 1 {
			t.Errorf("message %d (%s, queue %d) consumed %d times, want exactly once", i, r.MsgID, r.MessageQueue.QueueId, got)
		}
	}
	if c1.Received.Total() == 0 || c2.Received.Total() == 0 {
		t.Errorf("one consumer got nothing: c1 %d, c2 %d", c1.Received.Total(), c2.Received.Total())
	}
	t.Logf("c1 consumed %d, c2 consumed %d", c1.Received.Total(), c2.Received.Total())
}

// TestTagFilter subscribes with "A || B": messages tagged A and B arrive, those
// tagged C or untagged do not.
func TestTagFilter(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Tags")
	adm.CreateTopic(c.BrokerAddr, topic, 4)
	pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Expression: "A || B", FromFirst: true})

	p := NewProducer(t, c.NameSrvAddr)
	tags := []string{"A", "B", "C"}
	wantAB := 0
	// Three tags over four queues: every queue holds every tag, interleaved, so
	// that once the last A/B message of a queue has arrived any C before it
	// would have too.
	for i := 0; i < 36; i++ {
		tag := tags[i%3]
		if tag == "C" && i%2 == 0 {
			tag = "" // some untagged messages too
		}
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%d", tag, i)))
		if tag != "" {
			m.WithTag(tag)
		}
		r, err := p.SendSync(context.Background(), m)
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, err, r)
		}
		if tag == "A" || tag == "B" {
			wantAB++
		}
	}
	WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= wantAB },
		"%d of %d A/B messages consumed", pc.Received.Distinct(), wantAB)
	for _, id := range pc.Received.IDs() {
		m := pc.Received.Get(id)
		if tag := m.GetTags(); tag != "A" && tag != "B" {
			t.Errorf("message %q with tag %q delivered to a consumer of \"A || B\"", m.Body, tag)
		}
	}
	if got := pc.Received.Distinct(); got != wantAB {
		t.Errorf("consumed %d messages, want %d", got, wantAB)
	}
}

// TestPullFromOffset reads a queue at explicit offsets with the pull consumer,
// and checks that a pull parked at the end of the queue returns as soon as a
// message arrives (long polling).
func TestPullFromOffset(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Pull")
	adm.CreateTopic(c.BrokerAddr, topic, 2)

	p := NewProducer(t, c.NameSrvAddr, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	mqs := adm.WaitRoute(topic, 2)
	mq := *mqs[0]
	for _, q := range mqs {
		if q.QueueId == 1 {
			mq = *q
		}
	}
	const n = 6
	var ids []string
	for i := 0; i < n; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("pull-%d", i)))
		q := mq
		m.Queue = &q
		r, err := p.SendSync(context.Background(), m)
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, err, r)
		}
		if r.MessageQueue.QueueId != mq.QueueId || r.QueueOffset != int64(i) {
			t.Fatalf("send %d went to queue %d offset %d, want queue %d offset %d", i, r.MessageQueue.QueueId, r.QueueOffset, mq.QueueId, i)
		}
		ids = append(ids, r.MsgID)
	}

	pull := NewPullConsumer(t, c.NameSrvAddr, topic, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	q := mq
	res, err := pull.PullFrom(ctx, &q, 0, 32)
	if err != nil {
		t.Fatalf("pull from 0: %v", err)
	}
	if res.Status != primitive.PullFound || len(res.GetMessageExts()) != n {
		t.Fatalf("pull from 0: status %v, %d messages, want FOUND with %d", res.Status, len(res.GetMessageExts()), n)
	}
	if res.NextBeginOffset != n || res.MaxOffset != n || res.MinOffset != 0 {
		t.Errorf("pull from 0: next %d min %d max %d, want next %d min 0 max %d", res.NextBeginOffset, res.MinOffset, res.MaxOffset, n, n)
	}
	for i, m := range res.GetMessageExts() {
		if m.QueueOffset != int64(i) || string(m.Body) != fmt.Sprintf("pull-%d", i) {
			t.Errorf("pulled message %d: offset %d body %q", i, m.QueueOffset, m.Body)
		}
		if got := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex); got != ids[i] {
			t.Errorf("pulled message %d: unique key %s, sent %s", i, got, ids[i])
		}
	}

	q = mq
	res, err = pull.PullFrom(ctx, &q, 2, 3)
	if err != nil {
		t.Fatalf("pull from 2: %v", err)
	}
	if res.Status != primitive.PullFound || len(res.GetMessageExts()) != 3 || res.NextBeginOffset != 5 {
		t.Fatalf("pull 3 from 2: status %v, %d messages, next %d; want FOUND, 3, 5", res.Status, len(res.GetMessageExts()), res.NextBeginOffset)
	}
	if first := res.GetMessageExts()[0]; first.QueueOffset != 2 {
		t.Errorf("pull from 2 starts at offset %d", first.QueueOffset)
	}

	// Park a pull at the end of the queue, then send: the broker must answer
	// the parked pull with the new message, well before its 15-20 s hold.
	type pulled struct {
		res *primitive.PullResult
		err error
		at  time.Time
	}
	ch := make(chan pulled, 1)
	go func() {
		q := mq
		r, err := pull.PullFrom(ctx, &q, n, 1)
		ch <- pulled{r, err, time.Now()}
	}()
	// The broker says when the pull is parked; only then is the send an
	// arrival that must wake it.
	br := c.Module("app.broker").(*broker.Broker)
	WaitFor(t, 10*time.Second, func() bool { return br.ParkedPulls() > 0 }, "the pull is parked")
	m := primitive.NewMessage(topic, []byte("late"))
	q = mq
	m.Queue = &q
	if _, err := p.SendSync(context.Background(), m); err != nil {
		t.Fatalf("send late: %v", err)
	}
	sent := time.Now()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("parked pull: %v", got.err)
		}
		if got.res.Status != primitive.PullFound || len(got.res.GetMessageExts()) != 1 || string(got.res.GetMessageExts()[0].Body) != "late" {
			t.Fatalf("parked pull: status %v, %d messages; want the late message", got.res.Status, len(got.res.GetMessageExts()))
		}
		// An arrival must wake the parked pull; a broker that only re-checks
		// (RocketMQ every 5 s) or holds to the end (15 s) is too late.
		if d := got.at.Sub(sent); d > 2*time.Second {
			t.Errorf("parked pull answered %s after the message arrived, want < 2s", d)
		} else {
			t.Logf("parked pull answered %s after the send", d.Round(time.Millisecond))
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("a pull parked at the end of the queue was not answered within 25s of a new message")
	}
}

// TestConsumerResumesFromCommittedOffset stops a consumer group after it has
// consumed everything and starts it again (from-first for a new group, so a
// lost offset would show as re-delivery): it continues where it committed.
func TestConsumerResumesFromCommittedOffset(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Resume")
	adm.CreateTopic(c.BrokerAddr, topic, 4)
	group := UniqueName("ResumeG")
	p := NewProducer(t, c.NameSrvAddr)

	const n1, n2 = 40, 40
	first := SendN(t, p, topic, "", "before", n1)
	c1 := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return c1.Received.Distinct() >= n1 }, "%d of %d consumed before the stop", c1.Received.Distinct(), n1)
	c1.Shutdown() // commits the offsets

	second := SendN(t, p, topic, "", "after", n2)
	c2 := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool {
		for _, r := range second {
			if c2.Received.Count(r.MsgID) == 0 {
				return false
			}
		}
		return true
	}, "messages sent while the group was stopped: %d of %d consumed", c2.Received.Distinct(), n2)
	again := 0
	for _, r := range first {
		if c2.Received.Count(r.MsgID) > 0 {
			again++
		}
	}
	t.Logf("after the restart: %d of %d earlier messages delivered again", again, n1)
	if again == n1 {
		t.Errorf("all %d messages consumed before the stop were delivered again: the committed offsets were lost", n1)
	}
}
