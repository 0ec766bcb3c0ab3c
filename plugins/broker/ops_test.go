package broker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
)

// TestLiveKeysMatchKeyTable: the keys updateBrokerConfig accepts are exactly
// the broker keys marked Live in the key table.
func TestLiveKeysMatchKeyTable(t *testing.T) {
	marked := map[string]bool{}
	for _, k := range config.Keys() {
		if k.Live && strings.HasPrefix(k.Path, "broker.") {
			marked[strings.TrimPrefix(k.Path, "broker.")] = true
		}
	}
	for k := range liveKeys {
		if !marked[k] {
			t.Errorf("%s is accepted by updateBrokerConfig but not marked Live", k)
		}
	}
	for k := range marked {
		if !liveKeys[k] {
			t.Errorf("broker.%s is marked Live but updateBrokerConfig refuses it", k)
		}
	}
}

func TestUpdateBrokerConfig(t *testing.T) {
	b := &Broker{log: zerolog.Nop(), cfg: Config{AutoCreateTopicEnable: true, LongPollingEnable: true, ShortPollingTimeMills: 1000, MaxMessageSize: 4 << 20}}
	req := func(text string) *remoting.Command {
		return b.handleUpdateBrokerConfig(nil, remoting.NewRequest(remoting.UpdateBrokerConfig, nil, []byte(text)))
	}
	if r := req("autoCreateTopicEnable=false\nshortPollingTimeMills=250\n"); r.Code != remoting.Success {
		t.Fatalf("update: %d %s", r.Code, r.Remark)
	}
	if b.autoCreateTopicEnable() || b.shortPollingTimeMills() != 250 || !b.longPollingEnable() {
		t.Fatalf("after update: %+v", *b.conf())
	}
	if !b.cfg.AutoCreateTopicEnable {
		t.Fatal("the provisioned config was written")
	}
	// A request with one refused key applies nothing.
	for _, tc := range []struct{ body, want string }{
		{"longPollingEnable=false\nbrokerRole=SYNC_MASTER", "brokerRole=SYNC_MASTER: replication is not provisioned"},
		{"longPollingEnable=false\nmaxMessageSize=1", "maxMessageSize (broker.maxMessageSize) cannot change at runtime"},
		{"longPollingEnable=maybe", "want true or false"},
		{"shortPollingTimeMills=-1", "non-negative integer"},
		{"noSuchKey=1", `unknown key "noSuchKey"`},
		{"", "no key=value"},
		{"justtext", "is not key=value"},
	} {
		r := req(tc.body)
		if r.Code != remoting.SystemError || !strings.Contains(r.Remark, tc.want) {
			t.Errorf("%q: %d %q, want %q", tc.body, r.Code, r.Remark, tc.want)
		}
		if !b.longPollingEnable() {
			t.Fatalf("%q: a refused request was partly applied", tc.body)
		}
	}
}

func TestKeyedStats(t *testing.T) {
	var k keyedStats
	now := time.Now()
	k.sample(now)
	for i := 0; i < 10; i++ {
		k.recordPut("T", 2, 200)
	}
	k.recordGet("T", "G", 5, 500)
	k.recordGet("T", "G", 0, 0) // empty pulls do not count
	ms := now.Add(10 * time.Second).UnixMilli()
	it := k.item(StatsTopicPutNums, "T", "C")
	m, h, d := it.Snapshots(ms)
	if m.Sum != 20 || h.Sum != 20 || d.Sum != 20 || m.Avgpt != 2 || m.Tps <= 0 {
		t.Fatalf("TOPIC_PUT_NUMS minute %+v hour %+v day %+v", m, h, d)
	}
	if s, _, _ := k.item(StatsTopicPutSize, "T", "C").Snapshots(ms); s.Sum != 2000 {
		t.Fatalf("TOPIC_PUT_SIZE %+v", s)
	}
	if g, _, _ := k.item(StatsGroupGetNums, "T@G", "C").Snapshots(ms); g.Sum != 5 {
		t.Fatalf("GROUP_GET_NUMS %+v", g)
	}
	if b, _, _ := k.item(StatsBrokerPut, "C", "C").Snapshots(ms); b.Sum != 20 {
		t.Fatalf("BROKER_PUT_NUMS %+v", b)
	}
	for _, miss := range [][2]string{{StatsTopicPutNums, "U"}, {StatsGroupGetNums, "T@H"}, {StatsGroupGetNums, "T"}, {StatsBrokerPut, "D"}, {"NOPE", "T"}} {
		if k.item(miss[0], miss[1], "C") != nil {
			t.Errorf("item %v exists", miss)
		}
	}
	// The minute window slides: after 7 samples without traffic its sum is 0.
	for i := 1; i <= 8; i++ {
		k.sample(now.Add(time.Duration(i) * 10 * time.Second))
	}
	if m, _, _ := it.Snapshots(now.Add(81 * time.Second).UnixMilli()); m.Sum != 0 {
		t.Fatalf("minute window after 80 s idle: %+v", m)
	}
}

// TestKeyedStatsNoAllocs: counting a put or a pull of a known topic and group
// allocates nothing.
func TestKeyedStatsNoAllocs(t *testing.T) {
	var k keyedStats
	k.recordPut("T", 1, 10)
	k.recordGet("T", "G", 1, 10)
	topic, group := strings.Repeat("T", 1), strings.Repeat("G", 1)
	if n := testing.AllocsPerRun(1000, func() {
		k.recordPut(topic, 1, 10)
		k.recordGet(topic, group, 1, 10)
	}); n != 0 {
		t.Fatalf("%v allocations per put+get", n)
	}
}

func TestViewBrokerStatsData(t *testing.T) {
	b := &Broker{log: zerolog.Nop(), cfg: Config{BrokerClusterName: "C"}}
	b.stats.keyed.sample(time.Now())
	b.stats.keyed.recordPut("T", 3, 30)
	req := remoting.NewRequest(remoting.ViewBrokerStatsData, map[string]string{"statsName": "TOPIC_PUT_NUMS", "statsKey": "T"}, nil)
	r := b.handleViewBrokerStatsData(nil, req)
	var d brokerStatsData
	if r.Code != remoting.Success || json.Unmarshal(r.Body, &d) != nil || d.StatsMinute.Sum != 3 || d.StatsDay.Sum != 3 {
		t.Fatalf("%d %s %s", r.Code, r.Remark, r.Body)
	}
	req.ExtFields.Set("statsKey", "U")
	if r := b.handleViewBrokerStatsData(nil, req); r.Code != remoting.SystemError || r.Remark != "The stats <TOPIC_PUT_NUMS> <U> not exist" {
		t.Fatalf("missing key: %d %q", r.Code, r.Remark)
	}
}

// TestUpdateBrokerConfigRefusesDangerousKeys (#16, CVE-2023-33246's class):
// no remote UPDATE_BROKER_CONFIG may set what names a file, a directory, a
// program, a port or an address to reach, nor a plugin's keys; one such key
// refuses the whole request. A replication mode is only ever a registered
// module, never a path.
func TestUpdateBrokerConfigRefusesDangerousKeys(t *testing.T) {
	b := &Broker{log: zerolog.Nop(), cfg: Config{LongPollingEnable: true, MaxMessageSize: 4 << 20}}
	classes := map[string][]string{
		"paths": {"storePathRootDir=/tmp/x", "store.storePathRootDir=/etc", "storePathCommitLog=/tmp/cl", "storePathEpochFile=/tmp/e",
			"storePathBrokerIdentity=/tmp/i", "broker.storePathEpochFile=../../e", "kvConfigPath=/etc/passwd"},
		"plugins and programs": {"plugins.dir=/tmp/evil", "plugin.quorum.acks=1", "ha.mode=../../bin/sh", "ha.mode=/bin/sh", "rocketmqHome=/tmp"},
		"ports and listeners":  {"listenPort=1", "haListenPort=2", "admin.listen=0.0.0.0:1", "broker.metricsAddr=0.0.0.0:1"},
		"addresses and credentials": {"namesrvAddr=evil:9876", "haMasterAddress=evil:1", "controllerAddr=evil:1", "admin.token=x",
			"admin.allowRemote=true", "discovery.mode=nats", "discovery.nats.url=nats://evil:4222", "brokerIP1=10.0.0.1"},
		"roles": {"enableControllerMode=true", "brokerId=3", "brokerName=other", "store.engine=badger"},
	}
	for class, bodies := range classes {
		for _, kv := range bodies {
			r := b.handleUpdateBrokerConfig(nil, remoting.NewRequest(remoting.UpdateBrokerConfig, nil, []byte("longPollingEnable=false\n"+kv)))
			if r.Code == remoting.Success {
				t.Errorf("%s: %q was accepted", class, kv)
			}
			if !b.longPollingEnable() {
				t.Fatalf("%s: %q: the request was partly applied", class, kv)
			}
		}
	}
	// On a master, ha.mode goes through the module registry: a path is no
	// module (installed plugins are registered from their checked manifest).
	for _, m := range []string{"../../bin/sh", "/bin/sh", "ha./bin/sh", "ha.quorum/../x"} {
		if id, err := ha.ModuleForMode(m); err == nil {
			t.Errorf("ha.mode %q resolved to module %s", m, id)
		}
	}
}
