package ha_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/hatest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
)

// TestInSyncStatuses pins ha.insync's answers: writes refused until the
// SyncStateSet is known and while it holds fewer replicas than
// minInSyncReplicas; a member that never confirms times the write out; the
// master alone in the set acknowledges at once.
func TestInSyncStatuses(t *testing.T) {
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, ProfileSource: noProfile,
		Sets: []string{fmt.Sprintf("store.syncFlushTimeout=%d", hatest.Timeout.Milliseconds()), "ha.minInSyncReplicas=2"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), ha.InSyncID)
	if err != nil {
		t.Fatal(err)
	}
	r := m.(interface {
		ha.Replicator
		ha.SyncStateSetter
		ha.Admitter
	})
	p := hatest.NewPair(t)
	r.Attach(p.MasterHA)
	if st := r.Admit(); st != storage.PutServiceNotAvailable {
		t.Fatalf("set unknown: Admit %v", st)
	}
	if st := r.Await(p.Put(t, "x")); st != storage.PutFlushSlaveTimeout {
		t.Fatalf("set unknown: Await %v, want FLUSH_SLAVE_TIMEOUT (nothing counts as replicated)", st)
	}
	r.SetSyncStateSet(nil) // the master alone
	if st := r.Admit(); st != storage.PutInSyncReplicasNotEnough {
		t.Fatalf("1 replica, minInSyncReplicas 2: Admit %v", st)
	}
	r.SetSyncStateSet([]int64{hatest.SlaveBrokerID})
	if st := r.Admit(); st != storage.PutOK {
		t.Fatalf("2 replicas: Admit %v", st)
	}
	// The member is not connected: the write times out.
	if st := r.Await(p.Put(t, "y")); st != storage.PutFlushSlaveTimeout {
		t.Fatalf("member away: %v", st)
	}
	p.StartSlave(t)
	p.WaitCaughtUp(t)
	if st := r.Await(p.Put(t, "z")); st != storage.PutOK {
		t.Fatalf("member confirmed: %v", st)
	}
	// A member that is not the connected slave holds writes back.
	r.SetSyncStateSet([]int64{hatest.SlaveBrokerID, 9})
	if st := r.Await(p.Put(t, "w")); st != storage.PutFlushSlaveTimeout {
		t.Fatalf("second member away: %v", st)
	}
}
