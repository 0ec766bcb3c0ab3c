package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// recorder collects lifecycle events in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

var rec = &recorder{}

type testMod struct {
	id        ModuleID
	loads     []ModuleID
	failStart bool
}

func (m *testMod) MQDModule() ModuleInfo {
	return ModuleInfo{ID: m.id, New: func() Module { c := *m; return &c }}
}
func (m *testMod) Provision(ctx Context) error {
	for _, id := range m.loads {
		if _, err := ctx.LoadModule(id); err != nil {
			return err
		}
	}
	rec.add("provision " + string(m.id))
	return nil
}
func (m *testMod) Start() error {
	if m.failStart {
		return errors.New("boom")
	}
	rec.add("start " + string(m.id))
	return nil
}
func (m *testMod) Stop(ctx context.Context) error { rec.add("stop " + string(m.id)); return nil }
func (m *testMod) Cleanup() error                 { rec.add("cleanup " + string(m.id)); return nil }

func init() {
	RegisterModule(&testMod{id: "ktest.store"})
	RegisterModule(&testMod{id: "ktest.app", loads: []ModuleID{"ktest.store"}})
	RegisterModule(&testMod{id: "ktest.bad", failStart: true})
}

func TestLifecycleOrder(t *testing.T) {
	rec.events = nil
	k := New(nil, zerolog.Nop())
	if err := k.Load(context.Background(), "ktest.app"); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	if err := k.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "provision ktest.store,provision ktest.app,start ktest.store,start ktest.app,stop ktest.app,stop ktest.store,cleanup ktest.app,cleanup ktest.store"
	if got := strings.Join(rec.events, ","); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func TestStartFailureStopsStarted(t *testing.T) {
	rec.events = nil
	k := New(nil, zerolog.Nop())
	if err := k.Load(context.Background(), "ktest.store", "ktest.bad"); err != nil {
		t.Fatal(err)
	}
	err := k.Start()
	if err == nil || !strings.Contains(err.Error(), "ktest.bad") {
		t.Fatalf("Start error = %v, want one naming ktest.bad", err)
	}
	want := "provision ktest.store,provision ktest.bad,start ktest.store,stop ktest.store,cleanup ktest.bad,cleanup ktest.store"
	if got := strings.Join(rec.events, ","); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func TestUnknownModule(t *testing.T) {
	_, err := GetModule("ktest.nope")
	if err == nil || !strings.Contains(err.Error(), "ktest.app") {
		t.Fatalf("error = %v, want it to list the known ktest modules", err)
	}
}

func TestModuleIDParts(t *testing.T) {
	id := ModuleID("storage.commitlog")
	if id.Namespace() != "storage" || id.Name() != "commitlog" {
		t.Fatalf("got %q %q", id.Namespace(), id.Name())
	}
}
