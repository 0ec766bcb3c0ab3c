package broker

import (
	"context"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	_ "github.com/mqd/mqd/discovery/namesrv" // the default discovery mode
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// fakeNamesrv records REGISTER_BROKER and UNREGISTER_BROKER requests.
type fakeNamesrv struct {
	addr string
	mu   sync.Mutex
	regs []*remoting.Command
	unre []*remoting.Command
	kv   map[string]string // ORDER_TOPIC_CONFIG answered to registrations
}

func startFakeNamesrv(t testing.TB) *fakeNamesrv {
	ns := &fakeNamesrv{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns.addr = ln.Addr().String()
	s := remoting.NewServer(remoting.ServerConfig{Logger: zerolog.New(io.Discard)})
	s.Handle(remoting.RegisterBroker, func(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
		ns.mu.Lock()
		ns.regs = append(ns.regs, req)
		kv := ns.kv
		ns.mu.Unlock()
		resp := remoting.NewResponse(remoting.Success, "")
		resp.Body, _ = body.Marshal(&body.KVTable{Table: kv})
		return resp
	})
	s.Handle(remoting.UnregisterBroker, func(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
		ns.mu.Lock()
		ns.unre = append(ns.unre, req)
		ns.mu.Unlock()
		return remoting.NewResponse(remoting.Success, "")
	})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ns
}

func (ns *fakeNamesrv) registrations() []*remoting.Command {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]*remoting.Command(nil), ns.regs...)
}

func (ns *fakeNamesrv) unregistrations() int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return len(ns.unre)
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// withNamesrvDiscovery gives a meta broker the default discovery mode,
// discovery.namesrv, built from sets.
func withNamesrvDiscovery(t *testing.T, b *Broker, sets ...string) {
	t.Helper()
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, Sets: sets, ProfileSource: noProfile})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), "discovery.namesrv")
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.StartModule(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kernel.RetireModule(context.Background(), m) })
	b.discovery = m.(discovery.Announcer)
}

func TestRegisterWithNameServers(t *testing.T) {
	ns1, ns2 := startFakeNamesrv(t), startFakeNamesrv(t)
	ns1.kv = map[string]string{"OrderedTopic": "broker-a:4"}
	ns2.kv = ns1.kv
	sets := []string{"broker.namesrvAddr=" + ns1.addr + ";" + deadAddr(t) + "; http://" + ns2.addr, "broker.brokerName=bn1"}
	b := newMetaBroker(t, "", sets...)
	withNamesrvDiscovery(t, b, sets...)
	b.addr = "127.0.0.1:10911"
	b.nsClient = remoting.NewClient(remoting.ClientConfig{Logger: zerolog.New(io.Discard), DialTimeout: time.Second})
	defer b.nsClient.Close()
	b.topics.Update(body.NewTopicConfig("OrderedTopic", 4, 4, 6))
	<-b.topics.regKick // drain: the loop is not running yet

	if err := b.startMetaServices(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*fakeNamesrv{ns1, ns2} {
		regs := ns.registrations()
		if len(regs) != 1 {
			t.Fatalf("%s got %d registrations at start", ns.addr, len(regs))
		}
		req := regs[0]
		want := map[string]string{"brokerName": "bn1", "brokerAddr": "127.0.0.1:10911", "clusterName": "DefaultCluster",
			"haServerAddr": "127.0.0.1:10912", "brokerId": "0", "compressed": "false",
			"bodyCrc32": strconv.FormatInt(int64(crc32.ChecksumIEEE(req.Body)&0x7FFFFFFF), 10)}
		for k, v := range want {
			if req.Ext(k) != v {
				t.Errorf("ext %s = %q, want %q", k, req.Ext(k), v)
			}
		}
		rb, err := body.DecodeRegisterBrokerBody(req.Body, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rb.TopicConfigSerializeWrapper.TopicConfigTable["TBW102"]; !ok || rb.FilterServerList == nil {
			t.Fatalf("body %s", req.Body)
		}
	}
	if tc, _ := b.topics.Get("OrderedTopic"); !tc.Order {
		t.Fatal("order flag from ORDER_TOPIC_CONFIG not applied")
	}

	// A new topic is registered at once.
	b.topics.CreateInSendMessage("Fresh", "TBW102", "", 4, 0)
	metaWaitFor(t, "registration of the new topic", func() bool {
		regs := ns2.registrations()
		rb, err := body.DecodeRegisterBrokerBody(regs[len(regs)-1].Body, false)
		_, ok := rb.TopicConfigSerializeWrapper.TopicConfigTable["Fresh"]
		return err == nil && ok
	})

	close(b.stop)
	b.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.stopMetaServices(ctx)
	if ns1.unregistrations() != 1 || ns2.unregistrations() != 1 {
		t.Fatalf("unregistrations %d %d", ns1.unregistrations(), ns2.unregistrations())
	}
}

func TestRegistrationWithoutWritePermission(t *testing.T) {
	b := newMetaBroker(t, "", "broker.brokerPermission=4")
	data, err := b.registrationBody()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := body.DecodeRegisterBrokerBody(data, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range rb.TopicConfigSerializeWrapper.TopicConfigTable {
		if tc.Perm != 4 {
			t.Errorf("%s registered with perm %d", name, tc.Perm)
		}
	}
	if tc, _ := b.topics.Get("TBW102"); tc.Perm != 7 {
		t.Error("registration changed the topic table")
	}
}
