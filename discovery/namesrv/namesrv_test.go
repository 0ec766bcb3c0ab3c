package namesrv

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/discovery/discoverytest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	_ "github.com/mqd/mqd/plugins/broker" // the broker.* keys this mode reads
	_ "github.com/mqd/mqd/plugins/namesrv"
)

func TestAddrs(t *testing.T) {
	got := Addrs(" a:1; ;http://b:2/;c:3;")
	if len(got) != 3 || got[0] != "a:1" || got[1] != "b:2" || got[2] != "c:3" {
		t.Fatalf("%q", got)
	}
}

// TestConformance runs the suite against a real name server (app.namesrv
// in this process).
func TestConformance(t *testing.T) {
	discoverytest.Run(t, func(t *testing.T) discoverytest.Registry {
		dir := t.TempDir()
		ns := start(t, "app.namesrv", "namesrv.listenPort=0", "namesrv.kvConfigPath="+filepath.Join(dir, "kv.json"))
		addr := ns.(interface{ Addr() string }).Addr()
		if _, port, err := net.SplitHostPort(addr); err == nil {
			addr = "127.0.0.1:" + port
		}
		d := start(t, "discovery.namesrv", "broker.namesrvAddr="+addr)
		return discoverytest.Registry{Announcer: d.(discovery.Announcer), MasterAddr: "127.0.0.1:10911", MasterHAAddr: "127.0.0.1:10912"}
	})
}

// start builds and starts a module with the given settings; it stops at cleanup.
func start(t *testing.T, id kernel.ModuleID, sets ...string) kernel.Module {
	t.Helper()
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Env: []string{}, Sets: sets, ProfileSource: noProfile})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.StartModule(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kernel.RetireModule(context.Background(), m) })
	return m
}
