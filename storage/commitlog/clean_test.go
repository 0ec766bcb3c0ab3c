package commitlog

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

func waitT(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: "+format, args...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeRatio is the disk usage a test makes the cleaner see; the cleaner reads
// it from its own goroutine.
type fakeRatio struct{ bits atomic.Uint64 }

func (r *fakeRatio) set(v float64) { r.bits.Store(math.Float64bits(v)) }

func setProbe(s *Store, v float64) *fakeRatio {
	r := new(fakeRatio)
	r.set(v)
	f := func(string) (float64, error) { return math.Float64frombits(r.bits.Load()), nil }
	s.clean.probe.Store(&f)
	return r
}

func fillFiles(t *testing.T, s *Store, topic string, files int) []storage.PutResult {
	t.Helper()
	var out []storage.PutResult
	for i := 0; s.MaxPhyOffset() < int64(files)*s.opts.MappedFileSizeCommitLog; i++ {
		out = append(out, s.Put(storetest.KeyedMsg(topic, int32(i%2), fmt.Sprintf("%s%d", strings.Repeat("r", 900), i), fmt.Sprintf("key%d", i))))
		if out[len(out)-1].Status != storage.PutOK {
			t.Fatal(out[len(out)-1].Status)
		}
	}
	return out
}

// TestRetentionManualDeletion: files older than fileReservedTime go on a
// manual trigger, oldest first, never the current file; consume queues and
// the index follow, and a reader holding a deleted file keeps its bytes.
func TestRetentionManualDeletion(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.CleanResourceInterval = 10
	opts.FileReservedTime = 0
	opts.DeleteWhen = fmt.Sprint((time.Now().Hour() + 12) % 24) // not now
	s := openT(t, opts)
	defer closeT(t, s)
	setProbe(s, 0.1)
	res := fillFiles(t, s, "RT", 5)
	WaitQueryT(t, s, "RT", fmt.Sprintf("key%d", len(res)-1))

	// A reader holds the first message across the deletion.
	held := s.GetMessages("RT", 0, 0, 1, 0, nil)
	if held.Status != storage.GetFound {
		t.Fatal(held.Status)
	}
	body := string(held.Records[0][len(held.Records[0])-20:])

	time.Sleep(50 * time.Millisecond) // several cleaner rounds: nothing is due
	if s.MinPhyOffset() != 0 {
		t.Fatalf("files deleted outside deleteWhen without trigger: min %d", s.MinPhyOffset())
	}
	s.ExecuteDeleteFilesManually()
	lastFile := s.MaxPhyOffset() - s.MaxPhyOffset()%opts.MappedFileSizeCommitLog
	waitT(t, func() bool { return s.MinPhyOffset() == lastFile }, "min phy %d, want %d", s.MinPhyOffset(), lastFile)
	if got := string(held.Records[0][len(held.Records[0])-20:]); got != body {
		t.Fatalf("held record changed after deletion: %q", got)
	}
	held.Release()
	waitT(t, func() bool {
		ents, _ := os.ReadDir(opts.CommitLogDir())
		return len(ents) > 0 && ents[0].Name() == fileName(lastFile)
	}, "old commit log files still on disk")
	// Queues start at the first surviving message.
	for q := int32(0); q < 2; q++ {
		waitT(t, func() bool { return s.MinOffset("RT", q) > 0 }, "queue %d min offset not corrected", q)
		min := s.MinOffset("RT", q)
		if r := s.GetMessages("RT", q, 0, 1, 0, nil); r.Status != storage.GetOffsetTooSmall || r.NextBeginOffset != min {
			t.Fatalf("queue %d read at 0: %v next %d, want OFFSET_TOO_SMALL %d", q, r.Status, r.NextBeginOffset, min)
		}
		if got := storetest.ReadAll(t, s, "RT", q, min); int64(len(got)) != s.MaxOffset("RT", q)-min || (len(got) > 0 && got[0].CommitLogOffset < lastFile) {
			t.Fatalf("queue %d after retention: %d messages", q, len(got))
		}
	}
	// Old keys are gone with their records, recent ones still found.
	if r, _ := s.QueryMessages("RT", "key0", 10, 0, time.Now().Add(time.Hour).UnixMilli(), false); len(r.Offsets) != 0 {
		t.Fatalf("deleted message still found by key: %v", r.Offsets)
	}
	WaitQueryT(t, s, "RT", fmt.Sprintf("key%d", len(res)-1))
	waitT(t, func() bool {
		ents, _ := os.ReadDir(opts.IndexDir())
		s.idx.mu.RLock()
		defer s.idx.mu.RUnlock()
		for _, x := range s.idx.files[:len(s.idx.files)-1] {
			if x.endPhy < s.MinPhyOffset() {
				return false
			}
		}
		return len(ents) == len(s.idx.files) && len(ents) < 2*len(res)/opts.MaxIndexNum
	}, "index files not pruned")
	// Writes go on.
	if r := s.Put(storetest.Msg("RT", 0, "after", "")); r.Status != storage.PutOK {
		t.Fatal(r.Status)
	}
}

// TestRetentionKeepsYoungFiles: a manual trigger deletes nothing younger than
// fileReservedTime.
func TestRetentionKeepsYoungFiles(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.CleanResourceInterval = 10
	opts.FileReservedTime = 1
	s := openT(t, opts)
	defer closeT(t, s)
	setProbe(s, 0.1)
	fillFiles(t, s, "RY", 3)
	s.ExecuteDeleteFilesManually()
	waitT(t, func() bool { return s.clean.manualRounds.Load() < 15 }, "cleaner did not run")
	if s.MinPhyOffset() != 0 {
		t.Fatalf("young files deleted: min %d", s.MinPhyOffset())
	}
}

// TestDiskFullAndForcedClean (S13): above diskSpaceWarningLevelRatio puts
// get DISK_FULL while reads go on; above diskSpaceCleanForciblyRatio files
// are deleted regardless of age; below the marks writes resume.
func TestDiskFullAndForcedClean(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.CleanResourceInterval = 10
	s := openT(t, opts)
	defer closeT(t, s)
	ratio := setProbe(s, 0.5)
	fillFiles(t, s, "DF", 4)

	ratio.set(0.95)
	waitT(t, s.DiskFull, "disk-full flag not raised")
	if r := s.Put(storetest.Msg("DF", 0, "refused", "")); r.Status != storage.PutDiskFull || r.Err == nil {
		t.Fatalf("put on a full disk: %v %v", r.Status, r.Err)
	}
	// Reads go on. The forced clean below may delete the files under a read
	// that started at the old minimum (OFFSET_TOO_SMALL): read again from
	// the new one.
	waitT(t, func() bool {
		r := s.GetMessages("DF", 0, s.MinOffset("DF", 0), 32, 0, nil)
		defer r.Release()
		switch r.Status {
		case storage.GetFound:
			return len(r.Records) > 0
		case storage.GetOffsetTooSmall, storage.GetMessageWasRemoving:
			return false
		}
		t.Fatalf("read on a full disk: status %d", r.Status)
		return false
	}, "reads stopped on a full disk")
	// 0.95 is above the forced-clean ratio too: everything but the current
	// file goes, whatever fileReservedTime (72 h) says.
	lastFile := s.MaxPhyOffset() - s.MaxPhyOffset()%opts.MappedFileSizeCommitLog
	waitT(t, func() bool { return s.MinPhyOffset() == lastFile }, "forced clean: min %d, want %d", s.MinPhyOffset(), lastFile)

	ratio.set(0.6)
	waitT(t, func() bool { return !s.DiskFull() }, "disk-full flag not cleared")
	if r := s.Put(storetest.Msg("DF", 0, "resumed", "")); r.Status != storage.PutOK {
		t.Fatalf("put after space returned: %v %v", r.Status, r.Err)
	}
}

func WaitQueryT(t *testing.T, s *Store, topic, key string) {
	t.Helper()
	storetest.WaitQuery(t, s, topic, key, 10, 0, time.Now().Add(time.Hour).UnixMilli(), false, 1)
}
