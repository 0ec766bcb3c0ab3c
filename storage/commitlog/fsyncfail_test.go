package commitlog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

// S11 of docs/faults.md: an fsync of the commit log fails with EIO. The
// store fences itself: no later PUT_OK until a restart, even if a retried
// fsync succeeds (the kernel may have dropped the failed pages: fsyncgate),
// reads of what was acknowledged go on, Stop keeps the abort marker, and the
// next start recovers as after a crash. device-mapper (dm-error, dm-flakey)
// is not available on the machines these tests run on, so the failure comes
// through the syncErr seam in flushCommitLog.

// failSyncOnce makes the next commit-log flush fail with EIO; later ones
// succeed. It returns how many flushes it has seen.
func failSyncOnce(s *Store) *atomic.Int32 {
	calls := new(atomic.Int32)
	h := func() error {
		if calls.Add(1) == 1 {
			return unix.EIO
		}
		return nil
	}
	s.syncErr.Store(&h)
	return calls
}

// checkFencedThenRecovered checks a fenced store and its restart: puts are
// refused with the EIO, acknowledged messages stay readable, Close reports
// the fence and keeps the abort file, and a reopened store serves every
// acknowledged message and accepts puts again.
// The acknowledged messages are topic's first acked in queue 0, with putN's
// bodies.
func checkFencedThenRecovered(t *testing.T, s *Store, opts Options, topic string, acked int) {
	t.Helper()
	r := s.Put(storetest.Msg(topic, 0, "after-fence", ""))
	if r.Status != storage.PutServiceNotAvailable || !errors.Is(r.Err, unix.EIO) || !strings.Contains(r.Err.Error(), "fenced") {
		t.Fatalf("put after the failed fsync: %v %v; want SERVICE_NOT_AVAILABLE with the fence and EIO", r.Status, r.Err)
	}
	if got := readQueue(t, s, topic, 0); len(got) < acked {
		t.Fatalf("fenced store serves %d messages, want the %d acknowledged", len(got), acked)
	}
	if err := s.Close(); err == nil || !errors.Is(err, unix.EIO) {
		t.Fatalf("Close of a fenced store: %v, want the fence error", err)
	}
	if _, err := os.Stat(opts.AbortPath()); err != nil {
		t.Fatalf("abort file after stopping a fenced store: %v (the next start must recover as after a crash)", err)
	}

	s = openT(t, opts)
	defer closeT(t, s)
	got := readQueue(t, s, topic, 0)
	if len(got) < acked {
		t.Fatalf("after restart %d messages, want at least the %d acknowledged", len(got), acked)
	}
	for i := range acked {
		if want := fmt.Sprintf("%s-0-%d", topic, i); string(got[i].Body) != want || got[i].QueueOffset != int64(i) {
			t.Fatalf("message %d after restart: %q at %d, want %q", i, got[i].Body, got[i].QueueOffset, want)
		}
	}
	if r := s.Put(storetest.Msg(topic, 0, "after-restart", "")); r.Status != storage.PutOK {
		t.Fatalf("put after restart: %v %v", r.Status, r.Err)
	}
}

// TestS11FsyncEIOSyncFlush: under SYNC_FLUSH the puts waiting on the failed
// group commit get FLUSH_DISK_TIMEOUT (as in RocketMQ, the message is stored
// but not known durable), never PUT_OK, and none are made visible to
// consumers by the retried fsync.
func TestS11FsyncEIOSyncFlush(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FlushDiskType = storage.SyncFlush
	opts.SyncFlushTimeout = 30000 // the answer must come from the fence, not the timeout
	s := openT(t, opts)
	const acked = 200
	putN(t, s, "S11", 0, acked)
	calls := failSyncOnce(s)

	const senders = 8
	statuses := make(chan storage.PutResult, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.Put(storetest.Msg("S11", 0, fmt.Sprintf("failing-%d", i), ""))
		}()
	}
	wg.Wait()
	close(statuses)
	timeouts := 0
	for r := range statuses {
		switch r.Status {
		case storage.PutFlushDiskTimeout:
			timeouts++
		case storage.PutServiceNotAvailable: // arrived after the fence went up
		default:
			t.Fatalf("put during a failed fsync: %v %v; want FLUSH_DISK_TIMEOUT or SERVICE_NOT_AVAILABLE", r.Status, r.Err)
		}
	}
	if timeouts == 0 {
		t.Fatal("no put waited on the failed fsync")
	}
	if calls.Load() == 0 {
		t.Fatal("the failing flush was never attempted")
	}
	// The failed batch stays invisible to consumers: only a restart, which
	// reads the disk again, can tell whether it was written.
	if got := s.MaxOffset("S11", 0); got != acked {
		t.Fatalf("queue max offset %d on the fenced store, want %d (nothing past the failed fsync dispatched)", got, acked)
	}
	checkFencedThenRecovered(t, s, opts, "S11", acked)
}

// TestS11FsyncEIOAsyncFlush: under ASYNC_FLUSH a failed flush of the
// background flusher fences the store the same way.
func TestS11FsyncEIOAsyncFlush(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FlushIntervalCommitLog = 5
	opts.FlushCommitLogThoroughInterval = 10
	s := openT(t, opts)
	putN(t, s, "S11A", 0, 100)
	waitT(t, func() bool { return s.FlushedPhyOffset() >= s.MaxPhyOffset() }, "commit log not flushed")
	failSyncOnce(s)
	// Acknowledged at once (ASYNC_FLUSH) until the flusher fails.
	acked := 100
	for ; acked < 100000; acked++ {
		if r := s.Put(storetest.Msg("S11A", 0, fmt.Sprintf("S11A-0-%d", acked), "")); r.Status != storage.PutOK {
			break
		}
	}
	waitT(t, func() bool { return s.fenceErr.Load() != nil }, "the failed flush did not fence the store")
	checkFencedThenRecovered(t, s, opts, "S11A", acked)
}

// TestFenceWakesFlushWaiters: a fence raised outside the flusher (a failed
// commit on the put path, a consume-queue flush error) answers the puts
// waiting for a flush at once with FLUSH_DISK_TIMEOUT, not after
// syncFlushTimeout (a minute here).
func TestFenceWakesFlushWaiters(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FlushDiskType = storage.SyncFlush
	opts.SyncFlushTimeout = 60000
	s := openT(t, opts)
	release := make(chan struct{})
	var once sync.Once
	hook := func() { once.Do(func() { <-release }) } // the group commit stalls
	s.beforeSync.Store(&hook)
	defer func() {
		close(release)
		_ = s.Close() // fenced: Close reports it
	}()

	const senders = 4
	statuses := make(chan storage.PutStatus, senders)
	for i := range senders {
		go func() { statuses <- s.Put(storetest.Msg("FW", 0, fmt.Sprintf("w-%d", i), "")).Status }()
	}
	waitT(t, func() bool { return s.pendingLen() == senders }, "puts not waiting")
	s.fence(errors.New("injected: consume queue flush failed"))
	deadline := time.After(20 * time.Second)
	for range senders {
		select {
		case st := <-statuses:
			if st != storage.PutFlushDiskTimeout {
				t.Fatalf("waiting put after a fence: %v, want FLUSH_DISK_TIMEOUT", st)
			}
		case <-deadline:
			t.Fatal("waiting puts not answered after the fence")
		}
	}
}
