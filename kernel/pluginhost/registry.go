package pluginhost

import (
	"fmt"
	"sync"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
)

// KindFactory builds the module that stands for an installed plugin of one
// kind: it implements that kind's interface (ha.Replicator for "ha") by
// talking to the plugin, so the kernel cannot tell it from a built-in.
type KindFactory func(dir string, e Entry) kernel.Module

var (
	kindsMu    sync.Mutex
	kinds      = map[string]KindFactory{}
	registered = map[string]string{} // module ID -> path and SHA-256 of the entry registered
)

// RegisterKind is called by a kind's adapter package from init.
func RegisterKind(kind string, f KindFactory) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	kinds[kind] = f
}

// RegisterInstalled registers every plugin installed in dir as a kernel
// module of its kind (<kind>.<name>) and its keys as config keys
// (plugin.<name>.<key>), so that the config that selects and configures
// them validates. It runs before the configuration is loaded. A plugin whose
// kind this binary has no adapter for, or whose name collides with a
// built-in module, is an error.
func RegisterInstalled(dir string) ([]Entry, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	kindsMu.Lock()
	defer kindsMu.Unlock()
	for _, e := range m.Plugins {
		was, seen := registered[e.ModuleID()]
		now := e.Path(dir) + "@" + e.SHA256
		if seen && was == now {
			continue
		}
		f, ok := kinds[e.Kind]
		if !ok {
			return nil, fmt.Errorf("plugin %s is of kind %q, which this mqd cannot host", e.Name, e.Kind)
		}
		info := f(dir, e).MQDModule()
		register := kernel.RegisterModuleInfo
		if seen { // reinstalled since: modules built from now on use the new entry
			register = kernel.ReplaceExternalModule
		}
		if err := register(info); err != nil {
			return nil, fmt.Errorf("plugin %s: %w", e.Name, err)
		}
		for _, k := range e.Keys {
			if _, known := config.Lookup(e.KeyPath(k.Name)); !known {
				config.Register(config.Key{Path: e.KeyPath(k.Name), Default: k.Default, Live: true,
					Doc: k.Doc + " (plugin " + e.Name + ")"})
			}
		}
		registered[e.ModuleID()] = now
	}
	return m.Plugins, nil
}

// Values are the plugin's keys as configured in c (defaults filled in by
// their registration), by key name without the plugin.<name>. prefix: what
// its Configure call gets.
func (e Entry) Values(c *config.Config) map[string]string {
	out := make(map[string]string, len(e.Keys))
	for _, k := range e.Keys {
		out[k.Name] = fmt.Sprint(c.Get(e.KeyPath(k.Name)))
	}
	return out
}

// DirKey is the config key of the plugin directory.
const DirKey = "plugins.dir"

func init() {
	config.Register(config.Key{Path: DirKey, Default: "./data/plugins",
		Doc: "directory of installed out-of-process plugins and their manifest (mqd plugin install)"})
}

// LaterKey reports whether a key not known yet may belong to an installed
// plugin (plugin.<name>.<key>): config.LoadOptions.Later for the load that
// finds the plugin directory.
func LaterKey(name string) bool {
	return len(name) > len("plugin.") && name[:len("plugin.")] == "plugin."
}
