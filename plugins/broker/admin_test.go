package broker

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"

	_ "github.com/mqd/mqd/discovery/namesrv" // the default discovery mode
	_ "github.com/mqd/mqd/storage/commitlog" // the default store engine
)

// startMetaKernel runs the whole app.broker (real store in root) in a kernel
// and returns it with a stop function (also run at cleanup).
func startMetaKernel(t testing.TB, root string, sets ...string) (*Broker, func()) {
	t.Helper()
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	all := append([]string{"broker.listenPort=0", "broker.brokerIP1=127.0.0.1", "store.storePathRootDir=" + root}, sets...)
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, Sets: all, ProfileSource: noProfile})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	k := kernel.New(cfg, zerolog.New(io.Discard))
	if err := k.Load(context.Background(), "app.broker"); err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := k.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	var b *Broker
	for _, m := range k.Loaded() {
		if x, ok := m.(*Broker); ok {
			b = x
		}
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	t.Cleanup(stop)
	return b, stop
}

func TestAdminOverTheWire(t *testing.T) {
	root := t.TempDir()
	ns := startFakeNamesrv(t)
	b, stop := startMetaKernel(t, root, "broker.namesrvAddr="+ns.addr)
	if len(ns.registrations()) != 1 {
		t.Fatalf("registrations at start: %d", len(ns.registrations()))
	}
	c := newMetaClient(t, b.Addr())

	// UPDATE_AND_CREATE_TOPIC as the Go admin client sends it.
	ext := map[string]string{"topic": "AdminTopic", "defaultTopic": "defaultTopic", "readQueueNums": "4",
		"writeQueueNums": "4", "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}
	if resp := c.invoke(remoting.UpdateAndCreateTopic, ext, nil); resp.Code != 0 {
		t.Fatalf("17: %d %s", resp.Code, resp.Remark)
	}
	if tc, ok := b.topics.Get("AdminTopic"); !ok || tc.ReadQueueNums != 4 {
		t.Fatalf("AdminTopic = %+v", tc)
	}
	metaWaitFor(t, "registration after create", func() bool { return len(ns.registrations()) >= 2 })
	for _, bad := range []string{"../x", "TBW102", "SCHEDULE_TOPIC_XXXX", "rmq_sys_x", "DefaultCluster", ""} {
		e := map[string]string{"topic": bad, "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}
		if resp := c.invoke(remoting.UpdateAndCreateTopic, e, nil); resp.Code != remoting.SystemError || resp.Remark == "" {
			t.Errorf("17 %q: %d %q", bad, resp.Code, resp.Remark)
		}
	}
	if resp := c.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": "T9", "perm": "6"}, nil); resp.Code != remoting.SystemError {
		t.Errorf("17 without queue counts: %d", resp.Code)
	}

	// GET_ALL_TOPIC_CONFIG.
	resp := c.invoke(remoting.GetAllTopicConfig, nil, nil)
	var w body.TopicConfigSerializeWrapper
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.TopicConfigTable["AdminTopic"].WriteQueueNums != 4 {
		t.Fatalf("21: %v %s", err, resp.Body)
	}

	// Groups: 200, 201, 207.
	g := `{"groupName":"AG","consumeEnable":false,"retryMaxTimes":2}`
	if resp := c.invoke(remoting.UpdateAndCreateSubscriptionGroup, nil, []byte(g)); resp.Code != 0 {
		t.Fatalf("200: %d %s", resp.Code, resp.Remark)
	}
	if resp := c.invoke(remoting.UpdateAndCreateSubscriptionGroup, nil, []byte(`{"groupName":`)); resp.Code != remoting.SystemError {
		t.Fatalf("200 bad body: %d", resp.Code)
	}
	resp = c.invoke(remoting.GetAllSubscriptionGroupConfig, nil, nil)
	var sw body.SubscriptionGroupWrapper
	if err := json.Unmarshal(resp.Body, &sw); err != nil || sw.SubscriptionGroupTable["AG"].ConsumeEnable || sw.SubscriptionGroupTable["AG"].RetryQueueNums != 1 {
		t.Fatalf("201: %v %s", err, resp.Body)
	}
	b.offsets.Commit("AG", "AdminTopic", 0, 9)
	if resp := c.invoke(remoting.DeleteSubscriptionGroup, map[string]string{"groupName": "AG", "removeOffset": "true"}, nil); resp.Code != 0 {
		t.Fatalf("207: %d", resp.Code)
	}
	if _, ok := b.subGroups.Get("AG"); ok {
		t.Fatal("AG still there")
	}
	if _, ok := b.offsets.Query("AG", "AdminTopic", 0); ok {
		t.Fatal("AG offsets kept with removeOffset=true")
	}

	// 43: fastjson form.
	b.offsets.Commit("CG", "AdminTopic", 1, 5)
	resp = c.invoke(remoting.GetAllConsumerOffset, nil, nil)
	if string(resp.Body) != `{"offsetTable":{"AdminTopic@CG":{1:5}}}` {
		t.Fatalf("43: %s", resp.Body)
	}

	// 26: properties text.
	resp = c.invoke(remoting.GetBrokerConfig, nil, nil)
	if resp.Code != 0 || !strings.Contains(string(resp.Body), "brokerName=broker-a\n") ||
		!strings.Contains(string(resp.Body), "flushDiskType=ASYNC_FLUSH\n") || resp.Ext("version") == "" {
		t.Fatalf("26: %d %q %s", resp.Code, resp.Ext("version"), resp.Body)
	}

	// DELETE_TOPIC_IN_BROKER.
	if resp := c.invoke(remoting.DeleteTopicInBroker, map[string]string{"topic": "TBW102"}, nil); resp.Code != remoting.SystemError {
		t.Fatalf("215 system topic: %d", resp.Code)
	}
	if resp := c.invoke(remoting.DeleteTopicInBroker, map[string]string{"topic": "../../etc"}, nil); resp.Code != remoting.SystemError {
		t.Fatalf("215 bad name: %d", resp.Code)
	}
	if resp := c.invoke(remoting.DeleteTopicInBroker, map[string]string{"topic": "AdminTopic"}, nil); resp.Code != 0 {
		t.Fatalf("215: %d %s", resp.Code, resp.Remark)
	}
	if _, ok := b.topics.Get("AdminTopic"); ok {
		t.Fatal("AdminTopic still there")
	}
	if _, ok := b.offsets.Query("CG", "AdminTopic", 1); ok {
		t.Fatal("offsets of a deleted topic kept")
	}

	// Stop: offsets persisted, unregistered.
	b.offsets.Commit("CG", "Other", 0, 77)
	stop()
	if ns.unregistrations() != 1 {
		t.Fatalf("unregistrations: %d", ns.unregistrations())
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", consumerOffsetFile))
	if err != nil || !strings.Contains(string(raw), "0:77") {
		t.Fatalf("offsets at stop: %v %s", err, raw)
	}
	for _, f := range []string{topicsFile, subscriptionGroupFile} {
		if _, err := os.Stat(filepath.Join(root, "config", f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
