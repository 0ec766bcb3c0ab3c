package tests

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/mqd/mqd/kernel/waittest"
)

func init() {
	// The client logs every connection, rebalance and route refresh at info
	// level; the tests report what matters themselves.
	rlog.SetLogLevel("error")
}

var nameSeq atomic.Int64

// UniqueName returns a topic or group name unique in this test binary run:
// prefix, a counter and the clock, in RocketMQ's allowed characters.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, nameSeq.Add(1), time.Now().UnixNano()%1_000_000_000)
}

// instance gives each client its own client instance. The Go client shares one
// instance (connections, heartbeats, name-server list) per instance name in a
// process, and refuses to share it between different name servers.
func instance(kind string) string { return UniqueName("it-" + kind) }

// WaitFor polls cond every 20 ms until it holds or timeout passes, then fails
// the test with the message.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	waittest.For(t, timeout, cond, format, args...)
}

// NameServers splits a RocketMQ name-server list ("a:9876;b:9876") for the
// Go client's resolver, which takes one address per entry.
func NameServers(namesrv string) []string {
	var out []string
	for _, a := range strings.Split(namesrv, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// NewProducer starts a producer with its own group and client instance against
// the name servers; t.Cleanup shuts it down.
func NewProducer(t testing.TB, namesrv string, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	SkipClientUnderRace(t)
	all := append([]producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver(NameServers(namesrv))),
		producer.WithGroupName(UniqueName("PG")),
		producer.WithInstanceName(instance("p")),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(5 * time.Second),
	}, opts...)
	p, err := rocketmq.NewProducer(all...)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// SkipClientUnderRace skips a test that drives the official Go client in a
// -race build: rocketmq-client-go races with itself (plain fields such as
// rmqClient.close written on shutdown and read by its goroutines, a channel
// closed while pull goroutines send on it), which no mqd change can fix.
// mqd's own code is raced by the unit tests and the raw-remoting tests.
func SkipClientUnderRace(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("rocketmq-client-go has data races of its own; run without -race")
	}
}

// RaceEnabled reports a -race build.
func RaceEnabled() bool { return raceEnabled }

// Admin is the official admin client bound to one name server.
type Admin struct {
	t       testing.TB
	namesrv string
	a       admin.Admin
}

// NewAdmin returns an admin client; t.Cleanup closes it.
func NewAdmin(t testing.TB, namesrv string) *Admin {
	SkipClientUnderRace(t)
	t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{namesrv})))
	if err != nil {
		t.Fatalf("new admin: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return &Admin{t: t, namesrv: namesrv, a: a}
}

// CreateTopic creates topic on the broker with the given queue count (read and
// write) and waits until the name server routes it, since consumers cannot
// start on a topic without a route.
func (a *Admin) CreateTopic(brokerAddr, topic string, queues int) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.a.CreateTopic(ctx,
		admin.WithTopicCreate(topic),
		admin.WithBrokerAddrCreate(brokerAddr),
		admin.WithReadQueueNums(queues),
		admin.WithWriteQueueNums(queues),
	)
	if err != nil {
		a.t.Fatalf("create topic %s on %s: %v", topic, brokerAddr, err)
	}
	a.WaitRoute(topic, queues)
}

// WaitRoute waits until the name server returns a route for topic with at
// least minQueues writable queues.
func (a *Admin) WaitRoute(topic string, minQueues int) []*primitive.MessageQueue {
	a.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		// A fresh admin per probe: FetchPublishMessageQueues caches the first
		// route it sees.
		probe, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{a.namesrv})))
		if err != nil {
			a.t.Fatalf("new admin: %v", err)
		}
		mqs, err := probe.FetchPublishMessageQueues(context.Background(), topic)
		_ = probe.Close()
		if err == nil && len(mqs) >= minQueues {
			return mqs
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("no route of %s with >= %d queues from %s within 15s (last error %v, queues %d)",
				topic, minQueues, a.namesrv, err, len(mqs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RouteExists reports whether the name server has a route for topic now.
func (a *Admin) RouteExists(topic string) bool {
	probe, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{a.namesrv})))
	if err != nil {
		a.t.Fatalf("new admin: %v", err)
	}
	defer probe.Close()
	mqs, err := probe.FetchPublishMessageQueues(context.Background(), topic)
	return err == nil && len(mqs) > 0
}

// Received counts deliveries per message ID (the producer's UNIQ_KEY, which
// survives retries and send-back) for exactly-once and at-least-once checks.
type Received struct {
	mu    sync.Mutex
	count map[string]int
	msgs  map[string]*primitive.MessageExt
	total int
}

func NewReceived() *Received {
	return &Received{count: map[string]int{}, msgs: map[string]*primitive.MessageExt{}}
}

func (r *Received) add(msgs ...*primitive.MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		id := m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)
		if id == "" {
			id = m.MsgId
		}
		r.count[id]++
		r.msgs[id] = m
		r.total++
	}
}

// Distinct is the number of distinct messages received.
func (r *Received) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// Total is the number of deliveries, duplicates included.
func (r *Received) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Count is how often the message with this ID was delivered.
func (r *Received) Count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[id]
}

// Get returns the last delivery of the message with this ID.
func (r *Received) Get(id string) *primitive.MessageExt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[id]
}

// IDs returns the distinct IDs received.
func (r *Received) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.count))
	for id := range r.count {
		out = append(out, id)
	}
	return out
}

// ConsumerOptions tune StartPushConsumer.
type ConsumerOptions struct {
	Group      string // "" = a unique group
	Expression string // tag expression, "" = "*"
	FromFirst  bool   // CONSUME_FROM_FIRST_OFFSET instead of LAST for a new group
	Extra      []consumer.Option
}

// PushConsumer is a started push consumer and what it has received.
type PushConsumer struct {
	rocketmq.PushConsumer
	Group    string
	Received *Received
	stopOnce sync.Once
}

// StartPushConsumer starts a clustering push consumer on topic, recording every
// message it is handed (and acknowledging it); t.Cleanup shuts it down.
func StartPushConsumer(t testing.TB, namesrv, topic string, o ConsumerOptions) *PushConsumer {
	t.Helper()
	SkipClientUnderRace(t)
	if o.Group == "" {
		o.Group = UniqueName("CG")
	}
	if o.Expression == "" {
		o.Expression = "*"
	}
	from := consumer.ConsumeFromLastOffset
	if o.FromFirst {
		from = consumer.ConsumeFromFirstOffset
	}
	opts := append([]consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver(NameServers(namesrv))),
		consumer.WithGroupName(o.Group),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(from),
		consumer.WithInstance(instance("c")),
	}, o.Extra...)
	c, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	pc := &PushConsumer{PushConsumer: c, Group: o.Group, Received: NewReceived()}
	err = c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: o.Expression},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			pc.Received.add(msgs...)
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start push consumer of %s: %v", topic, err)
	}
	t.Cleanup(pc.Shutdown)
	return pc
}

// Shutdown stops the consumer, committing its offsets; it is safe to call twice.
func (pc *PushConsumer) Shutdown() {
	pc.stopOnce.Do(func() { _ = pc.PushConsumer.Shutdown() })
}

// OwnedQueues returns the queues this consumer currently holds. The client has
// no public API for it; GetConsumerRunningInfo (what mqadmin's
// consumerProgress asks clients for) returns an internal type, read here by
// reflection.
func (pc *PushConsumer) OwnedQueues() []primitive.MessageQueue {
	m := reflect.ValueOf(pc.PushConsumer).MethodByName("GetConsumerRunningInfo")
	if !m.IsValid() {
		return nil
	}
	info := m.Call([]reflect.Value{reflect.ValueOf(false)})[0]
	if info.IsNil() {
		return nil
	}
	table := info.Elem().FieldByName("MQTable")
	var out []primitive.MessageQueue
	for _, k := range table.MapKeys() {
		if mq, ok := k.Interface().(primitive.MessageQueue); ok {
			out = append(out, mq)
		}
	}
	return out
}

// NewPullConsumer starts a pull consumer for PullFrom reads of topic;
// t.Cleanup shuts it down.
func NewPullConsumer(t testing.TB, namesrv, topic, group string) rocketmq.PullConsumer {
	t.Helper()
	SkipClientUnderRace(t)
	if group == "" {
		group = UniqueName("PullG")
	}
	c, err := rocketmq.NewPullConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(NameServers(namesrv))),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance("pull")),
	)
	if err != nil {
		t.Fatalf("new pull consumer: %v", err)
	}
	// Assign with no queues rather than Subscribe: the tests read with
	// PullFrom only, and a subscribed pull consumer also runs background pulls
	// whose Shutdown races in the client (rocketmq-client-go closes the
	// process queue's channel while a pull answer may still be put into it:
	// "send on closed channel"). With nothing assigned it never pulls on its
	// own.
	if err := c.Assign(topic, nil); err != nil {
		t.Fatalf("assign %s: %v", topic, err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start pull consumer of %s: %v", topic, err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })
	return c
}

// SendN sends n messages synchronously (tag, key "k<i>", body "<prefix>-<i>")
// and returns their results in order.
func SendN(t testing.TB, p rocketmq.Producer, topic, tag, prefix string, n int) []*primitive.SendResult {
	t.Helper()
	out := make([]*primitive.SendResult, 0, n)
	for i := 0; i < n; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%d", prefix, i)))
		if tag != "" {
			m.WithTag(tag)
		}
		m.WithKeys([]string{fmt.Sprintf("k%d", i)})
		res, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatalf("send %d to %s: %v", i, topic, err)
		}
		if res.Status != primitive.SendOK {
			t.Fatalf("send %d to %s: status %v", i, topic, res.Status)
		}
		out = append(out, res)
	}
	return out
}
