package kernel

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mqd/mqd/kernel/config"
)

// Reload (SIGHUP). The process loads its configuration again and the kernel
// diffs it against the running one: if any changed key is not marked Live in
// the key table, the whole reload is refused with one line per such key, and
// nothing is applied. Otherwise every loaded module that implements Reloader
// is offered the change; a Reloader checks every key it is given before
// applying any, and refuses keys it does not apply.

// Reloader is implemented by modules that apply live configuration changes.
type Reloader interface {
	// Reload applies the changed keys (dotted paths) of next, or refuses them
	// all with the reason.
	Reload(ctx context.Context, next *config.Config, changed []string) error
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
	handled := false
	for _, lm := range mods {
		if r, ok := lm.mod.(Reloader); ok {
			handled = true
			if err := r.Reload(ctx, next, changed); err != nil {
				return changed, fmt.Errorf("%s: %w", lm.id, err)
			}
		}
	}
	if !handled {
		return changed, fmt.Errorf("reload refused, nothing applied: no running module applies %s", strings.Join(changed, ", "))
	}
	k.cfg.Store(next)
	return changed, nil
}
