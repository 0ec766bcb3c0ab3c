package kernel

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mqd/mqd/kernel/config"
)

// Reload (SIGHUP, POST /reload). The process loads its configuration again
// and the kernel diffs it against the running one. Every changed key must be
// marked Live in the key table and owned by exactly one running module (a
// Reloader that says it applies that key); otherwise the whole reload is
// refused and nothing is applied. Then each owner checks its own keys,
// without applying anything; only when every owner accepted are they applied,
// owner by owner. So two modules can never half-apply a reload because the
// second refused what the first had already applied.

// Reloader is implemented by modules that apply live configuration changes.
type Reloader interface {
	// OwnsKey reports whether the module applies this key (a dotted path)
	// on a reload.
	OwnsKey(path string) bool
	// CheckReload checks the module's changed keys against next and refuses
	// them with the reason; it applies nothing.
	CheckReload(ctx context.Context, next *config.Config, keys []string) error
	// ApplyReload applies them; it is called only once every owner's
	// CheckReload accepted. An error here (a swap abandoned because a slave
	// could not catch up in time) leaves this module's keys as they were.
	ApplyReload(ctx context.Context, next *config.Config, keys []string) error
}

// ChangedKeys lists the paths whose values differ between two configurations.
func ChangedKeys(a, b *config.Config) []string {
	av, bv := a.All(), b.All()
	var out []string
	for k, v := range av {
		if w, ok := bv[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range bv {
		if _, ok := av[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Reload applies next to the running modules (see above). It returns the
// changed keys; an error means the running configuration is unchanged.
func (k *Kernel) Reload(ctx context.Context, next *config.Config) ([]string, error) {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	cur := k.Config()
	changed := ChangedKeys(cur, next)
	if len(changed) == 0 {
		return nil, nil
	}
	var refused []string
	for _, p := range changed {
		key, ok := config.Lookup(p)
		if !ok || !key.Live {
			refused = append(refused, fmt.Sprintf("%s: %v -> %v cannot change on a running process (restart to apply)", p, cur.Get(p), next.Get(p)))
		}
	}
	if len(refused) > 0 {
		return changed, fmt.Errorf("reload refused, nothing applied: %s", strings.Join(refused, "; "))
	}
	k.mu.Lock()
	mods := append([]loadedModule(nil), k.loaded[:k.started]...)
	k.mu.Unlock()
	type owned struct {
		lm   loadedModule
		r    Reloader
		keys []string
	}
	var owners []*owned
	for _, p := range changed {
		var mine []*owned
		for _, lm := range mods {
			r, ok := lm.mod.(Reloader)
			if !ok || !r.OwnsKey(p) {
				continue
			}
			var o *owned
			for _, x := range owners {
				if x.lm.id == lm.id {
					o = x
				}
			}
			if o == nil {
				o = &owned{lm: lm, r: r}
				owners = append(owners, o)
			}
			mine = append(mine, o)
		}
		switch len(mine) {
		case 0:
			refused = append(refused, p+": no running module applies it (restart to apply)")
		case 1:
			mine[0].keys = append(mine[0].keys, p)
		default:
			ids := make([]string, len(mine))
			for i, o := range mine {
				ids[i] = string(o.lm.id)
			}
			refused = append(refused, p+": claimed by several modules ("+strings.Join(ids, ", ")+")")
		}
	}
	if len(refused) > 0 {
		return changed, fmt.Errorf("reload refused, nothing applied: %s", strings.Join(refused, "; "))
	}
	for _, o := range owners {
		if len(o.keys) == 0 {
			continue
		}
		if err := o.r.CheckReload(ctx, next, o.keys); err != nil {
			return changed, fmt.Errorf("reload refused by %s, nothing applied: %w", o.lm.id, err)
		}
	}
	var applied []string
	for _, o := range owners {
		if len(o.keys) == 0 {
			continue
		}
		if err := o.r.ApplyReload(ctx, next, o.keys); err != nil {
			if len(applied) == 0 {
				return changed, fmt.Errorf("%s: %w (nothing applied)", o.lm.id, err)
			}
			return changed, fmt.Errorf("%s: %w; already applied by %s, which stay", o.lm.id, err, strings.Join(applied, ", "))
		}
		applied = append(applied, string(o.lm.id))
	}
	k.cfg.Store(next)
	return changed, nil
}
