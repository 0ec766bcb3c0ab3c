package config

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/knadh/koanf/v2"
)

// Config is a merged configuration. It is read-only once loaded.
type Config struct {
	k       *koanf.Koanf
	sources map[string]string // path -> "default", "profile dev", "file x.properties", "env MQD_X", "flag --set"
	// Warnings collected while loading (unimplemented RocketMQ keys, ...).
	Warnings []string
}

// Unmarshal fills out (a pointer to a struct with koanf tags) from the subtree at
// path ("broker", "store", ...).
func (c *Config) Unmarshal(path string, out any) error {
	return c.k.UnmarshalWithConf(path, out, koanf.UnmarshalConf{Tag: "koanf"})
}

// String, Int, Int64, Bool and Duration read one value.
func (c *Config) String(path string) string { return c.k.String(path) }

// Int returns the integer at path.
func (c *Config) Int(path string) int { return c.k.Int(path) }

// Int64 returns the integer at path.
func (c *Config) Int64(path string) int64 { return c.k.Int64(path) }

// Bool returns the boolean at path.
func (c *Config) Bool(path string) bool { return c.k.Bool(path) }

// Strings returns the string list at path.
func (c *Config) Strings(path string) []string { return c.k.Strings(path) }

// Exists reports whether path has a value.
func (c *Config) Exists(path string) bool { return c.k.Exists(path) }

// Source says where the value at path came from.
func (c *Config) Source(path string) string {
	if s, ok := c.sources[path]; ok {
		return s
	}
	return "default"
}

// All returns the flattened merged values.
func (c *Config) All() map[string]any { return c.k.All() }

// Duration returns the duration at path.
func (c *Config) Duration(path string) time.Duration { return c.k.Duration(path) }

// Float64 returns the number at path.
func (c *Config) Float64(path string) float64 { return c.k.Float64(path) }

// Get returns the value at path, typed as its key's Default (nil if unset).
func (c *Config) Get(path string) any { return c.k.Get(path) }

// Clone returns an independent copy (values, sources, warnings), which may be
// Set before it is handed to modules.
func (c *Config) Clone() *Config {
	return &Config{k: c.k.Copy(), sources: maps.Clone(c.sources), Warnings: slices.Clone(c.Warnings)}
}

// Set replaces the value of a registered key, converting it to the key's type
// (text goes through Parse), and records source. It is meant for values derived
// after loading (the embedded mode's broker.namesrvAddr) before the Config is
// handed to modules; a Config being read concurrently must not be Set.
func (c *Config) Set(path string, value any, source string) error {
	k, ok := Lookup(path)
	if !ok {
		return fmt.Errorf("config: set %s: unknown key", path)
	}
	v, err := coerce(value, k)
	if err != nil {
		return valueError(source, path, k, value, err)
	}
	if err := c.k.Set(path, v); err != nil {
		return fmt.Errorf("config: set %s: %w", path, err)
	}
	c.sources[path] = source
	return nil
}
