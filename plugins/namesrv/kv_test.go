package namesrv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKVConfigUndoesFailedWrites(t *testing.T) {
	sub := filepath.Join(t.TempDir(), "sub")
	kv, err := LoadKVConfig(filepath.Join(sub, "kvConfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The KV file's directory becomes a regular file: every write fails (even
	// as root, unlike permissions).
	if err := os.WriteFile(sub, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("ns", "k", "v"); err == nil {
		t.Fatal("put succeeded without a writable file")
	}
	if _, ok := kv.Get("ns", "k"); ok {
		t.Fatal("failed put left the value")
	}
	if _, ok := kv.Namespace("ns"); ok {
		t.Fatal("failed put left the namespace")
	}
}

func TestKVConfigEmptyNamespaceKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kvConfig.json")
	kv, err := LoadKVConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Put(OrderTopicConfigNamespace, "T", "a:4"); err != nil {
		t.Fatal(err)
	}
	if ok, err := kv.Delete(OrderTopicConfigNamespace, "T"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := kv.Delete(OrderTopicConfigNamespace, "T"); ok {
		t.Fatal("second delete reported a key")
	}
	kv2, err := LoadKVConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	// Brokers get an empty table and clear their order flags.
	if tbl, ok := kv2.Namespace(OrderTopicConfigNamespace); !ok || len(tbl) != 0 {
		t.Fatal(tbl, ok)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tmp-*")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}
