package kernel

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// AdminRegistry is the kernel's table of operator HTTP endpoints: modules add
// handlers under paths (/metrics, /swap, ...) and health checks, and the admin
// server module (kernel/admin) serves whatever is registered when a request
// arrives. It holds no RocketMQ knowledge and no listener of its own.
type AdminRegistry struct {
	mu       sync.RWMutex
	handlers map[string]AdminHandler
	checks   map[string]func() error
}

// AdminHandler is a registered endpoint: its handler, the HTTP methods it
// accepts (empty: any) and a one-line description for the index page.
type AdminHandler struct {
	Path    string
	Handler http.Handler
	Methods []string
	Doc     string
}

// Handle registers (or replaces) the endpoint at h.Path. Paths are exact
// ("/swap"), or a prefix when they end in '/'.
func (r *AdminRegistry) Handle(h AdminHandler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handlers == nil {
		r.handlers = map[string]AdminHandler{}
	}
	r.handlers[h.Path] = h
}

// Remove drops the endpoint at path.
func (r *AdminRegistry) Remove(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.handlers, path)
}

// Lookup finds the endpoint for a request path: an exact match, else the
// longest registered prefix ending in '/'.
func (r *AdminRegistry) Lookup(path string) (AdminHandler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if h, ok := r.handlers[path]; ok {
		return h, true
	}
	var best AdminHandler
	found := false
	for p, h := range r.handlers {
		if strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) && len(p) > len(best.Path) {
			best, found = h, true
		}
	}
	return best, found
}

// Endpoints lists the registered endpoints by path.
func (r *AdminRegistry) Endpoints() []AdminHandler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]AdminHandler, 0, len(r.handlers))
	for _, h := range r.handlers {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// HealthCheck registers a readiness check under name; a nil fn removes it.
// /readyz fails while any check returns an error.
func (r *AdminRegistry) HealthCheck(name string, fn func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checks == nil {
		r.checks = map[string]func() error{}
	}
	if fn == nil {
		delete(r.checks, name)
		return
	}
	r.checks[name] = fn
}

// Check runs every health check and returns the failures by name.
func (r *AdminRegistry) Check() map[string]error {
	r.mu.RLock()
	checks := make(map[string]func() error, len(r.checks))
	for n, fn := range r.checks {
		checks[n] = fn
	}
	r.mu.RUnlock()
	out := map[string]error{}
	for n, fn := range checks {
		if err := fn(); err != nil {
			out[n] = err
		}
	}
	return out
}

// Admin returns the kernel's admin endpoint registry.
func (k *Kernel) Admin() *AdminRegistry { return k.admin }

// Admin returns the registry of the kernel running this module.
func (c Context) Admin() *AdminRegistry { return c.k.admin }

// Kernel returns the kernel running this module (for generic operator
// modules: module status, readiness).
func (c Context) Kernel() *Kernel { return c.k }

// ModuleStatus is one loaded module as the admin endpoint reports it.
type ModuleStatus struct {
	ID      ModuleID `json:"id"`
	Started bool     `json:"started"`
	// Capabilities are what a module says it offers beyond its kind's
	// interface (a store engine: replication, sync-flush, ...).
	Capabilities []string `json:"capabilities,omitempty"`
}

// Capable is implemented by modules that list their capabilities
// (`mqd plugins`, /plugins).
type Capable interface{ Capabilities() []string }

// Status lists the loaded modules in start order and whether each started.
func (k *Kernel) Status() []ModuleStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]ModuleStatus, len(k.loaded))
	for i, lm := range k.loaded {
		out[i] = ModuleStatus{ID: lm.id, Started: i < k.started}
		if c, ok := lm.mod.(Capable); ok {
			out[i].Capabilities = c.Capabilities()
		}
	}
	return out
}

// Ready reports whether every loaded module has started.
func (k *Kernel) Ready() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.loaded) > 0 && k.started == len(k.loaded)
}

// WriteJSON answers an admin request with code and v as indented JSON, the
// form every admin endpoint answers in (the admin module's own and those
// other modules register).
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
