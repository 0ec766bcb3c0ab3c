// Package kernel is mqd's microkernel: a registry of modules identified by dotted
// IDs ("storage.commitlog", "app.broker"), their lifecycle (provision, validate,
// start, stop, cleanup) and the ordered start and reverse-order stop of everything a
// run loads. The kernel knows nothing of RocketMQ; plugins register themselves from
// init() and the binary decides which ship through one package of blank imports
// (plugins/all). docs/architecture.md describes the kernel and the plugin kinds.
package kernel

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ModuleID is a dotted module identifier: "<namespace>.<name>", for example
// "storage.commitlog". The namespace is the plugin kind.
type ModuleID string

// Namespace returns the kind part of the ID ("storage" for "storage.commitlog").
func (id ModuleID) Namespace() string {
	if i := strings.LastIndexByte(string(id), '.'); i >= 0 {
		return string(id[:i])
	}
	return ""
}

// Name returns the last label of the ID ("commitlog" for "storage.commitlog").
func (id ModuleID) Name() string {
	if i := strings.LastIndexByte(string(id), '.'); i >= 0 {
		return string(id[i+1:])
	}
	return string(id)
}

// ModuleInfo describes a registered module.
type ModuleInfo struct {
	ID ModuleID
	// New returns a fresh, unconfigured instance. It must have no side effects.
	New func() Module
	// External names the out-of-process plugin behind the module (its
	// installed file), empty for a module compiled into mqd.
	External string
}

// Module is implemented by every plugin.
type Module interface {
	MQDModule() ModuleInfo
}

// Optional lifecycle interfaces. A module implements the ones it needs, in the
// order New -> Provision -> Validate -> Start -> Stop -> Cleanup.
type (
	// Provisioner reads configuration and prepares the module. It may load other
	// modules through the context.
	Provisioner interface{ Provision(ctx Context) error }
	// Validator checks the provisioned configuration.
	Validator interface{ Validate() error }
	// Starter starts background work and listeners.
	Starter interface{ Start() error }
	// Stopper stops accepting work and drains what is in flight until ctx ends.
	Stopper interface {
		Stop(ctx StopContext) error
	}
	// CleanerUpper releases what Provision acquired, whether or not Start ran.
	CleanerUpper interface{ Cleanup() error }
)

var (
	registryMu sync.RWMutex
	registry   = map[ModuleID]ModuleInfo{}
)

// RegisterModule registers a module. It panics on a duplicate or malformed ID,
// since both are programming errors caught at init time.
func RegisterModule(m Module) {
	if err := RegisterModuleInfo(m.MQDModule()); err != nil {
		panic("kernel: " + err.Error())
	}
}

// RegisterModuleInfo registers a module found at run time (an installed
// out-of-process plugin, kernel/pluginhost): a duplicate or malformed ID is
// an error for the operator, not a panic.
func RegisterModuleInfo(info ModuleInfo) error {
	if info.ID == "" || info.ID.Namespace() == "" {
		return fmt.Errorf("module ID %q must be namespace.name", info.ID)
	}
	if info.New == nil {
		return fmt.Errorf("module %s has no New func", info.ID)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if old, dup := registry[info.ID]; dup {
		if old.External == "" && info.External != "" {
			return fmt.Errorf("module %s is built into mqd; the plugin %s cannot replace it", info.ID, info.External)
		}
		return fmt.Errorf("module %s registered twice", info.ID)
	}
	registry[info.ID] = info
	return nil
}

// ReplaceExternalModule replaces the registration of an out-of-process
// plugin's module (a plugin reinstalled while mqd runs, found again on a
// reload); a built-in module cannot be replaced.
func ReplaceExternalModule(info ModuleInfo) error {
	if info.External == "" || info.New == nil {
		return fmt.Errorf("module %s: only an external module can be replaced", info.ID)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if old, ok := registry[info.ID]; ok && old.External == "" {
		return fmt.Errorf("module %s is built into mqd; the plugin %s cannot replace it", info.ID, info.External)
	}
	registry[info.ID] = info
	return nil
}

// GetModule returns the registered module with the given ID.
func GetModule(id ModuleID) (ModuleInfo, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	info, ok := registry[id]
	if !ok {
		return ModuleInfo{}, fmt.Errorf("module %s is not registered (known in %s: %s)", id, id.Namespace(), strings.Join(moduleNamesLocked(id.Namespace()), ", "))
	}
	return info, nil
}

// Modules lists the registered modules of one namespace ("" for all), sorted by ID.
func Modules(namespace string) []ModuleInfo {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var out []ModuleInfo
	for id, info := range registry {
		if namespace == "" || id.Namespace() == namespace {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func moduleNamesLocked(namespace string) []string {
	var out []string
	for id := range registry {
		if id.Namespace() == namespace {
			out = append(out, string(id))
		}
	}
	sort.Strings(out)
	return out
}
