package broker

import (
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting/body"
)

func TestQueueLocks(t *testing.T) {
	m := newQueueLockManager(nil)
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	q0 := body.MessageQueue{Topic: "T", BrokerName: "b", QueueID: 0}
	q1 := body.MessageQueue{Topic: "T", BrokerName: "b", QueueID: 1}

	if got := m.TryLockBatch("g", "c1", []body.MessageQueue{q0, q1}); len(got) != 2 {
		t.Fatalf("c1 got %v", got)
	}
	if got := m.TryLockBatch("g", "c2", []body.MessageQueue{q0, q1}); len(got) != 0 {
		t.Fatalf("c2 got %v while c1 holds both", got)
	}
	// Another group is independent.
	if got := m.TryLockBatch("g2", "c2", []body.MessageQueue{q0}); len(got) != 1 {
		t.Fatalf("other group got %v", got)
	}
	// c1 renews q0 only; after 60 s q1 has expired and goes to c2.
	now = now.Add(30 * time.Second)
	m.TryLockBatch("g", "c1", []body.MessageQueue{q0})
	now = now.Add(31 * time.Second)
	if !m.IsLocked("g", "c1", q0) || m.IsLocked("g", "c1", q1) {
		t.Fatal("IsLocked wrong after partial renewal")
	}
	if got := m.TryLockBatch("g", "c2", []body.MessageQueue{q0, q1}); len(got) != 1 || got[0] != q1 {
		t.Fatalf("c2 got %v, want only q1", got)
	}
	// Unlock by a non-owner does nothing; by the owner frees the queue.
	m.UnlockBatch("g", "c2", []body.MessageQueue{q0})
	if !m.IsLocked("g", "c1", q0) {
		t.Fatal("non-owner unlocked q0")
	}
	m.UnlockBatch("g", "c1", []body.MessageQueue{q0})
	if got := m.TryLockBatch("g", "c2", []body.MessageQueue{q0}); len(got) != 1 {
		t.Fatal("q0 not free after its owner unlocked it")
	}
	now = now.Add(2 * time.Minute)
	m.pruneExpired()
	if len(m.locks) != 0 {
		t.Fatalf("%d expired locks kept", len(m.locks))
	}
}
