package nats_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/discovery/discoverytest"
	_ "github.com/mqd/mqd/discovery/nats"
	"github.com/mqd/mqd/discovery/nats/natstest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/waittest"
)

var buckets atomic.Int64

// build starts discovery.nats against url with a bucket of its own.
func build(t *testing.T, url string) kernel.Module {
	t.Helper()
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Env: []string{}, ProfileSource: noProfile, Sets: []string{
		"discovery.nats.url=" + url, fmt.Sprintf("discovery.nats.bucket=test-%d", buckets.Add(1))}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), "discovery.nats")
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.StartModule(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kernel.RetireModule(context.Background(), m) })
	return m
}

func TestConformance(t *testing.T) {
	s := natstest.Start(t)
	discoverytest.Run(t, func(t *testing.T) discoverytest.Registry {
		return discoverytest.Registry{Announcer: build(t, s.ClientURL()).(discovery.Announcer),
			MasterAddr: "127.0.0.1:10911", MasterHAAddr: "127.0.0.1:10912"}
	})
}

// sink records what a watcher delivers.
type sink struct {
	mu   sync.Mutex
	live map[string]*discovery.Registration
	puts int
}

func (s *sink) Put(r *discovery.Registration) {
	s.mu.Lock()
	s.live[r.BrokerAddr] = r
	s.puts++
	s.mu.Unlock()
}

func (s *sink) Delete(r *discovery.Registration) {
	s.mu.Lock()
	delete(s.live, r.BrokerAddr)
	s.mu.Unlock()
}

func (s *sink) has(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[addr] != nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, 20*time.Second, cond, "%s", what)
}

// TestWatch: a watcher sees registrations already in the bucket and those
// announced later, a withdrawal, and, after the NATS server restarted,
// registrations announced since.
func TestWatch(t *testing.T) {
	s := natstest.Start(t)
	m := build(t, s.ClientURL())
	a, w := m.(discovery.Announcer), m.(discovery.Watcher)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := a.Announce(ctx, discoverytest.Registration(t, "127.0.0.1:1", "", 0)); err != nil {
		t.Fatal(err)
	}
	got := &sink{live: map[string]*discovery.Registration{}}
	done := make(chan struct{})
	go func() { defer close(done); w.Watch(ctx, got) }()
	waitFor(t, "the registration made before the watch", func() bool { return got.has("127.0.0.1:1") })
	if _, err := a.Announce(ctx, discoverytest.Registration(t, "127.0.0.1:2", "", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a registration made during the watch", func() bool { return got.has("127.0.0.1:2") })
	if err := a.Withdraw(ctx, discoverytest.Registration(t, "127.0.0.1:2", "", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawal", func() bool { return !got.has("127.0.0.1:2") })

	s.Shutdown()
	if _, err := a.Announce(ctx, discoverytest.Registration(t, "127.0.0.1:3", "", 2)); err == nil {
		t.Fatal("announce with NATS down succeeded")
	}
	s.Restart(t)
	waitFor(t, "an announcement once NATS is back", func() bool {
		_, err := a.Announce(ctx, discoverytest.Registration(t, "127.0.0.1:3", "", 2))
		return err == nil
	})
	waitFor(t, "the watcher to see it", func() bool { return got.has("127.0.0.1:3") })
	cancel()
	<-done
}
