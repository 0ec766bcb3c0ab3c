package tests

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqd/mqd/storage"
)

// shortDelayLevels makes delay levels quick enough for tests: level n is n
// seconds (retries use level 3 + reconsume times).
const shortDelayLevels = "messageDelayLevel=1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s 17s 18s"

// arrival is one delivery seen by a timedConsumer.
type arrival struct {
	msg *primitive.MessageExt
	at  time.Time
}

// timedConsumer is a clustering push consumer that records when each
// delivery arrived; handle decides the consume result (nil: success).
type timedConsumer struct {
	rocketmq.PushConsumer
	mu       sync.Mutex
	arrivals map[string][]arrival // by UNIQ_KEY
}

func startTimedConsumer(t *testing.T, namesrv, topic, group string,
	handle func(m *primitive.MessageExt) consumer.ConsumeResult, extra ...consumer.Option) *timedConsumer {
	t.Helper()
	opts := append([]consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		consumer.WithGroupName(group),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithInstance(instance("tc")),
		consumer.WithConsumeMessageBatchMaxSize(1),
	}, extra...)
	SkipClientUnderRace(t)
	c, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	tc := &timedConsumer{PushConsumer: c, arrivals: map[string][]arrival{}}
	err = c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			res := consumer.ConsumeSuccess
			for _, m := range msgs {
				tc.mu.Lock()
				id := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
				tc.arrivals[id] = append(tc.arrivals[id], arrival{msg: m, at: time.Now()})
				tc.mu.Unlock()
				if handle != nil {
					if r := handle(m); r != consumer.ConsumeSuccess {
						res = r
					}
				}
			}
			return res, nil
		})
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start consumer of %s: %v", topic, err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = c.Shutdown() }) }
	t.Cleanup(stop)
	return tc
}

// get returns the deliveries of a message.
func (c *timedConsumer) get(id string) []arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]arrival(nil), c.arrivals[id]...)
}

// distinct is how many distinct messages arrived.
func (c *timedConsumer) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.arrivals)
}

// storeOf returns the in-process broker's store.
func storeOf(t *testing.T, c *Cluster) storage.Store {
	t.Helper()
	b, ok := c.Module("app.broker").(interface{ Store() storage.Store })
	if !ok {
		t.Fatal("app.broker not loaded")
	}
	return b.Store()
}

// storedCount is the number of messages in all queues of topic.
func storedCount(t *testing.T, c *Cluster, topic string, queues int) int64 {
	st := storeOf(t, c)
	var n int64
	for q := 0; q < queues; q++ {
		n += st.MaxOffset(topic, int32(q))
	}
	return n
}

// sendDelayed sends a message with a delay level or a delivery time and
// returns its ID and when the send began.
func sendDelayed(t *testing.T, p rocketmq.Producer, topic, body string, level int, at time.Time) (string, time.Time) {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	if level > 0 {
		m.WithDelayTimeLevel(level)
	}
	if !at.IsZero() {
		m.WithDelayTimestamp(at)
	}
	began := time.Now()
	res, err := p.SendSync(context.Background(), m)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send %s: %v %v", body, res, err)
	}
	return res.MsgID, began
}

// TestDelayLevel sends messages with delay levels 2 and 4 (2 s and 4 s with
// short levels): neither is delivered before its delay, both arrive within a
// generous tolerance after it, on their real topic and queue, with DELAY
// removed and REAL_TOPIC / REAL_QID kept (as Java delivers them).
func TestDelayLevel(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{shortDelayLevels}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Delay")
	adm.CreateTopic(c.BrokerAddr, topic, 2)
	tc := startTimedConsumer(t, c.NameSrvAddr, topic, UniqueName("DelayG"), nil)
	p := NewProducer(t, c.NameSrvAddr)

	type sent struct {
		id    string
		began time.Time
		delay time.Duration
	}
	var msgs []sent
	for _, level := range []int{4, 2} {
		id, began := sendDelayed(t, p, topic, fmt.Sprintf("level-%d", level), level, time.Time{})
		msgs = append(msgs, sent{id, began, time.Duration(level) * time.Second})
	}
	WaitFor(t, 30*time.Second, func() bool { return tc.distinct() >= len(msgs) }, "%d of %d delayed messages consumed", tc.distinct(), len(msgs))
	for _, s := range msgs {
		got := tc.get(s.id)
		if len(got) != 1 {
			t.Fatalf("message %s delivered %d times", s.id, len(got))
		}
		m, at := got[0].msg, got[0].at
		// Delivery times are whole milliseconds of the schedule record's
		// store time, which is the send's millisecond, so a delivery up to
		// 1 ms before began+delay (measured in nanoseconds) is on time.
		early := s.began.Add(s.delay)
		if m.StoreTimestamp < early.UnixMilli() || at.Before(early.Truncate(time.Millisecond)) {
			t.Errorf("%s (delay %s) delivered early: stored at %d, arrived %s after send", m.Body, s.delay,
				m.StoreTimestamp-s.began.UnixMilli(), at.Sub(s.began))
		}
		if late := at.Sub(s.began) - s.delay; late > 8*time.Second {
			t.Errorf("%s (delay %s) arrived %s late", m.Body, s.delay, late)
		}
		if m.Topic != topic || m.GetProperty("DELAY") != "" || m.GetProperty("REAL_TOPIC") != topic ||
			m.GetProperty("REAL_QID") != fmt.Sprint(m.Queue.QueueId) {
			t.Errorf("delivered message: topic %s queue %d props %v", m.Topic, m.Queue.QueueId, m.GetProperties())
		}
		if m.BornTimestamp > s.began.UnixMilli()+1000 || m.BornTimestamp < s.began.UnixMilli()-1000 {
			t.Errorf("born timestamp %d not kept (sent at %d)", m.BornTimestamp, s.began.UnixMilli())
		}
		t.Logf("%s: delay %s, arrived after %s", m.Body, s.delay, at.Sub(s.began).Round(time.Millisecond))
	}
	if n := storedCount(t, c, topic, 2); n != 2 {
		t.Errorf("real topic holds %d messages, want 2", n)
	}
}

// TestDelayedMessagesSurviveRestart delivers one message of level 4 before a
// broker restart and sends another of the same level right before it: after
// the restart the pending one is delivered exactly once and the first is not
// delivered again (the level's offset was persisted in delayOffset.json).
func TestDelayedMessagesSurviveRestart(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{shortDelayLevels}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("DelayRestart")
	adm.CreateTopic(c.BrokerAddr, topic, 1)
	p := NewProducer(t, c.NameSrvAddr)
	const level = 4

	first, _ := sendDelayed(t, p, topic, "before-restart", level, time.Time{})
	WaitFor(t, 30*time.Second, func() bool { return storedCount(t, c, topic, 1) == 1 }, "first delayed message delivered")
	var pending []string
	for i := 0; i < 3; i++ {
		id, _ := sendDelayed(t, p, topic, fmt.Sprintf("pending-%d", i), level, time.Time{})
		pending = append(pending, id)
	}
	if n := storedCount(t, c, topic, 1); n != 1 {
		t.Logf("note: %d messages delivered before the restart began", n-1)
	}
	c.RestartBroker()

	tc := startTimedConsumer(t, c.NameSrvAddr, topic, UniqueName("DelayRestartG"), nil)
	WaitFor(t, 45*time.Second, func() bool { return tc.distinct() >= 1+len(pending) },
		"%d of %d messages consumed after the restart", tc.distinct(), 1+len(pending))
	for _, id := range append([]string{first}, pending...) {
		if n := len(tc.get(id)); n != 1 {
			t.Errorf("message %s consumed %d times, want 1", id, n)
		}
	}
	if n := storedCount(t, c, topic, 1); n != int64(1+len(pending)) {
		t.Errorf("real topic holds %d messages, want %d (a delayed message was lost or delivered twice)", n, 1+len(pending))
	}
}

// TestTimerMessage sends messages with a delivery time (the client's
// WithDelayTimestamp, RocketMQ 5's TIMER_DELIVER_MS): one due before a broker
// restart, others due after it. Each is delivered once, not before its time,
// and the restart neither loses nor repeats any.
func TestTimerMessage(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Timer")
	adm.CreateTopic(c.BrokerAddr, topic, 2)
	p := NewProducer(t, c.NameSrvAddr)

	due := map[string]time.Time{}
	at := time.Now().Add(1500 * time.Millisecond)
	first, _ := sendDelayed(t, p, topic, "timer-first", 0, at)
	due[first] = at
	WaitFor(t, 30*time.Second, func() bool { return storedCount(t, c, topic, 2) == 1 }, "first timer message delivered")
	if d := time.Until(at); d > 0 {
		t.Fatalf("first timer message delivered %s early", d)
	}
	// Due in reverse order of sending: the timer delivers by time, not arrival.
	for i := 0; i < 4; i++ {
		at := time.Now().Add(time.Duration(6-i) * time.Second)
		id, _ := sendDelayed(t, p, topic, fmt.Sprintf("timer-%d", i), 0, at)
		due[id] = at
	}
	c.RestartBroker()

	tc := startTimedConsumer(t, c.NameSrvAddr, topic, UniqueName("TimerG"), nil)
	WaitFor(t, 45*time.Second, func() bool { return tc.distinct() >= len(due) }, "%d of %d timer messages consumed", tc.distinct(), len(due))
	for id, at := range due {
		got := tc.get(id)
		if len(got) != 1 {
			t.Errorf("timer message %s consumed %d times, want 1", id, len(got))
			continue
		}
		m := got[0].msg
		if m.StoreTimestamp < at.UnixMilli() {
			t.Errorf("%s stored on its topic %d ms before its delivery time", m.Body, at.UnixMilli()-m.StoreTimestamp)
		}
		if late := time.UnixMilli(m.StoreTimestamp).Sub(at); late > 8*time.Second {
			t.Errorf("%s delivered %s late", m.Body, late)
		}
		if m.Topic != topic || m.GetProperty("TIMER_DELIVER_MS") == "" {
			t.Errorf("timer message delivered as topic %s props %v", m.Topic, m.GetProperties())
		}
	}
	if n := storedCount(t, c, topic, 2); n != int64(len(due)) {
		t.Errorf("real topic holds %d messages, want %d", n, len(due))
	}

	// A delivery time beyond timerMaxDelaySec (3 days) is refused, not kept.
	m := primitive.NewMessage(topic, []byte("too-far")).WithDelayTimestamp(time.Now().Add(4 * 24 * time.Hour))
	if res, err := p.SendSync(context.Background(), m); err == nil && res.Status == primitive.SendOK {
		t.Errorf("timer message 4 days ahead accepted: %v", res)
	}
}
