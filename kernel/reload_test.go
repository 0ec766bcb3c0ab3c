package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
)

// reloadMod owns the keys under its prefix; refuse makes its check fail.
type reloadMod struct {
	id      ModuleID
	prefix  string
	refuse  bool
	mu      sync.Mutex
	applied []string
}

func (m *reloadMod) MQDModule() ModuleInfo {
	return ModuleInfo{ID: m.id, New: func() Module { return m }}
}
func (m *reloadMod) OwnsKey(p string) bool { return strings.HasPrefix(p, m.prefix) }
func (m *reloadMod) CheckReload(_ context.Context, _ *config.Config, keys []string) error {
	if m.refuse {
		return errors.New("refused " + strings.Join(keys, ","))
	}
	return nil
}
func (m *reloadMod) ApplyReload(_ context.Context, _ *config.Config, keys []string) error {
	m.mu.Lock()
	m.applied = append(m.applied, keys...)
	m.mu.Unlock()
	return nil
}

var (
	reloadA = &reloadMod{id: "ktest.reloada", prefix: "rtest.a."}
	reloadB = &reloadMod{id: "ktest.reloadb", prefix: "rtest.b."}
)

func init() {
	RegisterModule(reloadA)
	RegisterModule(reloadB)
	config.Register(
		config.Key{Path: "rtest.a.x", Default: 1, Live: true},
		config.Key{Path: "rtest.b.y", Default: 1, Live: true},
		config.Key{Path: "rtest.c.z", Default: 1, Live: true}, // no owner
		config.Key{Path: "rtest.fixed", Default: 1},
	)
}

func loadSets(t *testing.T, sets ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Env: []string{}, Sets: sets,
		ProfileSource: func(string) ([]byte, error) { return []byte("{}"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReloadOwners: each changed key goes to its one owner; a refusal by
// any owner, an unowned key or a key that is not live applies nothing.
func TestReloadOwners(t *testing.T) {
	k := New(loadSets(t), zerolog.Nop())
	if err := k.Load(context.Background(), "ktest.reloada", "ktest.reloadb"); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	defer k.Stop(context.Background())
	reset := func() { reloadA.applied, reloadB.applied, reloadA.refuse, reloadB.refuse = nil, nil, false, false }

	reset()
	reloadB.refuse = true
	if _, err := k.Reload(context.Background(), loadSets(t, "rtest.a.x=2", "rtest.b.y=2")); err == nil || !strings.Contains(err.Error(), "nothing applied") {
		t.Fatalf("reload with a refusing owner: %v", err)
	}
	if len(reloadA.applied) != 0 {
		t.Fatalf("a applied %v although b refused", reloadA.applied)
	}
	reset()
	for _, sets := range [][]string{{"rtest.a.x=2", "rtest.c.z=2"}, {"rtest.a.x=2", "rtest.fixed=2"}} {
		if _, err := k.Reload(context.Background(), loadSets(t, sets...)); err == nil {
			t.Fatalf("reload of %v accepted", sets)
		}
		if len(reloadA.applied) != 0 {
			t.Fatalf("a applied %v in a refused reload", reloadA.applied)
		}
	}
	reset()
	if _, err := k.Reload(context.Background(), loadSets(t, "rtest.a.x=3", "rtest.b.y=3")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(reloadA.applied, ",") != "rtest.a.x" || strings.Join(reloadB.applied, ",") != "rtest.b.y" {
		t.Fatalf("applied a=%v b=%v, want each its own key", reloadA.applied, reloadB.applied)
	}
	if k.Config().Int("rtest.a.x") != 3 {
		t.Fatal("running configuration not replaced")
	}
}
