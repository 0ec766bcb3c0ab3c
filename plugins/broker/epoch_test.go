package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
)

// TestEpochFileFormat: RocketMQ's own example file loads, and what mqd
// writes is byte for byte what RocketMQ writes.
func TestEpochFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), epochFileName)
	if err := os.WriteFile(path, []byte("2\n773307083\n7-7000\n8-8000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openEpochFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Entries(9000)
	if len(got) != 2 || got[0] != (EpochEntry{7, 7000, 8000}) || got[1] != (EpochEntry{8, 8000, 9000}) {
		t.Fatalf("entries %+v", got)
	}
	if err := f.Begin(9, 9000); err != nil {
		t.Fatal(err)
	}
	if err := f.Begin(9, 9500); err != nil || f.LastEpoch() != 9 {
		t.Fatalf("an epoch begins once: %v %d", err, f.LastEpoch())
	}
	if err := f.Begin(10, 100); err == nil {
		t.Fatal("an epoch starting before the last one was accepted")
	}
	g, err := openEpochFile(path)
	if err != nil || len(g.Entries(0)) != 3 {
		t.Fatalf("reload: %v %+v", err, g.Entries(0))
	}
	if err := os.WriteFile(path, []byte("2\n12345\n7-7000\n8-8000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openEpochFile(path); err == nil {
		t.Fatal("a wrong checksum was accepted")
	}
}

// TestConsistentPoint: the end of the newest epoch both logs share.
func TestConsistentPoint(t *testing.T) {
	oldMaster := withEnds([]EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 1000}}, 5000)
	newMaster := withEnds([]EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 1000}, {Epoch: 3, StartOffset: 4200}}, 6000)
	if p, ok := consistentPoint(oldMaster, newMaster); !ok || p != 4200 {
		t.Fatalf("point %d %v, want 4200", p, ok)
	}
	// A slave behind the master's epoch change keeps all it has.
	slave := withEnds([]EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 1000}}, 3000)
	if p, ok := consistentPoint(slave, newMaster); !ok || p != 3000 {
		t.Fatalf("point %d %v, want 3000", p, ok)
	}
	if _, ok := consistentPoint(withEnds([]EpochEntry{{Epoch: 5, StartOffset: 10}}, 20), newMaster); ok {
		t.Fatal("unrelated histories share a point")
	}
}

// TestPutStatusCodes: the controller-mode refusal answers as RocketMQ 5
// does (SYSTEM_ERROR, "in-sync replicas not enough"; the Go client fails
// the send and retries elsewhere).
func TestPutStatusCodes(t *testing.T) {
	code, remark := putStatusCode(&storage.PutResult{Status: storage.PutInSyncReplicasNotEnough})
	if code != remoting.SystemError || remark != "in-sync replicas not enough" {
		t.Fatalf("IN_SYNC_REPLICAS_NOT_ENOUGH -> %d %q", code, remark)
	}
	if storage.PutInSyncReplicasNotEnough.Stored() {
		t.Fatal("IN_SYNC_REPLICAS_NOT_ENOUGH counts as stored")
	}
}
