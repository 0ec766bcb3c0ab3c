// Package config owns mqd's layered configuration: embedded defaults < profile <
// config file (YAML or RocketMQ .properties) < MQD_* environment < command-line
// flags, merged with koanf, with the source of every value remembered. Plugins
// describe their keys with Register; RocketMQ property names map onto mqd's dotted
// keys through that table, so an operator's broker.properties loads as it is.
// docs/architecture.md, Configuration, says which package owns which keys.
package config

import (
	"sort"
	"sync"
)

// Key describes one configuration key.
type Key struct {
	// Path is the dotted mqd key, for example "broker.listenPort". The last label
	// is the koanf tag of the field it fills.
	Path string
	// Role is the RocketMQ role whose .properties files carry this key: "broker"
	// or "namesrv" ("" for mqd-only keys).
	Role string
	// RocketMQ lists the property names that set this key in a RocketMQ file, the
	// current spelling first, older spellings after (mapedFileSizeCommitLog).
	RocketMQ []string
	// Default is the embedded default (string, int, int64, bool, float64,
	// []string or time.Duration).
	Default any
	// Doc says what the key does, in one line.
	Doc string
	// Live marks keys that may change on a running process (reload, updateBrokerConfig).
	Live bool
}

var (
	keysMu        sync.RWMutex
	keys          = map[string]Key{}             // by Path
	rmqIndex      = map[string]string{}          // role + "\x00" + RocketMQ name -> Path
	unimplemented = map[string]map[string]bool{} // role -> RocketMQ names accepted with a warning
)

// Register adds keys to the table. Plugins call it from init(). It panics on a
// duplicate path or RocketMQ name within one role: a programming error.
func Register(ks ...Key) {
	keysMu.Lock()
	defer keysMu.Unlock()
	for _, k := range ks {
		if _, dup := keys[k.Path]; dup {
			panic("config: key registered twice: " + k.Path)
		}
		keys[k.Path] = k
		for _, name := range k.RocketMQ {
			idx := k.Role + "\x00" + name
			if prev, dup := rmqIndex[idx]; dup {
				panic("config: RocketMQ key " + name + " maps to both " + prev + " and " + k.Path)
			}
			rmqIndex[idx] = k.Path
		}
	}
}

// RegisterUnimplemented lists RocketMQ property names of a role that mqd accepts
// but does not act on (yet): a file holding them loads, with one warning that
// names them all. A name that a package also registers with Register is
// implemented: Register wins, whatever the order of the calls.
func RegisterUnimplemented(role string, names ...string) {
	keysMu.Lock()
	defer keysMu.Unlock()
	if unimplemented[role] == nil {
		unimplemented[role] = map[string]bool{}
	}
	for _, n := range names {
		unimplemented[role][n] = true
	}
}

// Keys returns every registered key, sorted by path.
func Keys() []Key {
	keysMu.RLock()
	defer keysMu.RUnlock()
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Lookup returns the key registered under path.
func Lookup(path string) (Key, bool) {
	keysMu.RLock()
	defer keysMu.RUnlock()
	k, ok := keys[path]
	return k, ok
}

// LookupRocketMQ maps a RocketMQ property name of a role to the mqd key path.
func LookupRocketMQ(role, name string) (string, bool) {
	keysMu.RLock()
	defer keysMu.RUnlock()
	p, ok := rmqIndex[role+"\x00"+name]
	return p, ok
}

// IsUnimplemented reports whether name is a RocketMQ key of role that mqd accepts
// without acting on it. A name some package registered is implemented.
func IsUnimplemented(role, name string) bool {
	keysMu.RLock()
	defer keysMu.RUnlock()
	if _, registered := rmqIndex[role+"\x00"+name]; registered {
		return false
	}
	return unimplemented[role][name]
}

// Unimplemented returns the RocketMQ names of role that are accepted without
// effect, sorted; names a package registered are left out.
func Unimplemented(role string) []string {
	keysMu.RLock()
	defer keysMu.RUnlock()
	var out []string
	for n := range unimplemented[role] {
		if _, registered := rmqIndex[role+"\x00"+n]; !registered {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// RocketMQNames returns the RocketMQ property names registered for role, sorted.
func RocketMQNames(role string) []string {
	keysMu.RLock()
	defer keysMu.RUnlock()
	prefix := role + "\x00"
	var out []string
	for idx := range rmqIndex {
		if len(idx) > len(prefix) && idx[:len(prefix)] == prefix {
			out = append(out, idx[len(prefix):])
		}
	}
	sort.Strings(out)
	return out
}
