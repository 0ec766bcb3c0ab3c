package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
)

// StopContext bounds a Stop: modules drain in-flight work until it is done.
type StopContext = context.Context

// Context is handed to Provision. It carries the merged configuration, a logger
// named after the module, and the means to load further modules whose lifecycle
// the kernel then owns.
type Context struct {
	context.Context
	Config *config.Config
	Logger zerolog.Logger
	k      *Kernel
}

// LoadModule creates, provisions and validates the module with the given ID and
// returns it. The kernel starts it before the caller (modules start in the order
// they finish provisioning) and stops it after the caller.
func (c Context) LoadModule(id ModuleID) (Module, error) {
	return c.k.load(c.Context, id)
}

// NewKernel returns a child kernel over cfg that shares this kernel's admin
// registry: a module that runs other modules under a configuration of its
// own and restarts them (the broker of controller mode, whose role the
// controller decides) builds and stops them with it, and their endpoints
// appear on the process's admin endpoint.
func (c Context) NewKernel(cfg *config.Config, logger zerolog.Logger) *Kernel {
	k := New(cfg, logger)
	k.admin = c.k.admin
	return k
}

// Kernel runs a set of modules: it loads them, starts them in order and stops
// them in reverse.
type Kernel struct {
	// cfg is swapped by Reload while admin endpoints read it.
	cfg atomic.Pointer[config.Config]
	// reloadMu serialises reloads (SIGHUP, the admin endpoint).
	reloadMu sync.Mutex
	logger   zerolog.Logger

	mu      sync.Mutex
	loaded  []loadedModule // in provisioning-complete order
	started int            // how many of loaded were started

	admin *AdminRegistry // operator HTTP endpoints (adminreg.go); shared with child kernels
}

type loadedModule struct {
	id  ModuleID
	mod Module
}

// New returns a kernel over a merged configuration.
func New(cfg *config.Config, logger zerolog.Logger) *Kernel {
	k := &Kernel{logger: logger, admin: new(AdminRegistry)}
	k.cfg.Store(cfg)
	return k
}

// Config returns the configuration the kernel was built with.
func (k *Kernel) Config() *config.Config { return k.cfg.Load() }

// Load provisions the given top-level modules (usually apps) and everything they
// load. On error, whatever was provisioned is cleaned up.
func (k *Kernel) Load(ctx context.Context, ids ...ModuleID) error {
	for _, id := range ids {
		if _, err := k.load(ctx, id); err != nil {
			k.cleanup()
			return err
		}
	}
	return nil
}

func (k *Kernel) load(ctx context.Context, id ModuleID) (Module, error) {
	info, err := GetModule(id)
	if err != nil {
		return nil, err
	}
	mod := info.New()
	mctx := Context{Context: ctx, Config: k.Config(), Logger: k.logger.With().Str("module", string(id)).Logger(), k: k}
	if p, ok := mod.(Provisioner); ok {
		if err := p.Provision(mctx); err != nil {
			if c, ok := mod.(CleanerUpper); ok {
				_ = c.Cleanup()
			}
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	if v, ok := mod.(Validator); ok {
		if err := v.Validate(); err != nil {
			if c, ok := mod.(CleanerUpper); ok {
				_ = c.Cleanup()
			}
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	k.mu.Lock()
	k.loaded = append(k.loaded, loadedModule{id: id, mod: mod})
	k.mu.Unlock()
	return mod, nil
}

// Start starts every loaded module in order. If one fails, those already started
// are stopped and everything is cleaned up.
func (k *Kernel) Start() error {
	k.mu.Lock()
	mods := append([]loadedModule(nil), k.loaded...)
	k.mu.Unlock()
	for i, lm := range mods {
		if s, ok := lm.mod.(Starter); ok {
			if err := s.Start(); err != nil {
				k.mu.Lock()
				k.started = i
				k.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = k.Stop(ctx)
				return fmt.Errorf("%s: start: %w", lm.id, err)
			}
		}
		k.mu.Lock()
		k.started = i + 1
		k.mu.Unlock()
	}
	return nil
}

// Stop stops started modules in reverse order, then cleans up every loaded module.
// Each module drains until ctx ends.
func (k *Kernel) Stop(ctx context.Context) error {
	k.mu.Lock()
	mods := append([]loadedModule(nil), k.loaded[:k.started]...)
	k.started = 0
	k.mu.Unlock()
	var errs []error
	for i := len(mods) - 1; i >= 0; i-- {
		if s, ok := mods[i].mod.(Stopper); ok {
			if err := s.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: stop: %w", mods[i].id, err))
			}
		}
	}
	if err := k.cleanup(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (k *Kernel) cleanup() error {
	k.mu.Lock()
	mods := k.loaded
	k.loaded = nil
	k.mu.Unlock()
	var errs []error
	for i := len(mods) - 1; i >= 0; i-- {
		if c, ok := mods[i].mod.(CleanerUpper); ok {
			if err := c.Cleanup(); err != nil {
				errs = append(errs, fmt.Errorf("%s: cleanup: %w", mods[i].id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Loaded returns the loaded module instances, in start order (Status has their IDs).
func (k *Kernel) Loaded() []Module {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Module, len(k.loaded))
	for i, lm := range k.loaded {
		out[i] = lm.mod
	}
	return out
}
