package all

import (
	"testing"

	"github.com/mqd/mqd/kernel"
)

// TestShippedModules pins the set of built-in modules, so that adding or dropping
// one is a deliberate change.
func TestShippedModules(t *testing.T) {
	want := []kernel.ModuleID{"admin.http", "app.broker", "app.controller", "app.namesrv", "discovery.namesrv", "discovery.nats", "discovery.static", "ha.async", "ha.insync", "ha.sync", "storage.badger", "storage.commitlog"}
	got := kernel.Modules("")
	if len(got) != len(want) {
		t.Fatalf("modules = %v, want %v", got, want)
	}
	for i, m := range got {
		if m.ID != want[i] {
			t.Fatalf("module %d = %s, want %s", i, m.ID, want[i])
		}
	}
}
