// Package pluginhost runs mqd's out-of-process plugins (docs/plugins.md): it
// installs plugin binaries into the plugin directory with a manifest of what
// each said it is and the SHA-256 of its bytes (plugins.lock.json), starts
// them through hashicorp/go-plugin (gRPC, AutoMTLS, the recorded checksum
// checked before the binary runs, a parent-death signal so no plugin outlives
// mqd), restarts one that exits with back-off, routes its log lines into
// mqd's log, and registers every installed plugin as a kernel module of its
// kind, so that the kernel, config validation, `mqd plugins` and swaps treat
// it like a built-in module. What a kind's module does with its plugin is the
// kind's business (ha/external for replication modes).
package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mqd/mqd/kernel/fsutil"

	"github.com/mqd/mqd/plugins/sdk/pluginpb"
)

// On-disk names in the plugin directory.
const (
	// LockFileName is the manifest of installed plugins.
	LockFileName = "plugins.lock.json"
	// dirLockName serialises installs and removals (flock).
	dirLockName = ".lock"
	// binaryPrefix starts an installed plugin's file name: mqd-plugin-<name>.
	binaryPrefix = "mqd-plugin-"
)

// Kinds of plugin the host knows.
var Kinds = []string{"ha", "discovery"}

// Entry is one installed plugin as its Hello described it at install time.
type Entry struct {
	Name            string    `json:"name"`
	Kind            string    `json:"kind"`
	Version         string    `json:"version"`
	ProtocolVersion int       `json:"protocolVersion"`
	SHA256          string    `json:"sha256"`
	File            string    `json:"file"` // in the plugin directory
	Capabilities    []string  `json:"capabilities,omitempty"`
	Keys            []Key     `json:"keys,omitempty"`
	InstalledAt     time.Time `json:"installedAt"`
}

// Key is one of a plugin's own configuration keys, plugin.<name>.<Name>.
type Key struct {
	Name    string `json:"name"`
	Default string `json:"default"`
	Doc     string `json:"doc,omitempty"`
}

// ModuleID is the kernel module the plugin registers as: <kind>.<name>.
func (e Entry) ModuleID() string { return e.Kind + "." + e.Name }

// KeyPath is the config path of one of the plugin's keys.
func (e Entry) KeyPath(key string) string { return "plugin." + e.Name + "." + key }

// Path is the installed binary.
func (e Entry) Path(dir string) string { return filepath.Join(dir, e.File) }

// Manifest is the content of plugins.lock.json.
type Manifest struct {
	Plugins []Entry `json:"plugins"`
}

// Find returns the entry of a plugin by name.
func (m *Manifest) Find(name string) (Entry, bool) {
	for _, e := range m.Plugins {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// ReadManifest reads dir's manifest; a missing one is empty.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, LockFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return &Manifest{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, LockFileName), err)
	}
	return &m, nil
}

// write replaces dir's manifest atomically (temporary file, fsync, rename,
// fsync of the directory).
func (m *Manifest) write(dir string) error {
	slices.SortFunc(m.Plugins, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, LockFileName), append(data, '\n'), 0o644)
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// lockDir takes the directory's install lock (exclusive flock, released
// with the returned func or when the process dies).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, dirLockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// ErrInUse: a running mqd has the plugin loaded.
var ErrInUse = errors.New("the plugin is in use by a running mqd")

// inUse reports whether a running host holds the plugin's binary (a host
// keeps a shared flock on it while the plugin is loaded; the lock goes
// with the host's process, however it ends).
func inUse(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}

// Install copies the plugin binary src into dir, starts it to learn what it
// is (its Hello), and records it in the manifest. The copy is written under
// a temporary name and renamed into place only once its Hello was accepted;
// a plugin of the same name is replaced only while no running mqd uses it.
func Install(dir, src string) (Entry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Entry{}, err
	}
	tmp, sum, err := copyHashed(dir, src)
	if err != nil {
		return Entry{}, err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	hello, err := probe(tmp, sum)
	if err != nil {
		return Entry{}, fmt.Errorf("%s: %w", src, err)
	}
	if !slices.Contains(Kinds, hello.GetKind()) {
		return Entry{}, fmt.Errorf("%s says its kind is %q; mqd plugins are of kind %s", src, hello.GetKind(), strings.Join(Kinds, " or "))
	}
	kindsMu.Lock()
	_, hostable := kinds[hello.GetKind()]
	kindsMu.Unlock()
	if !hostable {
		return Entry{}, fmt.Errorf("%s is a %s plugin, which this mqd cannot host yet", src, hello.GetKind())
	}
	if !validName.MatchString(hello.GetName()) {
		return Entry{}, fmt.Errorf("%s says its name is %q; a plugin name is lower-case letters, digits, _ and -", src, hello.GetName())
	}
	e := Entry{
		Name: hello.GetName(), Kind: hello.GetKind(), Version: hello.GetVersion(),
		ProtocolVersion: pluginpb.ProtocolVersion, SHA256: sum, File: binaryPrefix + hello.GetName(),
		Capabilities: hello.GetCapabilities(), InstalledAt: time.Now().UTC().Truncate(time.Second),
	}
	for _, k := range hello.GetKeys() {
		if !validName.MatchString(strings.ToLower(k.GetName())) {
			return Entry{}, fmt.Errorf("%s declares a key %q that is not a valid key name", src, k.GetName())
		}
		e.Keys = append(e.Keys, Key{Name: k.GetName(), Default: k.GetDefaultValue(), Doc: k.GetDoc()})
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return Entry{}, err
	}
	defer unlock()
	m, err := ReadManifest(dir)
	if err != nil {
		return Entry{}, err
	}
	if busy, err := inUse(e.Path(dir)); err != nil {
		return Entry{}, err
	} else if busy {
		return Entry{}, fmt.Errorf("replace %s: %w; stop it (or swap to another mode) first", e.Name, ErrInUse)
	}
	if err := os.Rename(tmp, e.Path(dir)); err != nil {
		return Entry{}, err
	}
	m.Plugins = slices.DeleteFunc(m.Plugins, func(x Entry) bool { return x.Name == e.Name })
	m.Plugins = append(m.Plugins, e)
	if err := m.write(dir); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// copyHashed copies src to a temporary executable file in dir and returns
// its path and the hex SHA-256 of what was written.
func copyHashed(dir, src string) (string, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return "", "", err
	} else if !st.Mode().IsRegular() {
		return "", "", fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.CreateTemp(dir, ".install-*")
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", "", err
	}
	return out.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// Mismatch is an installed plugin whose binary is not what was installed.
type Mismatch struct {
	Name     string
	Want     string // recorded SHA-256
	Got      string // current SHA-256, "" when unreadable
	Problem  string
	Filename string
}

// Verify re-hashes every installed plugin and returns those that differ
// from the manifest (changed, missing or unreadable).
func Verify(dir string) ([]Entry, []Mismatch, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	var bad []Mismatch
	for _, e := range m.Plugins {
		got, err := hashFile(e.Path(dir))
		switch {
		case err != nil:
			bad = append(bad, Mismatch{Name: e.Name, Want: e.SHA256, Problem: err.Error(), Filename: e.Path(dir)})
		case got != e.SHA256:
			bad = append(bad, Mismatch{Name: e.Name, Want: e.SHA256, Got: got, Problem: "the binary changed since it was installed", Filename: e.Path(dir)})
		}
	}
	return m.Plugins, bad, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Remove deletes an installed plugin and its manifest entry, refusing while
// a running mqd uses it.
func Remove(dir, name string) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	e, ok := m.Find(name)
	if !ok {
		return fmt.Errorf("no plugin %q is installed in %s", name, dir)
	}
	if busy, err := inUse(e.Path(dir)); err != nil {
		return err
	} else if busy {
		return fmt.Errorf("remove %s: %w; stop it (or swap to another mode) first", name, ErrInUse)
	}
	m.Plugins = slices.DeleteFunc(m.Plugins, func(x Entry) bool { return x.Name == name })
	if err := m.write(dir); err != nil {
		return err
	}
	if err := os.Remove(e.Path(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
