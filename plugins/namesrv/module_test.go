package namesrv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/logging/logtest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// noProfile keeps the shipped profiles out: they name keys of packages this
// test does not link (broker.*, store.*).
func noProfile(string) ([]byte, error) { return []byte("{}"), nil }

// TestModuleFromPropertiesFile runs app.namesrv through the kernel from a
// RocketMQ-style namesrv.properties.
func TestModuleFromPropertiesFile(t *testing.T) {
	dir := t.TempDir()
	kvPath := filepath.Join(dir, "kv", "kvConfig.json")
	props := filepath.Join(dir, "namesrv.properties")
	text := "listenPort=0\nkvConfigPath=" + kvPath + "\norderMessageEnable=true\nserverWorkerThreads=16\nproductEnvName=center\n"
	if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Role: "namesrv", ProfileSource: noProfile, File: props, Env: []string{},
		Sets: []string{"namesrv.brokerChannelExpiredTime=5000"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "serverWorkerThreads") || !strings.Contains(cfg.Warnings[0], "productEnvName") {
		t.Fatalf("warnings %v", cfg.Warnings)
	}

	var logs logtest.Buffer
	k := kernel.New(cfg, zerolog.New(&logs))
	if err := k.Load(context.Background(), "app.namesrv"); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	n := k.Loaded()[0].(*Namesrv)
	if got := n.settings.get(); !got.OrderMessageEnable || got.BrokerChannelExpiredTime != 5000 || got.KVConfigPath != kvPath {
		t.Fatalf("config %+v", got)
	}

	c := newClient(t)
	mustSucceed(t, call(t, c, n.Addr(), remoting.NewRequest(remoting.PutKVConfig, ext("namespace", "ns", "key", "k", "value", "v"), nil)))
	mustSucceed(t, call(t, c, n.Addr(), registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 1, 1, 6))))
	// A heartbeat re-registration is not logged again.
	mustSucceed(t, call(t, c, n.Addr(), registerRequest(t, "c", "a", "10.0.0.1:10911", 0, 1, body.NewTopicConfig("T", 1, 1, 6))))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kvPath); err != nil {
		t.Fatal(err)
	}

	var listening, registered int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch m["message"] {
		case "listening":
			listening++
			if m["role"] != "namesrv" || !strings.HasSuffix(m["addr"].(string), n.Addr()[strings.LastIndexByte(n.Addr(), ':'):]) || m["module"] != "app.namesrv" {
				t.Errorf("listening log %v", m)
			}
		case "broker registered":
			registered++
		}
	}
	if listening != 1 || registered != 1 {
		t.Fatalf("listening logged %d times, registration %d times:\n%s", listening, registered, logs.String())
	}
}

func TestModuleRejectsBadConfig(t *testing.T) {
	for _, set := range []string{"namesrv.scanNotActiveBrokerInterval=0", "namesrv.listenPort=70000", "namesrv.brokerChannelExpiredTime=-1"} {
		cfg, err := config.Load(config.LoadOptions{Role: "namesrv", ProfileSource: noProfile, Env: []string{},
			Sets: []string{set, "namesrv.kvConfigPath=" + filepath.Join(t.TempDir(), "kv.json")}})
		if err != nil {
			t.Fatal(err)
		}
		if err := kernel.New(cfg, zerolog.Nop()).Load(context.Background(), "app.namesrv"); err == nil {
			t.Errorf("%s: loaded", set)
		}
	}
}
