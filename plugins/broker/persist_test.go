package broker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
)

// metaTestConfig returns the broker configuration with its registered defaults
// and the given --set style overrides.
func metaTestConfig(t testing.TB, sets ...string) Config {
	t.Helper()
	// An empty profile: only the registered (RocketMQ 4.9.8) defaults apply, and
	// other roles' profile keys need not be registered in this test binary.
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, Sets: sets, ProfileSource: noProfile})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var c Config
	if err := cfg.Unmarshal("broker", &c); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return c
}

// newMetaBroker builds a Broker with only the metadata managers, its config
// files in dir (a fresh temp dir when empty). No store, no server.
func newMetaBroker(t testing.TB, dir string, sets ...string) *Broker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	b := &Broker{cfg: metaTestConfig(t, sets...), log: zerolog.New(io.Discard), configDir: dir, stop: make(chan struct{})}
	if err := b.loadMetaManagers(); err != nil {
		t.Fatalf("managers: %v", err)
	}
	return b
}

func (b *Broker) loadMetaManagers() error {
	var err error
	if b.topics, err = newTopicConfigManager(b); err != nil {
		return err
	}
	if b.subGroups, err = newSubscriptionGroupManager(b); err != nil {
		return err
	}
	if b.offsets, err = newConsumerOffsetManager(b); err != nil {
		return err
	}
	b.clients = newClientManager(b)
	b.locks = newQueueLockManager(b)
	return nil
}

// serveMeta starts a real remoting server on 127.0.0.1 with the metadata
// handlers and returns its address; everything stops at cleanup.
func serveMeta(t testing.TB, b *Broker) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.listener = ln
	b.addr = ln.Addr().String()
	b.server = remoting.NewServer(remoting.ServerConfig{Logger: zerolog.New(io.Discard)})
	b.registerHandlers()
	b.server.OnClose(b.clients.OnConnClose)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.server.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.server.Shutdown(ctx)
		<-done
	})
	return b.addr
}

// waitFor polls cond until it holds or the deadline passes.
func metaWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriteFileSafeKeepsBak(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "x.json")
	if err := writeFileSafe(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p + ".bak"); !os.IsNotExist(err) {
		t.Fatalf("first write made a .bak: %v", err)
	}
	if err := writeFileSafe(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "two" {
		t.Fatalf("file = %q", got)
	}
	if got, _ := os.ReadFile(p + ".bak"); string(got) != "one" {
		t.Fatalf("bak = %q", got)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("tmp left behind: %v", err)
	}
}

func TestLoadFileWithBak(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	var got string
	decode := func(b []byte) error {
		if !json.Valid(b) {
			return errors.New("invalid json")
		}
		got = string(b)
		return nil
	}
	// Nothing at all: not found, no error.
	if found, _, err := loadFileWithBak(p, decode); found || err != nil {
		t.Fatalf("missing: found=%v err=%v", found, err)
	}
	// Corrupt file, good bak.
	os.WriteFile(p, []byte("{broken"), 0o644)
	os.WriteFile(p+".bak", []byte(`{"a":1}`), 0o644)
	found, usedBak, err := loadFileWithBak(p, decode)
	if err != nil || !found || !usedBak || got != `{"a":1}` {
		t.Fatalf("corrupt+bak: found=%v bak=%v err=%v got=%q", found, usedBak, err, got)
	}
	// Empty file, good bak.
	os.WriteFile(p, nil, 0o644)
	if found, usedBak, err := loadFileWithBak(p, decode); err != nil || !found || !usedBak {
		t.Fatalf("empty+bak: found=%v bak=%v err=%v", found, usedBak, err)
	}
	// Both corrupt: an error, never a silent empty table.
	os.WriteFile(p, []byte("{broken"), 0o644)
	os.WriteFile(p+".bak", []byte("also broken"), 0o644)
	if _, _, err := loadFileWithBak(p, decode); err == nil {
		t.Fatal("both corrupt: no error")
	}
	// Corrupt and no bak: an error.
	os.Remove(p + ".bak")
	if _, _, err := loadFileWithBak(p, decode); err == nil {
		t.Fatal("corrupt without bak: no error")
	}
}
