package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"

	"github.com/mqd/mqd/configs"
)

// DefaultProfile is the profile every load starts from; a named profile is
// layered on top of it.
const DefaultProfile = "default"

// EnvPrefix starts every environment variable that sets a key.
const EnvPrefix = "MQD_"

// LoadOptions says which layers Load merges.
type LoadOptions struct {
	// Role is the RocketMQ role ("broker" or "namesrv") whose property names a
	// .properties file, MQD_<NAME> variables and --set may use.
	Role string
	// Profile names a shipped profile ("dev", "2m-2s-async/broker-a"). The
	// "default" profile always applies first; "" means only it.
	Profile string
	// ProfileSource returns a profile's YAML; nil reads the embedded configs/
	// tree.
	ProfileSource func(name string) ([]byte, error)
	// File is a config file: YAML if it ends in .yaml or .yml, otherwise a
	// java.util.Properties file (RocketMQ's broker.conf, *.properties).
	File string
	// Env is the environment as KEY=value pairs; nil means os.Environ().
	Env []string
	// Sets are "key=value" pairs from repeated --set flags, in order. A key is
	// a dotted path or a RocketMQ name of Role.
	Sets []string
	// Flags are other command-line flags bound to one key (mqbroker's -n,
	// --log-level), applied after Sets.
	Flags []Flag
	// Later, when set, says which unknown keys to pass over silently: keys
	// registered only once this load tells where to find them (the keys of
	// installed plugins, plugin.<name>.*, whose directory is itself a key).
	// The caller registers them and loads again without it.
	Later func(name string) bool
}

// Flag is a command-line flag that sets one key.
type Flag struct {
	Name  string // as typed, for messages and Source: "-n", "--log-level"
	Key   string // dotted path or RocketMQ name of the role
	Value string
}

// Load merges the layers, later wins: registered defaults < the default profile
// < the named profile < File < MQD_* environment < Sets < Flags. Every value is
// converted to its key's type. A name that is no registered key is an error
// naming the closest known key, except RocketMQ names registered with
// RegisterUnimplemented, which are collected into a single warning. Load reads
// files and nothing else: it creates nothing.
func Load(opts LoadOptions) (*Config, error) {
	l := &loader{
		later:   opts.Later,
		role:    opts.Role,
		values:  map[string]any{},
		sources: map[string]string{},
		unimpl:  map[string]bool{},
	}
	for _, k := range Keys() {
		if k.Default == nil {
			continue // no default: unset until a layer sets it
		}
		v := k.Default
		if s, ok := v.([]string); ok {
			v = append([]string{}, s...)
		}
		l.values[k.Path] = v
	}

	src := opts.ProfileSource
	if src == nil {
		src = configs.Profile
	}
	profiles := []string{DefaultProfile}
	if opts.Profile != "" && opts.Profile != DefaultProfile {
		profiles = append(profiles, opts.Profile)
	}
	for _, name := range profiles {
		data, err := src(name)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		if err := l.loadYAML(data, "profile "+name); err != nil {
			return nil, err
		}
	}

	if opts.File != "" {
		if err := l.loadFile(opts.File); err != nil {
			return nil, err
		}
	}

	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	if err := l.loadEnv(env); err != nil {
		return nil, err
	}

	for _, kv := range opts.Sets {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("flag --set %q: want key=value", kv)
		}
		if err := l.setText(strings.TrimSpace(name), value, "flag --set", "flag --set "+kv); err != nil {
			return nil, err
		}
	}
	for _, f := range opts.Flags {
		if err := l.setText(f.Key, f.Value, "flag "+f.Name, "flag "+f.Name+" "+f.Value); err != nil {
			return nil, err
		}
	}

	k := koanf.New(".")
	if err := k.Load(confmap.Provider(l.values, "."), nil); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{k: k, sources: l.sources}
	if len(l.unimpl) > 0 {
		names := make([]string, 0, len(l.unimpl))
		for n := range l.unimpl {
			names = append(names, n)
		}
		sort.Strings(names)
		c.Warnings = append(c.Warnings, "RocketMQ keys accepted but not implemented: "+strings.Join(names, ", "))
	}
	return c, nil
}

type loader struct {
	later   func(string) bool
	role    string
	values  map[string]any
	sources map[string]string
	unimpl  map[string]bool
}

// resolve maps a dotted path or a RocketMQ name of the role to a registered key.
// ok is false for names accepted without effect; err names unknown keys.
func (l *loader) resolve(name, where string) (k Key, ok bool, err error) {
	if k, found := Lookup(name); found {
		return k, true, nil
	}
	if p, found := LookupRocketMQ(l.role, name); found {
		k, _ := Lookup(p)
		return k, true, nil
	}
	if IsUnimplemented(l.role, name) {
		l.unimpl[name] = true
		return Key{}, false, nil
	}
	if l.later != nil && l.later(name) {
		return Key{}, false, nil
	}
	msg := fmt.Sprintf("%s: unknown key %q", where, name)
	if l.role != "" && !strings.Contains(name, ".") {
		msg += fmt.Sprintf(" (not a %s property)", l.role)
	}
	if s := byLastLabel(name); s != "" {
		// A property of another role, or a path's last label: offer the path.
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else if s := closest(name, suggestionCandidates(l.role)); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return Key{}, false, errors.New(msg)
}

// setText sets a key from text (properties, environment, flags).
func (l *loader) setText(name, value, source, where string) error {
	k, ok, err := l.resolve(name, where)
	if err != nil || !ok {
		return err
	}
	v, err := Parse(value, k)
	if err != nil {
		return valueError(where, name, k, value, err)
	}
	l.values[k.Path] = v
	l.sources[k.Path] = source
	return nil
}

func valueError(where, name string, k Key, value any, err error) error {
	label := k.Path
	if name != k.Path {
		label = name + " (" + k.Path + ")"
	}
	return fmt.Errorf("%s: %s: invalid %s value %q: %v", where, label, typeName(k), formatValue(value), err)
}

func (l *loader) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	source := "file " + path
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return l.loadYAML(data, source)
	default:
		props, err := ParseProperties(data)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		for _, p := range props {
			if err := l.setText(p.Key, p.Value, source, fmt.Sprintf("%s line %d", source, p.Line)); err != nil {
				return err
			}
		}
		return nil
	}
}

// loadYAML merges a YAML document whose (possibly nested) keys are dotted paths;
// an undotted top-level key may also be a RocketMQ name of the role.
func (l *loader) loadYAML(data []byte, source string) error {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	flat := map[string]any{}
	flattenYAML("", doc, flat)
	names := make([]string, 0, len(flat))
	for n := range flat {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := flat[name]
		k, ok, err := l.resolve(name, source)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if raw == nil {
			raw = ""
		}
		v, err := coerce(raw, k)
		if err != nil {
			return valueError(source, name, k, raw, err)
		}
		l.values[k.Path] = v
		l.sources[k.Path] = source
	}
	return nil
}

// flattenYAML turns nested maps into dotted keys; lists and scalars are leaves,
// and so is a map at a key's own path (a type error, reported as such).
func flattenYAML(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if _, isKey := Lookup(p); isKey {
			out[p] = v
			continue
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flattenYAML(p, sub, out)
			continue
		}
		out[p] = v
	}
}

// loadEnv applies MQD_* variables. The rule: MQD_ followed by a key's dotted
// path with '.' written as '_' (MQD_BROKER_LISTENPORT), or by a RocketMQ name
// of the role (MQD_LISTENPORT), compared without regard to case. Variables are
// applied in name order, so the result does not depend on the environment's
// order.
func (l *loader) loadEnv(env []string) error {
	type kv struct{ name, value string }
	var vars []kv
	for _, e := range env {
		name, value, ok := strings.Cut(e, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || len(name) == len(EnvPrefix) {
			continue
		}
		vars = append(vars, kv{name, value})
	}
	if len(vars) == 0 {
		return nil
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].name < vars[j].name })

	byEnv := map[string]string{} // lower-case env spelling -> dotted path or RocketMQ name
	for _, k := range Keys() {
		byEnv[strings.ToLower(strings.ReplaceAll(k.Path, ".", "_"))] = k.Path
	}
	for _, n := range Unimplemented(l.role) {
		byEnv[strings.ToLower(n)] = n
	}
	for _, n := range RocketMQNames(l.role) {
		byEnv[strings.ToLower(n)] = n
	}
	for _, v := range vars {
		tail := strings.ToLower(v.name[len(EnvPrefix):])
		name, ok := byEnv[tail]
		if !ok && l.later != nil && l.later(strings.ReplaceAll(tail, "_", ".")) {
			continue
		}
		if !ok {
			msg := fmt.Sprintf("env %s: unknown key %q (want %s + a key path with '_' for '.'", v.name, v.name[len(EnvPrefix):], EnvPrefix)
			if l.role != "" {
				msg += ", or a RocketMQ " + l.role + " property name"
			}
			msg += ")"
			var cands []string
			for e := range byEnv {
				cands = append(cands, e)
			}
			if s := closest(tail, cands); s != "" {
				msg += fmt.Sprintf("; did you mean %s%s?", EnvPrefix, strings.ToUpper(s))
			}
			return errors.New(msg)
		}
		if err := l.setText(name, v.value, "env "+v.name, "env "+v.name); err != nil {
			return err
		}
	}
	return nil
}
