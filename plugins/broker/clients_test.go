package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	_ "github.com/mqd/mqd/plugins/namesrv" // app.namesrv for the real-client test

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// metaClient is one client connection (like one client instance) that counts
// NOTIFY_CONSUMER_IDS_CHANGED requests.
type metaClient struct {
	t        testing.TB
	c        *remoting.Client
	addr     string
	notified atomic.Int32
}

func newMetaClient(t testing.TB, addr string) *metaClient {
	mc := &metaClient{t: t, addr: addr, c: remoting.NewClient(remoting.ClientConfig{Logger: zerolog.New(io.Discard)})}
	mc.c.Handle(remoting.NotifyConsumerIdsChanged, func(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
		if req.Ext("consumerGroup") != "" {
			mc.notified.Add(1)
		}
		return nil
	})
	t.Cleanup(func() { mc.c.Close() })
	return mc
}

func (mc *metaClient) invoke(code int16, ext map[string]string, b []byte) *remoting.Command {
	mc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := mc.c.Invoke(ctx, mc.addr, remoting.NewRequest(code, ext, b))
	if err != nil {
		mc.t.Fatalf("invoke %d: %v", code, err)
	}
	return resp
}

// goHeartbeat is a heartbeat as rocketmq-client-go sends it: codeSet as
// strings, subVersion in nanoseconds.
func goHeartbeat(clientID, group, model string, tags ...string) []byte {
	sub := `{"classFilterMode":false,"topic":"TopicTest","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1795558577928026338,"expressionType":"TAG"}`
	if len(tags) > 0 {
		tj, _ := json.Marshal(tags)
		codes := make([]string, len(tags))
		for i, tg := range tags {
			codes[i] = fmt.Sprint(message.TagsHashCode(tg))
		}
		cj, _ := json.Marshal(codes)
		sub = fmt.Sprintf(`{"classFilterMode":false,"topic":"TopicTest","subString":"TagA || TagB","tagsSet":%s,"codeSet":%s,"subVersion":1795558577928026338,"expressionType":"TAG"}`, tj, cj)
	}
	return []byte(fmt.Sprintf(`{"clientID":%q,"producerDataSet":[{"groupName":"PG1"}],"consumerDataSet":[{"groupName":%q,
		"consumeType":"CONSUME_PASSIVELY","messageModel":%q,"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET",
		"subscriptionDataSet":[%s,{"classFilterMode":false,"topic":"%%RETRY%%%s","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1795558577928051047,"expressionType":"TAG"}],
		"unitMode":false}]}`, clientID, group, model, sub, group))
}

func consumerList(t testing.TB, mc *metaClient, group string) (int16, []string) {
	t.Helper()
	resp := mc.invoke(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil)
	if resp.Code != remoting.Success {
		return resp.Code, nil
	}
	var l body.ConsumerListBody
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		t.Fatalf("consumer list %s: %v", resp.Body, err)
	}
	return resp.Code, l.ConsumerIDList
}

func TestHeartbeatRegistersAndNotifies(t *testing.T) {
	b := newMetaBroker(t, "")
	addr := serveMeta(t, b)
	c1 := newMetaClient(t, addr)
	c2 := newMetaClient(t, addr)

	resp := c1.invoke(remoting.HeartBeat, nil, goHeartbeat("10.0.0.1@1", "CG1", "CLUSTERING", "TagA", "TagB"))
	if resp.Code != remoting.Success || len(resp.Body) != 0 {
		t.Fatalf("heartbeat answer code %d remark %q body %q", resp.Code, resp.Remark, resp.Body)
	}
	if _, ok := b.topics.Get("%RETRY%CG1"); !ok {
		t.Fatal("retry topic not created")
	}
	select {
	case <-b.topics.regKick:
	default:
		t.Fatal("retry topic creation did not ask for a registration")
	}
	if _, ok := b.subGroups.Get("CG1"); !ok {
		t.Fatal("subscription group not auto-created")
	}
	sd, ok := b.clients.FindSubscription("CG1", "TopicTest")
	if !ok || sd.SubVersion != 1795558577928026338 || len(sd.TagsSet) != 2 {
		t.Fatalf("subscription = %+v, %v", sd, ok)
	}
	if !sd.MatchTagsCode(message.TagsHashCode("TagB")) || sd.MatchTagsCode(message.TagsHashCode("TagC")) {
		t.Fatal("tag codes wrong")
	}
	info, ok := b.clients.ConsumerGroup("CG1")
	if !ok || info.MessageModel != "CLUSTERING" || info.ConsumeType != "CONSUME_PASSIVELY" || info.ConsumeFromWhere != "CONSUME_FROM_FIRST_OFFSET" {
		t.Fatalf("group info = %+v", info)
	}
	if conns := b.clients.ProducerConns("PG1"); len(conns) != 1 {
		t.Fatalf("producer conns = %d", len(conns))
	}
	if code, ids := consumerList(t, c1, "CG1"); code != 0 || len(ids) != 1 || ids[0] != "10.0.0.1@1" {
		t.Fatalf("consumer list = %d %v", code, ids)
	}

	// A second member: both members are told to rebalance.
	before := c1.notified.Load()
	c2.invoke(remoting.HeartBeat, nil, goHeartbeat("10.0.0.2@2", "CG1", "CLUSTERING"))
	metaWaitFor(t, "notify of c1", func() bool { return c1.notified.Load() > before })
	if code, ids := consumerList(t, c1, "CG1"); code != 0 || len(ids) != 2 || ids[0] != "10.0.0.1@1" || ids[1] != "10.0.0.2@2" {
		t.Fatalf("consumer list = %d %v", code, ids)
	}
	// The same heartbeat again changes nothing: no notification.
	n1 := c1.notified.Load()
	c1.invoke(remoting.HeartBeat, nil, goHeartbeat("10.0.0.1@1", "CG1", "CLUSTERING"))
	if c1.notified.Load() != n1 {
		t.Fatal("notified without a change")
	}

	// c2 disconnects: c1 is notified and the list shrinks.
	before = c1.notified.Load()
	c2.c.Close()
	metaWaitFor(t, "notify after close", func() bool { return c1.notified.Load() > before })
	if _, ids := consumerList(t, c1, "CG1"); len(ids) != 1 {
		t.Fatalf("after close: %v", ids)
	}

	// Unknown group: Java's answer.
	resp = c1.invoke(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": "Nope"}, nil)
	if resp.Code != remoting.SystemError || resp.Remark != "no consumer for this group, Nope" {
		t.Fatalf("unknown group: %d %q", resp.Code, resp.Remark)
	}

	// UNREGISTER_CLIENT removes the last member: group offline.
	c1.invoke(remoting.UnregisterClient, map[string]string{"clientID": "10.0.0.1@1", "consumerGroup": "CG1", "producerGroup": "PG1"}, nil)
	if _, ok := b.clients.ConsumerGroup("CG1"); ok {
		t.Fatal("group still online after unregister")
	}
	if len(b.clients.ProducerConns("PG1")) != 0 {
		t.Fatal("producer still registered after unregister")
	}
}

func TestHeartbeatJavaFormAndBroadcast(t *testing.T) {
	b := newMetaBroker(t, "")
	addr := serveMeta(t, b)
	c := newMetaClient(t, addr)
	// Java: numeric codeSet, ms subVersion, extra fields.
	hb := `{"clientID":"j@1","producerDataSet":[],"consumerDataSet":[{"groupName":"BG","consumeType":"CONSUME_ACTIVELY",
		"messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,
		"subscriptionDataSet":[{"classFilterMode":false,"topic":"T","subString":"a||b","tagsSet":["a","b"],"codeSet":[97,98],
		"subVersion":1700000000000,"expressionType":"TAG","filterClassSource":null}]}]}`
	if resp := c.invoke(remoting.HeartBeat, nil, []byte(hb)); resp.Code != 0 {
		t.Fatalf("java heartbeat: %d %s", resp.Code, resp.Remark)
	}
	if _, ok := b.topics.Get("%RETRY%BG"); ok {
		t.Fatal("retry topic created for a broadcasting group")
	}
	sd, _ := b.clients.FindSubscription("BG", "T")
	if sd == nil || !sd.MatchTagsCode(97) || sd.MatchTagsCode(99) {
		t.Fatalf("subscription %+v", sd)
	}
	// Bad input is refused with a clear error, and nothing registers.
	for _, bad := range []string{`{`, `{"clientID":""}`, `{"clientID":"x","consumerDataSet":[{"groupName":"../g"}]}`,
		`{"clientID":"x","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"T","codeSet":["zz"]}]}]}`} {
		if resp := c.invoke(remoting.HeartBeat, nil, []byte(bad)); resp.Code != remoting.SystemError || resp.Remark == "" {
			t.Errorf("heartbeat %s: code %d remark %q", bad, resp.Code, resp.Remark)
		}
	}
	// Consumer connection list (203).
	resp := c.invoke(remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": "BG"}, nil)
	var cc body.ConsumerConnection
	if err := json.Unmarshal(resp.Body, &cc); resp.Code != 0 || err != nil {
		t.Fatalf("203: %d %v", resp.Code, err)
	}
	if len(cc.ConnectionSet) != 1 || cc.ConnectionSet[0].ClientID != "j@1" || cc.MessageModel != "BROADCASTING" ||
		len(cc.SubscriptionTable["T"].CodeSet) != 2 {
		t.Fatalf("203 body %s", resp.Body)
	}
	if resp := c.invoke(remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": "X"}, nil); resp.Code != remoting.ConsumerNotOnline {
		t.Fatalf("203 unknown group: %d", resp.Code)
	}
	if resp := c.invoke(remoting.GetProducerConnectionList, map[string]string{"producerGroup": "X"}, nil); resp.Code != remoting.SystemError {
		t.Fatalf("204 unknown group: %d", resp.Code)
	}
	// CHECK_CLIENT_CONFIG: TAG fine, SQL92 refused.
	if resp := c.invoke(remoting.CheckClientConfig, nil, []byte(`{"clientId":"j@1","group":"BG","subscriptionData":{"topic":"T","subString":"*","expressionType":"TAG"}}`)); resp.Code != 0 {
		t.Fatalf("46 TAG: %d", resp.Code)
	}
	if resp := c.invoke(remoting.CheckClientConfig, nil, []byte(`{"clientId":"j@1","group":"BG","subscriptionData":{"topic":"T","subString":"a > 1","expressionType":"SQL92"}}`)); resp.Code != remoting.SystemError {
		t.Fatalf("46 SQL92: %d", resp.Code)
	}
}

func TestClientExpiry(t *testing.T) {
	b := newMetaBroker(t, "", "broker.channelExpiredTimeout=1000")
	addr := serveMeta(t, b)
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	b.clients.now = func() time.Time { return time.Unix(0, clock.Load()) }
	c1, c2 := newMetaClient(t, addr), newMetaClient(t, addr)
	c1.invoke(remoting.HeartBeat, nil, goHeartbeat("a@1", "CG", "CLUSTERING"))
	clock.Add(int64(800 * time.Millisecond))
	c2.invoke(remoting.HeartBeat, nil, goHeartbeat("b@1", "CG", "CLUSTERING"))
	before := c2.notified.Load()
	clock.Add(int64(500 * time.Millisecond)) // a@1 is 1.3 s old, b@1 0.5 s
	b.clients.scanExpired()
	info, _ := b.clients.ConsumerGroup("CG")
	if info == nil || len(info.ClientIDs) != 1 || info.ClientIDs[0] != "b@1" {
		t.Fatalf("after expiry: %+v", info)
	}
	metaWaitFor(t, "notify of b@1", func() bool { return c2.notified.Load() > before })
	if conns := b.clients.ProducerConns("PG1"); len(conns) != 1 {
		t.Fatalf("producer conns after expiry = %d", len(conns))
	}
}

func TestLockOverTheWire(t *testing.T) {
	b := newMetaBroker(t, "")
	addr := serveMeta(t, b)
	c := newMetaClient(t, addr)
	req := `{"consumerGroup":"CG1","clientId":"192.0.2.2@28273","mqSet":[{"topic":"TopicTest","brokerName":"broker-a","queueId":1}]}`
	resp := c.invoke(remoting.LockBatchMQ, nil, []byte(req))
	var r body.LockBatchResponseBody
	if err := json.Unmarshal(resp.Body, &r); resp.Code != 0 || err != nil || len(r.LockOKMQSet) != 1 || r.LockOKMQSet[0].QueueID != 1 {
		t.Fatalf("lock: %d %s", resp.Code, resp.Body)
	}
	other := `{"consumerGroup":"CG1","clientId":"other@1","mqSet":[{"topic":"TopicTest","brokerName":"broker-a","queueId":1}]}`
	resp = c.invoke(remoting.LockBatchMQ, nil, []byte(other))
	if err := json.Unmarshal(resp.Body, &r); err != nil || len(r.LockOKMQSet) != 0 {
		t.Fatalf("second owner got %s", resp.Body)
	}
	if resp := c.invoke(remoting.UnlockBatchMQ, nil, []byte(req)); resp.Code != 0 {
		t.Fatalf("unlock: %d", resp.Code)
	}
	resp = c.invoke(remoting.LockBatchMQ, nil, []byte(other))
	if err := json.Unmarshal(resp.Body, &r); err != nil || len(r.LockOKMQSet) != 1 {
		t.Fatalf("after unlock: %s", resp.Body)
	}
	if resp := c.invoke(remoting.LockBatchMQ, nil, []byte("nope")); resp.Code != remoting.SystemError {
		t.Fatalf("bad lock body: %d", resp.Code)
	}
}

// TestGoClientGroup runs two rocketmq-client-go push consumers of one group and a
// producer against a real name server and broker: heartbeats register both
// members, GET_CONSUMER_LIST_BY_GROUP splits the queues between them, the topic
// is auto-created through TBW102, and every message arrives.
func TestGoClientGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("real client, several seconds")
	}
	if raceEnabled {
		t.Skip("rocketmq-client-go has data races of its own (see raceEnabled)")
	}
	rlog.SetLogLevel("error")
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	nscfg, err := config.Load(config.LoadOptions{Role: "namesrv", Env: []string{}, ProfileSource: noProfile,
		Sets: []string{"namesrv.listenPort=0", "namesrv.kvConfigPath=" + filepath.Join(t.TempDir(), "kvConfig.json")}})
	if err != nil {
		t.Fatal(err)
	}
	nk := kernel.New(nscfg, zerolog.New(io.Discard))
	if err := nk.Load(context.Background(), "app.namesrv"); err != nil {
		t.Fatal(err)
	}
	if err := nk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nk.Stop(ctx)
	})
	nsAddr := nk.Loaded()[0].(interface{ Addr() string }).Addr()
	b, _ := startMetaKernel(t, t.TempDir(), "broker.namesrvAddr="+nsAddr)
	resolver := primitive.NewPassthroughResolver([]string{nsAddr})

	const total = 20
	var mu sync.Mutex
	seen := map[string]int{} // body -> consumer
	var consumers []rocketmq.PushConsumer
	for i := 0; i < 2; i++ {
		c, err := rocketmq.NewPushConsumer(consumer.WithGroupName("E2EGroup"), consumer.WithNsResolver(resolver),
			consumer.WithInstance(fmt.Sprintf("inst%d", i)), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		if err != nil {
			t.Fatal(err)
		}
		idx := i
		if err := c.Subscribe("E2ETopic", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			for _, m := range msgs {
				seen[string(m.Body)] = idx
			}
			mu.Unlock()
			return consumer.ConsumeSuccess, nil
		}); err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	p, err := rocketmq.NewProducer(producer.WithNsResolver(resolver), producer.WithGroupName("E2EProducer"), producer.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for i := 0; i < total; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("E2ETopic", []byte(fmt.Sprint("m", i)))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for _, c := range consumers {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Shutdown()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, _ := b.clients.ConsumerGroup("E2EGroup")
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total && info != nil && len(info.ClientIDs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d; group %+v", n, total, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := b.topics.Get("%RETRY%E2EGroup"); !ok {
		t.Fatal("no retry topic")
	}
}
