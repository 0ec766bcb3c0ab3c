package pluginhost

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/pluginhost/plugintest"
	"github.com/mqd/mqd/kernel/waittest"
	"github.com/mqd/mqd/plugins/sdk/pluginpb"
)

// The "ha" kind's adapter lives in ha/external, which imports this package;
// the install tests only need the kind to be hostable.
func init() { RegisterKind("ha", func(string, Entry) kernel.Module { return nil }) }

// buildQuorum builds the example plugin (plugins/quorum) into dir.
func buildQuorum(t *testing.T, dir string) string {
	t.Helper()
	return plugintest.Build(t, "./plugins/quorum", dir)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, d, cond, "%s", what)
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestInstallVerifyStartRestartRemove(t *testing.T) {
	src := buildQuorum(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "plugins")
	e, err := Install(dir, src)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "quorum" || e.Kind != "ha" || e.ModuleID() != "ha.quorum" || len(e.Keys) != 1 || e.Keys[0].Name != "acks" || e.Keys[0].Default != "1" {
		t.Fatalf("installed %+v", e)
	}
	if _, bad, err := Verify(dir); err != nil || len(bad) != 0 {
		t.Fatalf("verify: %v %v", bad, err)
	}

	starts := make(chan *grpc.ClientConn, 4)
	downs := make(chan error, 4)
	p, err := Start(dir, e, zerolog.New(io.Discard), Hooks{
		Started: func(_ context.Context, c *grpc.ClientConn) error { starts <- c; return nil },
		Down:    func(err error) { downs <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	<-starts
	st := p.Status()
	if st.State != StateRunning || !alive(st.PID) {
		t.Fatalf("status %+v", st)
	}
	if err := Remove(dir, "quorum"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("remove while loaded: %v", err)
	}
	// A plugin killed is restarted; its module hears of both.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-downs:
	case <-time.After(10 * time.Second):
		t.Fatal("no Down after the plugin was killed")
	}
	select {
	case c := <-starts:
		if _, err := pluginpb.NewPluginClient(c).Hello(context.Background(), &pluginpb.HelloRequest{}); err != nil {
			t.Fatalf("hello after restart: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not restarted")
	}
	st2 := p.Status()
	if st2.Crashes != 1 || st2.Restarts != 1 || st2.PID == st.PID || st2.LastError == "" {
		t.Fatalf("status after restart %+v", st2)
	}
	if got := Loaded(); len(got) != 1 || got[0].Name != "quorum" {
		t.Fatalf("loaded %+v", got)
	}
	p.Stop()
	waitFor(t, 5*time.Second, "plugin process gone after Stop", func() bool { return !alive(st2.PID) })
	if err := Remove(dir, "quorum"); err != nil {
		t.Fatal(err)
	}
	if m, _ := ReadManifest(dir); len(m.Plugins) != 0 {
		t.Fatalf("manifest after remove: %+v", m)
	}
}

func TestTamperedBinaryRefused(t *testing.T) {
	src := buildQuorum(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "plugins")
	e, err := Install(dir, src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(e.Path(dir), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	if _, bad, err := Verify(dir); err != nil || len(bad) != 1 || bad[0].Name != "quorum" {
		t.Fatalf("verify after tampering: %+v %v", bad, err)
	}
	if _, err := Start(dir, e, zerolog.New(io.Discard), Hooks{}); err == nil || !strings.Contains(err.Error(), "not the one installed") {
		t.Fatalf("start of a tampered binary: %v", err)
	}
}

func TestInstallRefusesNonPlugin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins")
	if _, err := Install(dir, "/bin/true"); err == nil {
		t.Fatal("installed /bin/true")
	}
	if m, _ := ReadManifest(dir); len(m.Plugins) != 0 {
		t.Fatalf("manifest: %+v", m)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".install-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// TestOtherProtocolVersionRefused: a plugin built for another protocol
// version is refused at install, with both versions in the message.
func TestOtherProtocolVersionRefused(t *testing.T) {
	src := plugintest.Build(t, "./kernel/pluginhost/testdata/badversion", t.TempDir())
	_, err := Install(filepath.Join(t.TempDir(), "plugins"), src)
	if err == nil || !strings.Contains(err.Error(), "Plugin version: 99") || !strings.Contains(err.Error(), fmt.Sprintf("Client versions: [%d]", pluginpb.ProtocolVersion)) {
		t.Fatalf("install of a protocol-99 plugin: %v", err)
	}
	t.Logf("refused: %v", err)
}
