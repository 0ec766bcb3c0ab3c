package tests

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// orderLog records, across consumers, each key's messages in the order they
// were processed, and the first violation of per-key order: a message handed
// over for the first time before every earlier message of its key.
type orderLog struct {
	mu        sync.Mutex
	seen      map[string]map[int]bool
	next      map[string]int // lowest sequence not yet seen, per key
	total     int
	violation string
}

func newOrderLog() *orderLog {
	return &orderLog{seen: map[string]map[int]bool{}, next: map[string]int{}}
}

func (l *orderLog) add(who string, msgs ...*primitive.MessageExt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		key, seqStr, _ := strings.Cut(string(m.Body), ":")
		seq, _ := strconv.Atoi(seqStr)
		l.total++
		if l.seen[key] == nil {
			l.seen[key] = map[int]bool{}
		}
		if l.seen[key][seq] {
			continue // a redelivery
		}
		if seq != l.next[key] && l.violation == "" {
			l.violation = fmt.Sprintf("%s processed %s:%d first while %s:%d was not yet processed (queue %d)",
				who, key, seq, key, l.next[key], m.Queue.QueueId)
		}
		l.seen[key][seq] = true
		for l.seen[key][l.next[key]] {
			l.next[key]++
		}
	}
}

func (l *orderLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.seen {
		n += len(s)
	}
	return n
}

func startOrderlyConsumer(t *testing.T, namesrv, topic, group, name string, log *orderLog) rocketmq.PushConsumer {
	t.Helper()
	SkipClientUnderRace(t)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		consumer.WithGroupName(group),
		consumer.WithConsumerOrder(true),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithInstance(instance("ord")),
		// Renew locks well within the broker's shortened lock lifetime.
		consumer.WithRebalanceLockInterval(time.Second),
	)
	if err != nil {
		t.Fatalf("new orderly consumer: %v", err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			log.add(name, msgs...)
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start orderly consumer: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = c.Shutdown() }) })
	return c
}

// TestOrderlyConsumption: a producer sends per-key sequences through the hash
// queue selector (each key always lands on one queue); two orderly consumers
// of one group take the queues under broker locks (LOCK_BATCH_MQ). Halfway,
// one consumer shuts down (unlocking its queues) and a third joins, so queues
// move twice. Every message is consumed and no message is processed for the
// first time before an earlier message of its key; redeliveries are allowed.
// The broker's lock lifetime is shortened (rebalanceLockMaxLiveTime) because
// the Go client does not unlock queues it loses in a rebalance.
func TestOrderlyConsumption(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{"rebalanceLockMaxLiveTime=6000"}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Orderly")
	const queues, keys, perKey = 4, 12, 30
	adm.CreateTopic(c.BrokerAddr, topic, queues)
	group := UniqueName("OrderlyG")
	log := newOrderLog()

	c1 := startOrderlyConsumer(t, c.NameSrvAddr, topic, group, "c1", log)
	startOrderlyConsumer(t, c.NameSrvAddr, topic, group, "c2", log)
	p := NewProducer(t, c.NameSrvAddr, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	send := func(from, to int) {
		for seq := from; seq < to; seq++ {
			for k := 0; k < keys; k++ {
				key := fmt.Sprintf("key%02d", k)
				m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s:%d", key, seq)))
				m.WithShardingKey(key)
				if _, err := p.SendSync(context.Background(), m); err != nil {
					t.Fatalf("send %s:%d: %v", key, seq, err)
				}
			}
		}
	}
	send(0, perKey/2)
	WaitFor(t, 45*time.Second, func() bool { return log.distinct() >= keys*perKey/3 }, "first third consumed (%d)", log.distinct())

	// c1 leaves (unlocking its queues) and c3 joins while messages flow.
	_ = c1.Shutdown()
	startOrderlyConsumer(t, c.NameSrvAddr, topic, group, "c3", log)
	send(perKey/2, perKey)
	WaitFor(t, 90*time.Second, func() bool { return log.distinct() >= keys*perKey }, "all %d consumed (%d)", keys*perKey, log.distinct())
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.violation != "" {
		t.Fatal(log.violation)
	}
	t.Logf("%d messages, %d deliveries (redeliveries %d), per-key order kept", keys*perKey, log.total, log.total-keys*perKey)
}

// TestBroadcasting: two broadcasting consumers of one group both receive every
// message; the broker keeps no offsets for them, and a clustering group of
// another name on the same topic is unaffected (it shares the messages, not
// the offsets).
func TestBroadcasting(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{"flushConsumerOffsetInterval=1000"}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Broadcast")
	adm.CreateTopic(c.BrokerAddr, topic, 4)
	group := UniqueName("BcastG")
	var bc []*PushConsumer
	for i := 0; i < 2; i++ {
		bc = append(bc, StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true,
			Extra: []consumer.Option{consumer.WithConsumerModel(consumer.BroadCasting)}}))
	}
	cl := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})

	p := NewProducer(t, c.NameSrvAddr)
	const n = 40
	results := SendN(t, p, topic, "", "bc", n)
	for i, pc := range bc {
		WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= n }, "broadcast consumer %d got %d of %d", i, pc.Received.Distinct(), n)
	}
	WaitFor(t, consumeTimeout, func() bool { return cl.Received.Distinct() >= n }, "clustering consumer got %d of %d", cl.Received.Distinct(), n)
	for _, r := range results {
		for i, pc := range bc {
			if pc.Received.Count(r.MsgID) != 1 {
				t.Errorf("broadcast consumer %d got %s %d times", i, r.MsgID, pc.Received.Count(r.MsgID))
			}
		}
	}
	// The clustering group's offsets reach the end; the broadcast group has none.
	client := newRawClient(t)
	WaitFor(t, 30*time.Second, func() bool {
		resp := adminCall(t, client, c.BrokerAddr, 208, map[string]string{"consumerGroup": cl.Group, "topic": topic}, nil)
		return strings.Count(string(resp.Body), `"consumerOffset":0`) == 0 && strings.Contains(string(resp.Body), "consumerOffset")
	}, "clustering group's offsets committed")
	resp := adminCall(t, client, c.BrokerAddr, 43, nil, nil) // GET_ALL_CONSUMER_OFFSET
	if !strings.Contains(string(resp.Body), topic+"@"+cl.Group) || strings.Contains(string(resp.Body), topic+"@"+group) {
		t.Errorf("offset table should hold the clustering group only: %s", resp.Body)
	}
}
