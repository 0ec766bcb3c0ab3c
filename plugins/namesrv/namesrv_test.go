package namesrv

import (
	"context"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tidwall/gjson"

	"github.com/mqd/mqd/kernel/waittest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// startNamesrv starts a name server on a free port with its KV file in a
// temporary directory (or kvPath), stopping it when the test ends.
func startNamesrv(t testing.TB, kvPath string, mut func(*Config)) *Namesrv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ListenPort = 0
	if kvPath == "" {
		kvPath = filepath.Join(t.TempDir(), "kvConfig.json")
	}
	cfg.KVConfigPath = kvPath
	if mut != nil {
		mut(&cfg)
	}
	n := new(Namesrv)
	if err := n.provision(cfg, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNamesrv(t, n) })
	return n
}

func stopNamesrv(t testing.TB, n *Namesrv) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Error(err)
	}
}

func newClient(t testing.TB) *remoting.Client {
	c := remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	t.Cleanup(func() { c.Close() })
	return c
}

func call(t testing.TB, c *remoting.Client, addr string, req *remoting.Command) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, addr, req)
	if err != nil {
		t.Fatalf("code %d: %v", req.Code, err)
	}
	return resp
}

func ext(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// registerRequest builds REGISTER_BROKER as a Java broker sends it.
func registerRequest(t testing.TB, cluster, name, addr string, id int64, dv int64, topics ...body.TopicConfig) *remoting.Command {
	t.Helper()
	rb := body.RegisterBrokerBody{TopicConfigSerializeWrapper: topicTable(dv, topics...)}
	b, err := rb.Encode(false)
	if err != nil {
		t.Fatal(err)
	}
	crc := int32(crc32.ChecksumIEEE(b) & 0x7FFFFFFF)
	return remoting.NewRequest(remoting.RegisterBroker, ext(
		"brokerName", name, "brokerAddr", addr, "clusterName", cluster, "haServerAddr", addr+"-ha",
		"brokerId", strconv.FormatInt(id, 10), "compressed", "false", "bodyCrc32", strconv.Itoa(int(crc))), b)
}

func mustSucceed(t testing.TB, resp *remoting.Command) {
	t.Helper()
	if resp.Code != remoting.Success {
		t.Fatalf("code %d remark %q", resp.Code, resp.Remark)
	}
}

// goClientVersion is the MQVersion ordinal rocketmq-client-go reports (V4_5_2).
const goClientVersion = 317

// routeRequest is GET_ROUTEINFO_BY_TOPIC as the Go client sends it.
func routeRequest(topic string) *remoting.Command {
	req := remoting.NewRequest(remoting.GetRouteInfoByTopic, ext("topic", topic), nil)
	req.Version = goClientVersion
	return req
}

// goClientBrokerAddrs replicates how rocketmq-client-go parses brokerAddrs
// (internal/route.go TopicRouteData.decode): gjson for the raw object text, then
// string splitting.
func goClientBrokerAddrs(route []byte) map[string]map[int64]string {
	out := map[string]map[int64]string{}
	for _, v := range gjson.ParseBytes(route).Get("brokerDatas").Array() {
		addrs := v.Get("brokerAddrs").String()
		m := map[int64]string{}
		for _, str := range strings.Split(addrs[1:len(addrs)-1], ",") {
			i := strings.Index(str, ":")
			if i < 0 {
				continue
			}
			id, _ := strconv.ParseInt(strings.ReplaceAll(str[:i], "\"", ""), 10, 64)
			m[id] = strings.ReplaceAll(str[i+1:], "\"", "")
		}
		out[v.Get("brokerName").String()] = m
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waittest.For(t, d, cond, "%s", what)
}

func TestRegisterAndRouteOverTCP(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	addr := n.Addr()

	resp := call(t, c, addr, routeRequest("TopicTest"))
	if resp.Code != remoting.TopicNotExist ||
		resp.Remark != "No topic route info in name server for the topic: TopicTest\nSee http://rocketmq.apache.org/docs/faq/ for further details." {
		t.Fatalf("missing topic: %d %q", resp.Code, resp.Remark)
	}

	resp = call(t, c, addr, registerRequest(t, "DefaultCluster", "broker-a", "127.0.0.1:10911", 0, 1,
		body.NewTopicConfig("TopicTest", 4, 4, 6), body.NewTopicConfig("TBW102", 8, 8, 7)))
	mustSucceed(t, resp)
	if resp.Body != nil || resp.Ext("masterAddr") != "" {
		t.Fatalf("master registration response: %+v", resp)
	}
	mustSucceed(t, call(t, c, addr, registerRequest(t, "DefaultCluster", "broker-a", "127.0.0.1:10921", 1, 1)))

	resp = call(t, c, addr, routeRequest("TopicTest"))
	mustSucceed(t, resp)
	want := `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if string(resp.Body) != want {
		t.Fatalf("route\n got %s\nwant %s", resp.Body, want)
	}
	if got := goClientBrokerAddrs(resp.Body); !reflect.DeepEqual(got, map[string]map[int64]string{"broker-a": {0: "127.0.0.1:10911", 1: "127.0.0.1:10921"}}) {
		t.Fatalf("Go client parse: %v", got)
	}
	if r, err := body.DecodeTopicRouteData(resp.Body); err != nil || r.QueueDatas[0].WriteQueueNums != 4 {
		t.Fatalf("decode: %+v %v", r, err)
	}

	// Clients from V4_9_4 on, or asking for it, get standard JSON.
	req := routeRequest("TopicTest")
	req.Version = 405
	resp = call(t, c, addr, req)
	if !json.Valid(resp.Body) || !strings.Contains(string(resp.Body), `{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}`) {
		t.Fatalf("standard route: %s", resp.Body)
	}
	if got := goClientBrokerAddrs(resp.Body); got["broker-a"][1] != "127.0.0.1:10921" {
		t.Fatalf("Go client parse of standard keys: %v", got)
	}
	req = remoting.NewRequest(remoting.GetRouteInfoByTopic, ext("topic", "TopicTest", "acceptStandardJsonOnly", "true"), nil)
	if resp = call(t, c, addr, req); !json.Valid(resp.Body) {
		t.Fatalf("acceptStandardJsonOnly route: %s", resp.Body)
	}

	resp = call(t, c, addr, remoting.NewRequest(remoting.GetAllTopicListFromNameServer, nil, nil))
	mustSucceed(t, resp)
	if string(resp.Body) != `{"topicList":["TBW102","TopicTest"]}` {
		t.Fatalf("topic list %s", resp.Body)
	}

	// Unregister the master: the group keeps its slave and the topic stays
	// routable for consumers; then the slave goes and so does the topic.
	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.UnregisterBroker, ext(
		"brokerName", "broker-a", "brokerAddr", "127.0.0.1:10911", "clusterName", "DefaultCluster", "brokerId", "0"), nil)))
	resp = call(t, c, addr, routeRequest("TopicTest"))
	if got := goClientBrokerAddrs(resp.Body); !reflect.DeepEqual(got["broker-a"], map[int64]string{1: "127.0.0.1:10921"}) {
		t.Fatalf("after master unregister: %s", resp.Body)
	}
	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.UnregisterBroker, ext(
		"brokerName", "broker-a", "brokerAddr", "127.0.0.1:10921", "clusterName", "DefaultCluster", "brokerId", "1"), nil)))
	if resp = call(t, c, addr, routeRequest("TopicTest")); resp.Code != remoting.TopicNotExist {
		t.Fatalf("after unregister: %d %s", resp.Code, resp.Body)
	}
	resp = call(t, c, addr, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	if string(resp.Body) != `{"brokerAddrTable":{},"clusterAddrTable":{}}` {
		t.Fatalf("cluster info %s", resp.Body)
	}
}

func TestTwoMastersAndSlave(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	addr := n.Addr()
	mustSucceed(t, call(t, c, addr, registerRequest(t, "c", "broker-a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6))))
	mustSucceed(t, call(t, c, addr, registerRequest(t, "c", "broker-b", "10.0.0.2:10911", 0, 1, body.NewTopicConfig("T", 2, 2, 6))))
	resp := call(t, c, addr, registerRequest(t, "c", "broker-a", "10.0.0.3:10911", 1, 7, body.NewTopicConfig("SlaveOnly", 1, 1, 6)))
	mustSucceed(t, resp)
	if resp.Ext("masterAddr") != "10.0.0.1:10911" || resp.Ext("haServerAddr") != "10.0.0.1:10911-ha" {
		t.Fatalf("slave registration response ext %v", resp.ExtFields)
	}
	if resp = call(t, c, addr, routeRequest("SlaveOnly")); resp.Code != remoting.TopicNotExist {
		t.Fatal("a slave's topic config created a route")
	}

	resp = call(t, c, addr, routeRequest("T"))
	mustSucceed(t, resp)
	got := goClientBrokerAddrs(resp.Body)
	if !reflect.DeepEqual(got, map[string]map[int64]string{
		"broker-a": {0: "10.0.0.1:10911", 1: "10.0.0.3:10911"},
		"broker-b": {0: "10.0.0.2:10911"},
	}) {
		t.Fatalf("route %s", resp.Body)
	}

	req := remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil)
	req.Version = goClientVersion
	resp = call(t, c, addr, req)
	mustSucceed(t, resp)
	want := `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.3:10911"},"brokerName":"broker-a","cluster":"c"},` +
		`"broker-b":{"brokerAddrs":{0:"10.0.0.2:10911"},"brokerName":"broker-b","cluster":"c"}},"clusterAddrTable":{"c":["broker-a","broker-b"]}}`
	if string(resp.Body) != want {
		t.Fatalf("cluster info\n got %s\nwant %s", resp.Body, want)
	}
	ci, err := body.DecodeClusterInfo(resp.Body)
	if err != nil || ci.BrokerAddrTable["broker-a"].BrokerAddrs[1] != "10.0.0.3:10911" {
		t.Fatalf("decode cluster info: %+v %v", ci, err)
	}
	// Newer clients get standard JSON.
	resp = call(t, c, addr, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	if !json.Valid(resp.Body) {
		t.Fatalf("cluster info for a 4.9.8 client: %s", resp.Body)
	}

	resp = call(t, c, addr, remoting.NewRequest(remoting.GetTopicsByCluster, ext("cluster", "c"), nil))
	if string(resp.Body) != `{"topicList":["T"]}` {
		t.Fatalf("topics by cluster %s", resp.Body)
	}
	resp = call(t, c, addr, remoting.NewRequest(remoting.GetSystemTopicListFromNS, nil, nil))
	if string(resp.Body) != `{"brokerAddr":"10.0.0.1:10911","topicList":["broker-a","broker-b","c"]}` {
		t.Fatalf("system topics %s", resp.Body)
	}
	for _, code := range []int16{remoting.GetUnitTopicList, remoting.GetHasUnitSubTopicList, remoting.GetHasUnitSubUnunitTopicList} {
		if resp = call(t, c, addr, remoting.NewRequest(code, nil, nil)); string(resp.Body) != `{"topicList":[]}` {
			t.Fatalf("code %d: %s", code, resp.Body)
		}
	}
}

func TestExpiry(t *testing.T) {
	n := startNamesrv(t, "", func(c *Config) {
		c.ScanNotActiveBrokerInterval = 20
		c.BrokerChannelExpiredTime = 300
	})
	c := newClient(t)
	addr := n.Addr()
	registered := time.Now() // no later than the server's registration time
	mustSucceed(t, call(t, c, addr, registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6))))
	q := newClient(t) // a client, not the broker: its connection stays open
	waitFor(t, "broker expiry", 5*time.Second, func() bool {
		return call(t, q, addr, routeRequest("T")).Code == remoting.TopicNotExist
	})
	if el := time.Since(registered); el < 300*time.Millisecond {
		t.Fatalf("expired after %v, before brokerChannelExpiredTime", el)
	}
	// The broker's connection was closed; a new registration brings it
	// back. The first attempt may still go out on the closed connection
	// before the client has seen the close (a broker retries at its next
	// period), so retry until one arrives.
	waitFor(t, "re-registration", 5*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Invoke(ctx, addr, registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6)))
		return err == nil && resp.Code == remoting.Success
	})
	mustSucceed(t, call(t, c, addr, routeRequest("T")))
}

func TestConnectionCloseRemovesBroker(t *testing.T) {
	n := startNamesrv(t, "", nil)
	addr := n.Addr()
	broker := remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	mustSucceed(t, call(t, broker, addr, registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6))))
	other := newClient(t)
	mustSucceed(t, call(t, other, addr, registerRequest(t, "c", "b", "10.0.0.2:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6))))
	mustSucceed(t, call(t, other, addr, routeRequest("T")))

	broker.Close()
	waitFor(t, "broker removal on close", 5*time.Second, func() bool {
		got := goClientBrokerAddrs(call(t, other, addr, routeRequest("T")).Body)
		_, hasA := got["a"]
		return !hasA && len(got) == 1
	})
}

func TestKVConfigPersistsAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "kvConfig.json")
	n := startNamesrv(t, path, func(c *Config) { c.OrderMessageEnable = true })
	c := newClient(t)
	addr := n.Addr()

	put := func(ns, k, v string) {
		mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.PutKVConfig, ext("namespace", ns, "key", k, "value", v), nil)))
	}
	put(OrderTopicConfigNamespace, "T", "a:4")
	put(OrderTopicConfigNamespace, "U", "a:2")
	put("other", "k", "v")
	resp := call(t, c, addr, remoting.NewRequest(remoting.GetKVConfig, ext("namespace", "other", "key", "k"), nil))
	mustSucceed(t, resp)
	if resp.Ext("value") != "v" {
		t.Fatalf("get: %v", resp.ExtFields)
	}
	resp = call(t, c, addr, remoting.NewRequest(remoting.GetKVConfig, ext("namespace", "other", "key", "missing"), nil))
	if resp.Code != remoting.QueryNotFound || resp.Remark != "No config item, Namespace: other Key: missing" {
		t.Fatalf("missing key: %d %q", resp.Code, resp.Remark)
	}
	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.DeleteKVConfig, ext("namespace", OrderTopicConfigNamespace, "key", "U"), nil)))

	// The register response carries the order namespace; routes carry the
	// topic's order conf when orderMessageEnable is on.
	resp = call(t, c, addr, registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6)))
	mustSucceed(t, resp)
	if string(resp.Body) != `{"table":{"T":"a:4"}}` {
		t.Fatalf("register response body %s", resp.Body)
	}
	resp = call(t, c, addr, routeRequest("T"))
	if gjson.GetBytes(resp.Body, "orderTopicConf").String() != "a:4" {
		t.Fatalf("route without orderTopicConf: %s", resp.Body)
	}

	stopNamesrv(t, n)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"configTable":{"ORDER_TOPIC_CONFIG":{"T":"a:4"},"other":{"k":"v"}}}` {
		t.Fatalf("kvConfig.json: %s", data)
	}

	n2 := startNamesrv(t, path, nil)
	c2 := newClient(t)
	resp = call(t, c2, n2.Addr(), remoting.NewRequest(remoting.GetKVListByNamespace, ext("namespace", OrderTopicConfigNamespace), nil))
	mustSucceed(t, resp)
	if string(resp.Body) != `{"table":{"T":"a:4"}}` {
		t.Fatalf("namespace after restart: %s", resp.Body)
	}
	resp = call(t, c2, n2.Addr(), remoting.NewRequest(remoting.GetKVListByNamespace, ext("namespace", "none"), nil))
	if resp.Code != remoting.QueryNotFound {
		t.Fatalf("missing namespace: %d", resp.Code)
	}
	// orderMessageEnable is off on this one: no orderTopicConf in routes.
	mustSucceed(t, call(t, c2, n2.Addr(), registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6))))
	if resp = call(t, c2, n2.Addr(), routeRequest("T")); strings.Contains(string(resp.Body), "orderTopicConf") {
		t.Fatalf("orderTopicConf with orderMessageEnable=false: %s", resp.Body)
	}
}

func TestCorruptKVConfigFailsProvision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kvConfig.json")
	if err := os.WriteFile(path, []byte(`{"configTable":`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.KVConfigPath = path
	if err := new(Namesrv).provision(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("provision with a corrupt kv file: %v", err)
	}
}

func TestAdminCodes(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	addr := n.Addr()
	mustSucceed(t, call(t, c, addr, registerRequest(t, "c1", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6), body.NewTopicConfig("U", 1, 1, 6))))
	mustSucceed(t, call(t, c, addr, registerRequest(t, "c2", "b", "10.0.0.2:10911", 0, 1, body.NewTopicConfig("T", 4, 4, 6))))

	resp := call(t, c, addr, remoting.NewRequest(remoting.WipeWritePermOfBroker, ext("brokerName", "a"), nil))
	mustSucceed(t, resp)
	if resp.Ext("wipeTopicCount") != "2" {
		t.Fatalf("wipe: %v", resp.ExtFields)
	}
	r, _ := body.DecodeTopicRouteData(call(t, c, addr, routeRequest("T")).Body)
	if r.QueueDatas[0].Perm != body.PermRead || r.QueueDatas[1].Perm != 6 {
		t.Fatalf("perms after wipe: %+v", r.QueueDatas)
	}
	resp = call(t, c, addr, remoting.NewRequest(remoting.AddWritePermOfBroker, ext("brokerName", "a"), nil))
	if resp.Ext("addTopicCount") != "2" {
		t.Fatalf("add: %v", resp.ExtFields)
	}
	r, _ = body.DecodeTopicRouteData(call(t, c, addr, routeRequest("T")).Body)
	if r.QueueDatas[0].Perm != 6 {
		t.Fatalf("perms after add: %+v", r.QueueDatas)
	}

	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.DeleteTopicInNamesrv, ext("topic", "T", "clusterName", "c1"), nil)))
	r, _ = body.DecodeTopicRouteData(call(t, c, addr, routeRequest("T")).Body)
	if len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("after delete in c1: %+v", r)
	}
	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.DeleteTopicInNamesrv, ext("topic", "T"), nil)))
	if resp = call(t, c, addr, routeRequest("T")); resp.Code != remoting.TopicNotExist {
		t.Fatal("T survived delete")
	}

	// QUERY_DATA_VERSION: same version is unchanged and refreshes liveness.
	dv, _ := body.Marshal(&body.DataVersion{Counter: 1, Timestamp: 1001})
	resp = call(t, c, addr, remoting.NewRequest(remoting.QueryDataVersion, ext("brokerAddr", "10.0.0.1:10911", "brokerName", "a", "clusterName", "c1", "brokerId", "0"), dv))
	mustSucceed(t, resp)
	if resp.Ext("changed") != "false" || string(resp.Body) != `{"counter":1,"timestamp":1001}` {
		t.Fatalf("query data version: %v %s", resp.ExtFields, resp.Body)
	}
	dv, _ = body.Marshal(&body.DataVersion{Counter: 2, Timestamp: 5})
	resp = call(t, c, addr, remoting.NewRequest(remoting.QueryDataVersion, ext("brokerAddr", "10.0.0.1:10911"), dv))
	if resp.Ext("changed") != "true" {
		t.Fatalf("query data version changed: %v", resp.ExtFields)
	}

	// Codes the name server does not serve.
	if resp = call(t, c, addr, remoting.NewRequest(remoting.SendMessage, nil, nil)); resp.Code != remoting.RequestCodeNotSupported {
		t.Fatalf("SEND_MESSAGE to namesrv: %d", resp.Code)
	}
}

func TestBadRequests(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	addr := n.Addr()
	hdr := func(extra ...string) map[string]string {
		return ext(append([]string{"brokerName", "a", "brokerAddr", "10.0.0.1:10911", "clusterName", "c", "brokerId", "0"}, extra...)...)
	}
	for name, req := range map[string]*remoting.Command{
		"garbage body":     remoting.NewRequest(remoting.RegisterBroker, hdr(), []byte("{not json")),
		"wrong types":      remoting.NewRequest(remoting.RegisterBroker, hdr(), []byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"perm":"rw"}}}}`)),
		"bad compressed":   remoting.NewRequest(remoting.RegisterBroker, hdr("compressed", "true"), []byte("xx")),
		"missing header":   remoting.NewRequest(remoting.RegisterBroker, ext("brokerName", "a"), nil),
		"bad broker id":    remoting.NewRequest(remoting.RegisterBroker, hdr("brokerId", "x"), nil),
		"missing topic":    remoting.NewRequest(remoting.GetRouteInfoByTopic, nil, nil),
		"query no body":    remoting.NewRequest(remoting.QueryDataVersion, ext("brokerAddr", "x"), nil),
		"kv missing value": remoting.NewRequest(remoting.PutKVConfig, ext("namespace", "n", "key", "k"), nil),
	} {
		resp := call(t, c, addr, req)
		if resp.Code != remoting.SystemError || resp.Remark == "" {
			t.Errorf("%s: code %d remark %q", name, resp.Code, resp.Remark)
		}
	}
	resp := call(t, c, addr, remoting.NewRequest(remoting.RegisterBroker, hdr("bodyCrc32", "12345"), []byte(`{}`)))
	if resp.Code != remoting.SystemError || resp.Remark != "crc32 not match" {
		t.Fatalf("crc mismatch: %d %q", resp.Code, resp.Remark)
	}
	if n.Routes().LiveBrokers() != 0 {
		t.Fatal("a rejected registration left a live broker")
	}

	// An empty body registers the broker without topics; a compressed body works.
	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.RegisterBroker, hdr(), nil)))
	rb := body.RegisterBrokerBody{TopicConfigSerializeWrapper: topicTable(3, body.NewTopicConfig("Z", 2, 2, 6))}
	comp, err := rb.Encode(true)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, call(t, c, addr, remoting.NewRequest(remoting.RegisterBroker, hdr("compressed", "true"), comp)))
	mustSucceed(t, call(t, c, addr, routeRequest("Z")))
}

func TestNamesrvConfigCodes(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	addr := n.Addr()
	resp := call(t, c, addr, remoting.NewRequest(remoting.GetNamesrvConfig, nil, nil))
	mustSucceed(t, resp)
	for _, line := range []string{"listenPort=0\n", "orderMessageEnable=false\n", "brokerChannelExpiredTime=120000\n", "scanNotActiveBrokerInterval=10000\n"} {
		if !strings.Contains(string(resp.Body), line) {
			t.Fatalf("config body lacks %q:\n%s", line, resp.Body)
		}
	}

	update := func(text string) *remoting.Command {
		return call(t, c, addr, remoting.NewRequest(remoting.UpdateNamesrvConfig, nil, []byte(text)))
	}
	mustSucceed(t, update("orderMessageEnable=true\nbrokerChannelExpiredTime=60000\n"))
	if cfg := n.settings.get(); !cfg.OrderMessageEnable || cfg.BrokerChannelExpiredTime != 60000 {
		t.Fatalf("after update: %+v", cfg)
	}
	// Path and other static keys are refused, and nothing of a refused update
	// applies.
	for _, text := range []string{
		"orderMessageEnable=false\nkvConfigPath=/tmp/x",
		"configStorePath=/etc/cron.d/x",
		"listenPort=1",
		"rocketmqHome=/tmp",
		"configBlackList=",
		"namesrv.maxFrameSize=1",
	} {
		if resp := update(text); resp.Code != remoting.NoPermission {
			t.Errorf("%q: code %d %q", text, resp.Code, resp.Remark)
		}
	}
	for _, text := range []string{"brokerChannelExpiredTime=abc", "scanNotActiveBrokerInterval=0", ""} {
		if resp := update(text); resp.Code != remoting.SystemError {
			t.Errorf("%q: code %d %q", text, resp.Code, resp.Remark)
		}
	}
	if cfg := n.settings.get(); !cfg.OrderMessageEnable || cfg.KVConfigPath == "/tmp/x" {
		t.Fatalf("refused update applied: %+v", cfg)
	}
}

// TestGoClient drives the name server with the official Go client's admin API:
// GET_ALL_TOPIC_LIST_FROM_NAMESERVER and GET_ROUTEINFO_BY_TOPIC as it sends and
// parses them.
func TestGoClient(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	addr := n.Addr()
	mustSucceed(t, call(t, c, addr, registerRequest(t, "DefaultCluster", "broker-a", "127.0.0.1:10911", 0, 1, body.NewTopicConfig("TopicTest", 4, 4, 6))))
	mustSucceed(t, call(t, c, addr, registerRequest(t, "DefaultCluster", "broker-a", "127.0.0.1:10921", 1, 1)))
	mustSucceed(t, call(t, c, addr, registerRequest(t, "DefaultCluster", "broker-b", "127.0.0.1:10931", 0, 1, body.NewTopicConfig("TopicTest", 2, 2, 6))))
	testGoClient(t, addr)
}

// TestUnknownCodeAnswered: a request code the name server does not serve is
// answered REQUEST_CODE_NOT_SUPPORTED (3) in both header encodings, and the
// connection stays usable, as on the broker.
func TestUnknownCodeAnswered(t *testing.T) {
	n := startNamesrv(t, "", nil)
	c := newClient(t)
	for _, code := range []int16{0, -1, remoting.SendMessage, 351, 32767} {
		for _, st := range []remoting.SerializeType{remoting.JSON, remoting.RocketMQ} {
			req := remoting.NewRequest(code, map[string]string{"topic": "x"}, []byte("body"))
			req.SerializeType = st
			if resp := call(t, c, n.Addr(), req); resp.Code != remoting.RequestCodeNotSupported {
				t.Fatalf("code %d (serialize type %d): answered %d %q", code, st, resp.Code, resp.Remark)
			}
		}
	}
	if resp := call(t, c, n.Addr(), remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil)); resp.Code != remoting.Success {
		t.Fatalf("after the unknown codes: %d %q", resp.Code, resp.Remark)
	}
}
