package namesrv

import (
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting/body"
)

type fakeChannel struct {
	name   string
	closed bool
}

func (c *fakeChannel) Close() error { c.closed = true; return nil }

func topicTable(dv int64, tcs ...body.TopicConfig) body.TopicConfigSerializeWrapper {
	w := body.TopicConfigSerializeWrapper{DataVersion: body.DataVersion{Counter: dv, Timestamp: 1000 + dv}, TopicConfigTable: map[string]body.TopicConfig{}}
	for _, tc := range tcs {
		w.TopicConfigTable[tc.TopicName] = tc
	}
	return w
}

func reg(cluster, name, addr string, id int64, ch Channel, topics body.TopicConfigSerializeWrapper) Registration {
	return Registration{Cluster: cluster, BrokerName: name, BrokerAddr: addr, BrokerID: id, HAServerAddr: addr + "-ha", Topics: topics, Channel: ch}
}

func TestRouteTableRegisterAndRoute(t *testing.T) {
	rt := NewRouteTable(zerolog.Nop())
	now := time.Now()
	chA, chB := &fakeChannel{name: "a"}, &fakeChannel{name: "b"}
	res := rt.Register(reg("c1", "broker-b", "h:2", 0, chB, topicTable(1, body.NewTopicConfig("T", 8, 8, 6))), now)
	if !res.New || res.MasterAddr != "" {
		t.Fatalf("first registration: %+v", res)
	}
	rt.Register(reg("c1", "broker-a", "h:1", 0, chA, topicTable(1, body.NewTopicConfig("T", 4, 4, 6), body.NewTopicConfig("U", 2, 2, 6))), now)

	got, ok := rt.AppendRoute(nil, "T", "", body.FastjsonKeys)
	if !ok {
		t.Fatal("no route for T")
	}
	want := `{"brokerDatas":[{"brokerAddrs":{0:"h:1"},"brokerName":"broker-a","cluster":"c1"},{"brokerAddrs":{0:"h:2"},"brokerName":"broker-b","cluster":"c1"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4},` +
		`{"brokerName":"broker-b","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]}`
	if string(got) != want {
		t.Fatalf("route\n got %s\nwant %s", got, want)
	}
	if _, ok := rt.AppendRoute(nil, "nope", "", body.FastjsonKeys); ok {
		t.Fatal("route for unknown topic")
	}
	if r := rt.Route("U"); r == nil || len(r.BrokerDatas) != 1 || r.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("Route(U) = %+v", r)
	}
	if !reflect.DeepEqual(rt.Topics(), []string{"T", "U"}) {
		t.Fatal(rt.Topics())
	}

	// A heartbeat with the same data version does not touch topics (so a wipe
	// survives it); a new version does.
	rt.WipeWritePerm("broker-a")
	rt.Register(reg("c1", "broker-a", "h:1", 0, chA, topicTable(1, body.NewTopicConfig("T", 4, 4, 6))), now)
	if r := rt.Route("T"); r.QueueDatas[0].Perm != body.PermRead {
		t.Fatalf("perm after heartbeat: %d", r.QueueDatas[0].Perm)
	}
	rt.Register(reg("c1", "broker-a", "h:1", 0, chA, topicTable(2, body.NewTopicConfig("T", 16, 16, 6))), now)
	if r := rt.Route("T"); r.QueueDatas[0].Perm != 6 || r.QueueDatas[0].WriteQueueNums != 16 {
		t.Fatalf("after new version: %+v", r.QueueDatas[0])
	}
	// Topics dropped on the broker stay until deleted (Java behaviour).
	if rt.Route("U") == nil {
		t.Fatal("U vanished on re-registration")
	}
}

func TestRouteTableSlave(t *testing.T) {
	rt := NewRouteTable(zerolog.Nop())
	now := time.Now()
	// A slave before its master learns nothing, and does not create queue data.
	res := rt.Register(reg("c", "a", "h:11", 1, &fakeChannel{}, topicTable(1, body.NewTopicConfig("T", 4, 4, 6))), now)
	if res.MasterAddr != "" || res.HAServerAddr != "" {
		t.Fatalf("slave without master: %+v", res)
	}
	if rt.Route("T") != nil {
		t.Fatal("slave registration created a route")
	}
	rt.Register(reg("c", "a", "h:10", 0, &fakeChannel{}, topicTable(1, body.NewTopicConfig("T", 4, 4, 6))), now)
	res = rt.Register(reg("c", "a", "h:11", 1, &fakeChannel{}, topicTable(1)), now)
	if res.MasterAddr != "h:10" || res.HAServerAddr != "h:10-ha" || res.New {
		t.Fatalf("slave with master: %+v", res)
	}
	r := rt.Route("T")
	if !reflect.DeepEqual(r.BrokerDatas[0].BrokerAddrs, map[int64]string{0: "h:10", 1: "h:11"}) {
		t.Fatalf("addrs %v", r.BrokerDatas[0].BrokerAddrs)
	}
	// The slave is promoted by hand: same address, id 0. Its old id goes.
	rt.Unregister("c", "a", "h:10", 0)
	rt.Register(reg("c", "a", "h:11", 0, &fakeChannel{}, topicTable(5, body.NewTopicConfig("T", 4, 4, 6))), now)
	if r := rt.Route("T"); !reflect.DeepEqual(r.BrokerDatas[0].BrokerAddrs, map[int64]string{0: "h:11"}) {
		t.Fatalf("after promotion: %v", r.BrokerDatas[0].BrokerAddrs)
	}
}

func TestRouteTableRemoval(t *testing.T) {
	rt := NewRouteTable(zerolog.Nop())
	t0 := time.Now()
	chMaster, chSlave, chB := &fakeChannel{}, &fakeChannel{}, &fakeChannel{}
	rt.Register(reg("c", "a", "h:1", 0, chMaster, topicTable(1, body.NewTopicConfig("T", 4, 4, 6), body.NewTopicConfig("OnlyA", 1, 1, 6))), t0)
	rt.Register(reg("c", "a", "h:2", 1, chSlave, topicTable(1)), t0)
	rt.Register(reg("c", "b", "h:3", 0, chB, topicTable(1, body.NewTopicConfig("T", 4, 4, 6))), t0)

	// The master's connection closes: group a keeps its slave, so its topics stay.
	removed := rt.RemoveChannel(chMaster)
	if len(removed) != 1 || removed[0].BrokerAddr != "h:1" || removed[0].BrokerName != "a" {
		t.Fatalf("removed %+v", removed)
	}
	if r := rt.Route("OnlyA"); r == nil || r.BrokerDatas[0].MasterAddr() != "" {
		t.Fatalf("OnlyA after master loss: %+v", r)
	}

	// The slave expires: group a is gone, with OnlyA and a's share of T.
	rt.Register(reg("c", "b", "h:3", 0, chB, topicTable(1)), t0.Add(time.Minute))
	removed = rt.ScanNotActive(t0.Add(time.Minute+time.Second), 30*time.Second)
	if len(removed) != 1 || removed[0].BrokerAddr != "h:2" || removed[0].Channel != chSlave {
		t.Fatalf("expired %+v", removed)
	}
	if rt.Route("OnlyA") != nil {
		t.Fatal("OnlyA survived its only group")
	}
	if r := rt.Route("T"); len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("T after a vanished: %+v", r)
	}
	ci := rt.ClusterInfo()
	if !reflect.DeepEqual(ci.ClusterAddrTable, map[string][]string{"c": {"b"}}) || len(ci.BrokerAddrTable) != 1 {
		t.Fatalf("cluster info %+v", ci)
	}

	// Unregistering the last broker empties everything.
	if !rt.Unregister("c", "b", "h:3", 0) {
		t.Fatal("unregister of a live broker reported unknown")
	}
	if rt.Route("T") != nil || len(rt.Topics()) != 0 || rt.LiveBrokers() != 0 {
		t.Fatal("tables not empty")
	}
	if ci := rt.ClusterInfo(); len(ci.ClusterAddrTable) != 0 || len(ci.BrokerAddrTable) != 0 {
		t.Fatalf("cluster info %+v", ci)
	}
	if rt.Unregister("c", "b", "h:3", 0) {
		t.Fatal("second unregister reported known")
	}
}

func TestRouteTableAdmin(t *testing.T) {
	rt := NewRouteTable(zerolog.Nop())
	now := time.Now()
	unit := body.NewTopicConfig("Unit", 1, 1, 6)
	unit.TopicSysFlag = body.TopicSysFlagUnit
	sub := body.NewTopicConfig("Sub", 1, 1, 6)
	sub.TopicSysFlag = body.TopicSysFlagUnitSub
	rt.Register(reg("c1", "a", "h:1", 0, &fakeChannel{}, topicTable(1, body.NewTopicConfig("T", 4, 4, 6), unit, sub)), now)
	rt.Register(reg("c2", "b", "h:2", 0, &fakeChannel{}, topicTable(1, body.NewTopicConfig("T", 4, 4, 6), body.NewTopicConfig("B", 4, 4, 6))), now)

	if got := rt.TopicsByCluster("c2"); !reflect.DeepEqual(got, []string{"B", "T"}) {
		t.Fatal(got)
	}
	if got := rt.TopicsByCluster("none"); len(got) != 0 {
		t.Fatal(got)
	}
	if got := rt.TopicsBySysFlag(func(f int32) bool { return f&body.TopicSysFlagUnit != 0 }); !reflect.DeepEqual(got, []string{"Unit"}) {
		t.Fatal(got)
	}
	topics, addr := rt.SystemTopics()
	if !reflect.DeepEqual(topics, []string{"a", "b", "c1", "c2"}) || addr != "h:1" {
		t.Fatal(topics, addr)
	}

	if n := rt.WipeWritePerm("a"); n != 3 {
		t.Fatalf("wiped %d", n)
	}
	if r := rt.Route("T"); r.QueueDatas[0].Perm != body.PermRead || r.QueueDatas[1].Perm != 6 {
		t.Fatalf("after wipe %+v", r.QueueDatas)
	}
	if n := rt.AddWritePerm("a"); n != 3 {
		t.Fatalf("added %d", n)
	}
	if r := rt.Route("T"); r.QueueDatas[0].Perm != 6 {
		t.Fatalf("after add %+v", r.QueueDatas)
	}
	if n := rt.WipeWritePerm("nope"); n != 0 {
		t.Fatal(n)
	}

	// Deleting in one cluster keeps the other's queues; without a cluster, all.
	if !rt.DeleteTopic("T", "c1") {
		t.Fatal("delete in c1")
	}
	if r := rt.Route("T"); len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("T after delete in c1: %+v", r)
	}
	if rt.DeleteTopic("T", "c1") {
		t.Fatal("second delete in c1 removed something")
	}
	if !rt.DeleteTopic("T", "") || rt.Route("T") != nil {
		t.Fatal("delete everywhere")
	}

	changed, stored := rt.QueryDataVersion("h:1", body.DataVersion{Counter: 1, Timestamp: 1001}, now)
	if changed || stored == nil || stored.Counter != 1 {
		t.Fatal(changed, stored)
	}
	changed, _ = rt.QueryDataVersion("h:1", body.DataVersion{Counter: 2}, now)
	if !changed {
		t.Fatal("version change not seen")
	}
	if changed, stored := rt.QueryDataVersion("h:9", body.DataVersion{}, now); !changed || stored != nil {
		t.Fatal("unknown broker")
	}
}

// TestRouteTableConcurrent reads routes while one broker keeps registering
// and losing its connection: every read sees either no route or the whole
// one (under -race, also that the table is properly locked).
func TestRouteTableConcurrent(t *testing.T) {
	rt := NewRouteTable(zerolog.Nop())
	const want = `{"brokerDatas":[{"brokerAddrs":{0:"h:1"},"brokerName":"a","cluster":"c"}],"filterServerTable":{},` +
		`"queueDatas":[{"brokerName":"a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	wantCluster := &body.ClusterInfo{
		BrokerAddrTable:  map[string]body.BrokerData{"a": {BrokerAddrs: map[int64]string{0: "h:1"}, BrokerName: "a", Cluster: "c"}},
		ClusterAddrTable: map[string][]string{"c": {"a"}},
	}
	check := func() {
		t.Helper()
		buf, ok := rt.AppendRoute(nil, "T", "", body.FastjsonKeys)
		if ok && string(buf) != want {
			t.Fatalf("route\n got %s\nwant %s", buf, want)
		}
		ci := rt.ClusterInfo()
		if (len(ci.BrokerAddrTable) != 0 || len(ci.ClusterAddrTable) != 0) && !reflect.DeepEqual(ci, wantCluster) {
			t.Fatalf("cluster info %+v", ci)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			ch := &fakeChannel{}
			rt.Register(reg("c", "a", "h:1", 0, ch, topicTable(int64(i%3), body.NewTopicConfig("T", 4, 4, 6))), time.Now())
			if i%7 == 0 {
				rt.RemoveChannel(ch)
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check()
	}
	// The last registration (1999) kept its connection.
	if _, ok := rt.AppendRoute(nil, "T", "", body.FastjsonKeys); !ok {
		t.Fatal("no route after the last registration")
	}
	check()
}

func TestScanClosesExpiredChannels(t *testing.T) {
	n := new(Namesrv)
	cfg := DefaultConfig()
	cfg.KVConfigPath = t.TempDir() + "/kv.json"
	if err := n.provision(cfg, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	old, fresh := &fakeChannel{}, &fakeChannel{}
	n.routes.Register(reg("c", "a", "h:1", 0, old, topicTable(1)), t0)
	n.routes.Register(reg("c", "b", "h:2", 0, fresh, topicTable(1)), t0.Add(100*time.Second))
	n.scanOnce(t0.Add(121 * time.Second)) // default expiry 120 s
	if !old.closed || fresh.closed || n.routes.LiveBrokers() != 1 {
		t.Fatalf("old closed %v, fresh closed %v, live %d", old.closed, fresh.closed, n.routes.LiveBrokers())
	}
}
