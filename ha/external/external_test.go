package external_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/external"
	"github.com/mqd/mqd/ha/hatest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/kernel/pluginhost/plugintest"
	"github.com/mqd/mqd/storage"
)

// pluginDir holds plugins/quorum, installed once for the test binary (the
// kernel's module registry is global), made and removed by TestMain.
var (
	pluginDir string
	installed bool
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mqd-external-test-")
	if err != nil {
		panic(err)
	}
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// install builds and installs plugins/quorum and registers ha.quorum, once.
func install(t testing.TB) {
	t.Helper()
	if installed {
		return
	}
	src := plugintest.Build(t, "./plugins/quorum", t.TempDir())
	if _, err := pluginhost.Install(pluginDir, src); err != nil {
		t.Fatal(err)
	}
	if _, err := pluginhost.RegisterInstalled(pluginDir); err != nil {
		t.Fatal(err)
	}
	installed = true
}

func build(t testing.TB, id kernel.ModuleID, sets ...string) kernel.Module {
	t.Helper()
	install(t)
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, ProfileSource: noProfile,
		Sets: append([]string{fmt.Sprintf("store.syncFlushTimeout=%d", hatest.Timeout.Milliseconds())}, sets...)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func buildQuorum(t testing.TB, sets ...string) *external.Mode {
	t.Helper()
	return build(t, "ha.quorum", sets...).(*external.Mode)
}

func TestQuorumConformance(t *testing.T) {
	hatest.Run(t, func(t *testing.T) ha.Replicator { return buildQuorum(t) })
}

func startMode(t *testing.T, p *hatest.Pair, sets ...string) *external.Mode {
	t.Helper()
	m := buildQuorum(t, sets...)
	m.Attach(p.MasterHA)
	if err := kernel.StartModule(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kernel.RetireModule(context.Background(), m) })
	return m
}

// TestQuorumAcks: with plugin.quorum.acks=2 and one slave nothing is
// acknowledged (FLUSH_SLAVE_TIMEOUT); with 1 it is, and the plugin hears
// nothing per message.
func TestQuorumAcks(t *testing.T) {
	p := hatest.NewPair(t)
	p.StartSlave(t)
	two := startMode(t, p, "plugin.quorum.acks=2")
	p.WaitCaughtUp(t)
	if st := two.Await(p.Put(t, "needs two")); st != storage.PutFlushSlaveTimeout {
		t.Fatalf("acks=2 with one slave: %v, want FLUSH_SLAVE_TIMEOUT", st)
	}
	one := startMode(t, p)
	hatest.WaitFor(t, 5*time.Second, func() bool { return one.Ready(p.Master.MaxPhyOffset()) == nil }, "acks=1 ready")
	before := one.Status().Messages
	for i := range 1000 {
		if st := one.Await(p.Put(t, fmt.Sprintf("m%d", i))); st != storage.PutOK {
			t.Fatalf("send %d with acks=1: %v", i, st)
		}
	}
	if n := one.Status().Messages - before; n != 0 {
		t.Fatalf("%d host<->plugin messages for 1000 sends, want 0 (membership unchanged)", n)
	}
}

// TestQuorumPluginKilled: while the plugin is down (killed, and its binary
// missing so the restart fails) sends answer FLUSH_SLAVE_TIMEOUT, never an
// unreplicated PUT_OK; once the binary is back the plugin restarts and sends
// are acknowledged again.
func TestQuorumPluginKilled(t *testing.T) {
	p := hatest.NewPair(t)
	p.StartSlave(t)
	m := startMode(t, p)
	p.WaitCaughtUp(t)
	hatest.WaitFor(t, 5*time.Second, func() bool { return m.Ready(p.Master.MaxPhyOffset()) == nil }, "ready")
	st := m.Status()
	bin := filepath.Join(pluginDir, "mqd-plugin-quorum")
	if err := os.Rename(bin, bin+".away"); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			os.Rename(bin+".away", bin)
		}
	}()
	if err := syscall.Kill(st.Plugin.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	hatest.WaitFor(t, 5*time.Second, func() bool { return m.Status().Plugin.Crashes == 1 && m.Ready(0) != nil }, "plugin seen down")
	if got := m.Await(p.Put(t, "while down")); got != storage.PutFlushSlaveTimeout {
		t.Fatalf("send while the plugin is down: %v, want FLUSH_SLAVE_TIMEOUT", got)
	}
	if err := os.Rename(bin+".away", bin); err != nil {
		t.Fatal(err)
	}
	restored = true
	hatest.WaitFor(t, 15*time.Second, func() bool { return m.Ready(p.Master.MaxPhyOffset()) == nil }, "plugin back with a policy")
	if got := m.Await(p.Put(t, "after restart")); got != storage.PutOK {
		t.Fatalf("send after the restart: %v", got)
	}
	if s := m.Status().Plugin; s.Restarts != 1 || s.PID == st.Plugin.PID || s.State != pluginhost.StateRunning {
		t.Fatalf("plugin status after restart: %+v", s)
	}
}

// Replication with 64 senders of 1 KiB and one slave: the plugin's mode
// (K=1) beside the built-in SYNC_MASTER mode it must keep up with; run them
// alternately with -count. host-msgs/1k-sends counts every message between
// mqd and the plugin over the run (start included) per 1,000 sends.
func BenchmarkQuorumMaster64(b *testing.B) {
	m := buildQuorum(b)
	hatest.BenchMode(b, m)
	b.ReportMetric(float64(m.Status().Messages)*1000/float64(b.N), "host-msgs/1k-sends")
}

func BenchmarkSyncMaster64(b *testing.B) { hatest.BenchMode(b, build(b, ha.SyncID).(ha.Replicator)) }
