package ha_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/hatest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
	_ "github.com/mqd/mqd/storage" // store.* keys
)

func factory(id kernel.ModuleID) hatest.Factory {
	return func(t *testing.T) ha.Replicator { return build(t, id) }
}

// build makes a provisioned replicator with hatest.Timeout as syncFlushTimeout.
func build(t testing.TB, id kernel.ModuleID) ha.Replicator {
	t.Helper()
	{
		noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
		cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, ProfileSource: noProfile,
			Sets: []string{fmt.Sprintf("store.syncFlushTimeout=%d", hatest.Timeout.Milliseconds()), "ha.haSlaveFallbehindMax=1048576"}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), id)
		if err != nil {
			t.Fatal(err)
		}
		return m.(ha.Replicator)
	}
}

func TestAsyncConformance(t *testing.T) { hatest.Run(t, factory(ha.AsyncID)) }
func TestSyncConformance(t *testing.T)  { hatest.Run(t, factory(ha.SyncID)) }

// TestInSyncConformance runs the suite with the pair's slave in the
// SyncStateSet, so every write waits for it.
func TestInSyncConformance(t *testing.T) {
	hatest.Run(t, func(t *testing.T) ha.Replicator {
		r := build(t, ha.InSyncID)
		r.(ha.SyncStateSetter).SetSyncStateSet([]int64{hatest.SlaveBrokerID})
		return r
	})
}

// TestSyncStatuses pins SYNC_MASTER's answers: SLAVE_NOT_AVAILABLE without a
// slave or beyond haSlaveFallbehindMax, FLUSH_SLAVE_TIMEOUT when the slave
// goes away during the wait, PUT_OK once confirmed.
func TestSyncStatuses(t *testing.T) {
	p := hatest.NewPair(t)
	r := factory(ha.SyncID)(t)
	r.Attach(p.MasterHA)
	end := p.Put(t, "first")
	if st := r.Await(end); st != storage.PutSlaveNotAvailable {
		t.Fatalf("no slave: %v", st)
	}
	if err := r.Ready(end); err == nil {
		t.Fatal("Ready without slave")
	}
	p.StartSlave(t)
	p.WaitCaughtUp(t)
	if st := r.Await(p.Put(t, "second")); st != storage.PutOK {
		t.Fatalf("with slave: %v", st)
	}
	// Beyond haSlaveFallbehindMax (1 MiB here).
	if st := r.Await(p.Master.MaxPhyOffset() + 2<<20); st != storage.PutSlaveNotAvailable {
		t.Fatalf("far behind: %v", st)
	}
	// A confirmation that never comes: timeout.
	began := time.Now()
	if st := r.Await(p.Master.MaxPhyOffset() + 100); st != storage.PutFlushSlaveTimeout {
		t.Fatalf("unconfirmable: %v", st)
	}
	if d := time.Since(began); d < hatest.Timeout-100*time.Millisecond {
		t.Fatalf("timed out after %v, before syncFlushTimeout %v", d, hatest.Timeout)
	}
}

// TestAsyncAlwaysOK: ASYNC_MASTER never waits.
func TestAsyncAlwaysOK(t *testing.T) {
	p := hatest.NewPair(t)
	r := factory(ha.AsyncID)(t)
	r.Attach(p.MasterHA)
	if st := r.Await(p.Put(t, "x") + 1<<30); st != storage.PutOK {
		t.Fatal(st)
	}
}

// TestSyncWaitersIndependent: a wait that cannot be confirmed neither delays
// the ones confirmed meanwhile nor outlives its own deadline (one waker serves
// every wait in progress).
func TestSyncWaitersIndependent(t *testing.T) {
	p := hatest.NewPair(t)
	p.StartSlave(t)
	r := factory(ha.SyncID)(t)
	r.Attach(p.MasterHA)
	p.Put(t, "warm")
	p.WaitCaughtUp(t)
	stuck := make(chan storage.PutStatus, 1)
	go func() { stuck <- r.Await(p.Master.MaxPhyOffset() + 512<<10) }() // within haSlaveFallbehindMax, beyond the 20 messages
	for i := range 20 {
		if st := r.Await(p.Put(t, fmt.Sprintf("m%d", i))); st != storage.PutOK {
			t.Fatalf("message %d beside a stuck wait: %v", i, st)
		}
	}
	select {
	case st := <-stuck:
		t.Fatalf("unconfirmable wait answered %v before its deadline", st)
	default:
	}
	select {
	case st := <-stuck:
		if st != storage.PutFlushSlaveTimeout {
			t.Fatalf("unconfirmable wait: %v", st)
		}
	case <-time.After(hatest.Timeout + 10*time.Second):
		t.Fatal("unconfirmable wait never timed out")
	}
}
