package commitlog

import (
	"testing"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

// TestWriteBufferFallback: under SYNC_FLUSH a commit-log file left without a
// write buffer (the anonymous mapping refused) takes appends through its
// mapping; files with and without one follow each other across rolls, and
// everything acknowledged is read back after a restart.
func TestWriteBufferFallback(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FlushDiskType = storage.SyncFlush
	s := openT(t, opts)
	putN(t, s, "WB", 0, 50)
	if last := s.cl.q.last(); last == nil || last.wbuf == nil {
		t.Fatal("SYNC_FLUSH store has no write buffer on its newest file")
	}

	// Take the buffer away as a failed attach would have left the file.
	s.putMu.Lock()
	s.commitMu.Lock()
	last := s.cl.q.last()
	if err := last.commit(); err != nil {
		t.Fatal(err)
	}
	last.freeWriteBuffer()
	s.commitMu.Unlock()
	s.putMu.Unlock()

	putN(t, s, "WB", 0, 2950) // through the mapping, then rolls to files with buffers
	files := s.cl.q.snapshot()
	if len(files) < 3 || files[len(files)-1].wbuf == nil {
		t.Fatalf("want rolls onto files with write buffers again; %d files", len(files))
	}
	closeT(t, s)

	s = openT(t, opts)
	defer closeT(t, s)
	if got := storetest.ReadAll(t, s, "WB", 0, 0); len(got) != 3000 {
		t.Fatalf("read %d messages after restart, want 3000", len(got))
	}
}

// TestWarmingKeepsAhead: under ASYNC_FLUSH the warmer faults in the newest
// file's pages ahead of the write position.
func TestWarmingKeepsAhead(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MappedFileSizeCommitLog = 16 << 20
	s := openT(t, opts)
	defer closeT(t, s)
	for range 3 {
		putN(t, s, "WARM", 0, 200)
		waitT(t, func() bool {
			last := s.cl.q.last()
			return last.warmed.Load() >= min(last.size, last.wrote.Load()+warmAhead/2)
		}, "pages not warmed ahead of the write position")
	}
}
