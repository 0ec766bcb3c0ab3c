package namesrv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/mqd/mqd/kernel/fsutil"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// OrderTopicConfigNamespace is the KV namespace of ordered topics: key = topic,
// value = "brokerName:queueCount;..." (Java's NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG).
const OrderTopicConfigNamespace = "ORDER_TOPIC_CONFIG"

// kvFile is kvConfig.json, as Java's KVConfigSerializeWrapper writes it.
type kvFile struct {
	ConfigTable map[string]map[string]string `json:"configTable"`
}

// KVConfig is the name server's namespaced key/value store (Java's
// KVConfigManager), persisted to one JSON file after every change. It is the only
// state a name server keeps across restarts.
type KVConfig struct {
	mu    sync.RWMutex
	path  string
	table map[string]map[string]string
}

// LoadKVConfig reads the file at path; a missing file is an empty store. A file
// that does not parse is an error rather than an empty store, so a restart never
// silently drops the operator's ordered-topic settings.
func LoadKVConfig(path string) (*KVConfig, error) {
	kv := &KVConfig{path: path, table: map[string]map[string]string{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv config: %w", err)
	}
	if len(data) == 0 {
		return kv, nil
	}
	var f kvFile
	if err := body.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("kv config %s: %w", path, err)
	}
	for ns, t := range f.ConfigTable {
		if t == nil {
			t = map[string]string{}
		}
		kv.table[ns] = t
	}
	return kv, nil
}

// Get returns a value.
func (kv *KVConfig) Get(namespace, key string) (string, bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	v, ok := kv.table[namespace][key]
	return v, ok
}

// Namespace returns a copy of a namespace. ok is false if it never existed; a
// namespace whose keys were all deleted still exists, empty, as in Java (brokers
// then clear their order flags instead of keeping stale ones).
func (kv *KVConfig) Namespace(namespace string) (map[string]string, bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	t, ok := kv.table[namespace]
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out, true
}

// Put sets a value and persists. On a write error the change is undone.
func (kv *KVConfig) Put(namespace, key, value string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	t, nsExisted := kv.table[namespace]
	if !nsExisted {
		t = map[string]string{}
		kv.table[namespace] = t
	}
	old, existed := t[key]
	t[key] = value
	if err := kv.persistLocked(); err != nil {
		if existed {
			t[key] = old
		} else {
			delete(t, key)
		}
		if !nsExisted {
			delete(kv.table, namespace)
		}
		return err
	}
	return nil
}

// Delete removes a key and persists. It reports whether the key existed.
func (kv *KVConfig) Delete(namespace, key string) (bool, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	t := kv.table[namespace]
	old, ok := t[key]
	if !ok {
		return false, nil
	}
	delete(t, key)
	if err := kv.persistLocked(); err != nil {
		t[key] = old
		return false, err
	}
	return true, nil
}

// Persist writes the file.
func (kv *KVConfig) Persist() error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.persistLocked()
}

// persistLocked writes the file atomically: a synced temporary file renamed over
// the old one, then the directory synced, so a crash leaves the old or the new
// content, never a torn file.
func (kv *KVConfig) persistLocked() error {
	data, err := body.Marshal(kvFile{ConfigTable: kv.table})
	if err != nil {
		return fmt.Errorf("kv config: %w", err)
	}
	dir := filepath.Dir(kv.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kv config: %w", err)
	}
	if err := fsutil.WriteFile(kv.path, data, 0o644); err != nil {
		return fmt.Errorf("kv config: %w", err)
	}
	return nil
}
