package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqd/mqd/protocols/remoting/body"
)

func TestValidateTopic(t *testing.T) {
	for _, ok := range []string{"TopicTest", "a", "%RETRY%g", "ns%topic", "a|b", "A-b_9", strings.Repeat("x", 127)} {
		if err := validateTopic(ok); err != nil {
			t.Errorf("validateTopic(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../x", "..", ".", "a/b", "a b", "a.b", "tópico", "a\x00", strings.Repeat("x", 128)} {
		if err := validateTopic(bad); err == nil {
			t.Errorf("validateTopic(%q) accepted", bad)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = validateTopic("TopicTest") }); n != 0 {
		t.Errorf("validateTopic allocates %v", n)
	}
}

func TestSystemTopicsAtStart(t *testing.T) {
	b := newMetaBroker(t, "", "broker.brokerClusterName=C1", "broker.brokerName=bn", "broker.traceTopicEnable=true")
	want := map[string][3]int32{ // read, write, perm
		topicSelfTest:         {1, 1, 6},
		topicAutoCreate:       {8, 8, 7},
		topicBenchmark:        {1024, 1024, 6},
		"C1":                  {16, 16, 7},
		"bn":                  {1, 1, 7},
		topicOffsetMovedEvent: {1, 1, 6},
		topicSchedule:         {18, 18, 6},
		"RMQ_SYS_TRACE_TOPIC": {1, 1, 6},
		"C1_REPLY_TOPIC":      {1, 1, 6},
	}
	for name, w := range want {
		tc, ok := b.topics.Get(name)
		if !ok {
			t.Errorf("system topic %s missing", name)
			continue
		}
		if tc.ReadQueueNums != w[0] || tc.WriteQueueNums != w[1] || tc.Perm != w[2] {
			t.Errorf("%s = %+v, want r/w/perm %v", name, tc, w)
		}
	}
	b2 := newMetaBroker(t, "", "broker.autoCreateTopicEnable=false", "broker.clusterTopicEnable=false", "broker.brokerTopicEnable=false")
	if _, ok := b2.topics.Get(topicAutoCreate); ok {
		t.Error("TBW102 exists with autoCreateTopicEnable=false")
	}
	if tc, _ := b2.topics.Get("DefaultCluster"); tc.Perm != body.PermInherit {
		t.Errorf("cluster topic perm %d with clusterTopicEnable=false", tc.Perm)
	}
	if _, ok := b2.topics.Get("RMQ_SYS_TRACE_TOPIC"); ok {
		t.Error("trace topic exists with traceTopicEnable=false")
	}
}

func TestAutoCreateTopic(t *testing.T) {
	dir := t.TempDir()
	b := newMetaBroker(t, dir)
	v0 := b.topics.DataVersion()

	tc, ok := b.topics.CreateInSendMessage("NewTopic", topicAutoCreate, "1.2.3.4:5", 4, 0)
	if !ok || tc.ReadQueueNums != 4 || tc.WriteQueueNums != 4 || tc.Perm != 6 || tc.TopicName != "NewTopic" {
		t.Fatalf("auto-create = %+v, %v", tc, ok)
	}
	if v := b.topics.DataVersion(); v.Counter != v0.Counter+1 {
		t.Errorf("data version %+v after create, was %+v", v, v0)
	}
	select {
	case <-b.topics.regKick:
	default:
		t.Error("no registration requested after auto-create")
	}
	// The default topic caps the queue count.
	if tc, _ := b.topics.CreateInSendMessage("Big", topicAutoCreate, "", 64, 0); tc.WriteQueueNums != 8 {
		t.Errorf("queues = %d, want TBW102's 8", tc.WriteQueueNums)
	}
	// An existing topic is returned as is.
	if tc, ok := b.topics.CreateInSendMessage("NewTopic", "nope", "", 1, 0); !ok || tc.WriteQueueNums != 4 {
		t.Errorf("existing topic = %+v, %v", tc, ok)
	}
	// Unknown default topic, default topic without INHERIT, bad name.
	if _, ok := b.topics.CreateInSendMessage("X1", "NoSuchDefault", "", 4, 0); ok {
		t.Error("created from a missing default topic")
	}
	if _, ok := b.topics.CreateInSendMessage("X2", "NewTopic", "", 4, 0); ok {
		t.Error("created from a default topic without INHERIT")
	}
	if _, ok := b.topics.CreateInSendMessage("../x", topicAutoCreate, "", 4, 0); ok {
		t.Error("created a topic with a bad name")
	}

	// Persisted: a new manager on the same dir sees it.
	b2 := newMetaBroker(t, dir)
	if tc, ok := b2.topics.Get("NewTopic"); !ok || tc.WriteQueueNums != 4 {
		t.Fatalf("after reload: %+v, %v", tc, ok)
	}
	if b2.topics.DataVersion() != b.topics.DataVersion() {
		t.Errorf("version after reload %+v, want %+v", b2.topics.DataVersion(), b.topics.DataVersion())
	}
}

func TestAutoCreateDisabled(t *testing.T) {
	dir := t.TempDir()
	newMetaBroker(t, dir).topics.persist() // TBW102 on disk from a run with auto-create on
	b := newMetaBroker(t, dir, "broker.autoCreateTopicEnable=false")
	if _, ok := b.topics.Get(topicAutoCreate); !ok {
		t.Fatal("TBW102 from the file not loaded")
	}
	if _, ok := b.topics.CreateInSendMessage("NewTopic", topicAutoCreate, "", 4, 0); ok {
		t.Fatal("auto-created with autoCreateTopicEnable=false")
	}
	// Retry topics are always created.
	tc, ok := b.topics.CreateInSendBack("%RETRY%g1", 1, 6, 0)
	if !ok || tc.ReadQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("retry topic = %+v, %v", tc, ok)
	}
	if _, ok := b.topics.CreateInSendBack("%RETRY%../g", 1, 6, 0); ok {
		t.Fatal("created a retry topic with a bad name")
	}
}

func TestTopicUpdateDeleteSnapshot(t *testing.T) {
	dir := t.TempDir()
	b := newMetaBroker(t, dir)
	tc := body.NewTopicConfig("T1", 4, 2, 6)
	if err := b.topics.Update(tc); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []body.TopicConfig{
		body.NewTopicConfig("a/b", 1, 1, 6),
		body.NewTopicConfig("T2", -1, 1, 6),
		body.NewTopicConfig("T2", 1, 1, 99),
	} {
		if err := b.topics.Update(bad); err == nil {
			t.Errorf("Update(%+v) accepted", bad)
		}
	}
	snap, v := b.topics.Snapshot()
	if got := snap["T1"]; got != tc {
		t.Fatalf("snapshot T1 = %+v", got)
	}
	snap["T1"] = body.TopicConfig{} // a copy: the manager must not see this
	if got, _ := b.topics.Get("T1"); got != tc {
		t.Fatal("snapshot aliases the table")
	}
	b.topics.Delete("T1")
	if _, ok := b.topics.Get("T1"); ok {
		t.Fatal("T1 still there")
	}
	if b.topics.DataVersion().Counter <= v.Counter {
		t.Fatal("delete did not bump the version")
	}
	if _, ok := newMetaBroker(t, dir).topics.Get("T1"); ok {
		t.Fatal("T1 back after reload")
	}
}

func TestTopicsFileFallbackAndCorruption(t *testing.T) {
	dir := t.TempDir()
	b := newMetaBroker(t, dir)
	b.topics.Update(body.NewTopicConfig("Kept", 3, 3, 6))
	b.topics.Update(body.NewTopicConfig("Newer", 3, 3, 6)) // the previous content is now topics.json.bak
	p := filepath.Join(dir, topicsFile)
	os.WriteFile(p, []byte(`{"topicConfigTable":{"x":`), 0o644) // torn write
	b2 := newMetaBroker(t, dir)
	if _, ok := b2.topics.Get("Kept"); !ok {
		t.Fatal("the .bak was not used")
	}
	os.WriteFile(p+".bak", []byte("garbage"), 0o644)
	b3 := &Broker{cfg: b.cfg, log: b.log, configDir: dir}
	if _, err := newTopicConfigManager(b3); err == nil {
		t.Fatal("corrupt file and .bak loaded without error")
	}
	// A file naming a topic that is not a valid name is refused too.
	os.WriteFile(p, []byte(`{"topicConfigTable":{"../etc":{"topicName":"../etc","readQueueNums":1,"writeQueueNums":1,"perm":6}}}`), 0o644)
	os.Remove(p + ".bak")
	if _, err := newTopicConfigManager(b3); err == nil {
		t.Fatal("bad topic name in topics.json accepted")
	}
}

func TestOrderFlags(t *testing.T) {
	b := newMetaBroker(t, "")
	b.topics.Update(body.NewTopicConfig("O1", 4, 4, 6))
	b.topics.Update(body.NewTopicConfig("O2", 4, 4, 6))
	b.topics.UpdateOrderFlags(map[string]string{"O1": "broker-a:4", "Unknown": "x:1"})
	if tc, _ := b.topics.Get("O1"); !tc.Order {
		t.Error("O1 not ordered")
	}
	if tc, _ := b.topics.Get("O2"); tc.Order {
		t.Error("O2 ordered")
	}
	b.topics.UpdateOrderFlags(nil)
	if tc, _ := b.topics.Get("O1"); tc.Order {
		t.Error("O1 still ordered after the table emptied")
	}
}
