package commitlog

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/logging/logtest"
	"github.com/mqd/mqd/storage"
)

// Fast restart after a clean stop: recovery starts at the newest record the
// stop recorded in the checkpoint and checks that the log ends where the stop
// said; anything that does not match falls back to the walk of the newest
// files.

// openLogged opens a store whose log the test can read.
func openLogged(t *testing.T, opts Options) (*Store, *logtest.Buffer) {
	t.Helper()
	lb := new(logtest.Buffer)
	s, err := Open(opts, zerolog.New(lb))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s, lb
}

const (
	msgCleanVerified = "clean stop verified"
	msgCleanWalk     = "walking the newest files"
)

// TestCleanRestartVerifiesOnlyTheTail: after a clean stop the restart reads
// only the last record; a record damaged earlier in the newest files (which
// the walk would cut the log at) is not looked at, and the read path still
// refuses to serve it. Restarts without puts in between keep the fast path.
func TestCleanRestartVerifiesOnlyTheTail(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	res := putN(t, s, "CR", 0, 1500)
	maxPhy := s.MaxPhyOffset()
	closeT(t, s)
	fsz := opts.MappedFileSizeCommitLog
	var bad storage.PutResult
	for _, r := range res {
		if r.CommitLogOffset/fsz == maxPhy/fsz-1 {
			bad = r // in the second-newest file
			break
		}
	}
	patchFile(t, clFile(t, s, bad.CommitLogOffset), func(b []byte) []byte {
		b[bad.CommitLogOffset%fsz+bodyPos+1] ^= 0x20
		return b
	})
	for i := range 3 {
		s, lb := openLogged(t, opts)
		if !lb.Contains(msgCleanVerified) || lb.Contains(msgCleanWalk) {
			closeT(t, s)
			t.Fatalf("restart %d did not take the fast path:\n%s", i, lb.String())
		}
		if s.MaxPhyOffset() != maxPhy || s.MaxOffset("CR", 0) != 1500 {
			closeT(t, s)
			t.Fatalf("restart %d: log end %d, queue max %d; want %d, 1500", i, s.MaxPhyOffset(), s.MaxOffset("CR", 0), maxPhy)
		}
		if got := readQueue(t, s, "CR", 0); len(got) != 1499 {
			closeT(t, s)
			t.Fatalf("read %d messages, want 1499 (all but the damaged one)", len(got))
		}
		closeT(t, s)
	}
	// Puts after a fast restart, then a clean stop: the next restart is fast
	// again and sees them.
	s, _ = openLogged(t, opts)
	putN(t, s, "CR", 1, 10)
	maxPhy = s.MaxPhyOffset()
	closeT(t, s)
	s, lb := openLogged(t, opts)
	defer closeT(t, s)
	if !lb.Contains(msgCleanVerified) || s.MaxPhyOffset() != maxPhy || s.MaxOffset("CR", 1) != 10 {
		t.Fatalf("restart after puts: end %d (want %d), queue max %d:\n%s", s.MaxPhyOffset(), maxPhy, s.MaxOffset("CR", 1), lb.String())
	}
}

// TestCleanRestartFallsBack: whenever the log does not match what the clean
// stop recorded, recovery walks the newest files as before.
func TestCleanRestartFallsBack(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the stopped store; it returns the log end and
		// queue length the walk must find.
		damage func(t *testing.T, opts Options, res []storage.PutResult, maxPhy int64) (int64, int64)
	}{
		{"lastRecordCorrupt", func(t *testing.T, opts Options, res []storage.PutResult, maxPhy int64) (int64, int64) {
			last := res[len(res)-1].CommitLogOffset
			patchFile(t, filepath.Join(opts.CommitLogDir(), fileName(last-last%opts.MappedFileSizeCommitLog)), func(b []byte) []byte {
				b[last%opts.MappedFileSizeCommitLog+bodyPos+1] ^= 0x20
				return b
			})
			return last, int64(len(res) - 1)
		}},
		{"endMismatch", func(t *testing.T, opts Options, res []storage.PutResult, maxPhy int64) (int64, int64) {
			patchFile(t, opts.CheckpointPath(), func(b []byte) []byte {
				binary.BigEndian.PutUint64(b[72:], uint64(maxPhy-1))
				return b
			})
			return maxPhy, int64(len(res))
		}},
		{"earlierMqdCheckpoint", func(t *testing.T, opts Options, res []storage.PutResult, maxPhy int64) (int64, int64) {
			patchFile(t, opts.CheckpointPath(), func(b []byte) []byte {
				clear(b[64:80])
				return b
			})
			return maxPhy, int64(len(res))
		}},
		{"rocketmqCheckpoint", func(t *testing.T, opts Options, res []storage.PutResult, maxPhy int64) (int64, int64) {
			patchFile(t, opts.CheckpointPath(), func(b []byte) []byte {
				clear(b[24:])
				return b
			})
			return maxPhy, int64(len(res))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions(t.TempDir())
			s := openT(t, opts)
			res := putN(t, s, "CF", 0, 600)
			maxPhy := s.MaxPhyOffset()
			closeT(t, s)
			wantEnd, wantN := c.damage(t, opts, res, maxPhy)
			s, lb := openLogged(t, opts)
			defer closeT(t, s)
			if lb.Contains(msgCleanVerified) {
				t.Fatalf("fast path taken:\n%s", lb.String())
			}
			if s.MaxPhyOffset() != wantEnd || s.MaxOffset("CF", 0) != wantN {
				t.Fatalf("log end %d, queue max %d; want %d, %d", s.MaxPhyOffset(), s.MaxOffset("CF", 0), wantEnd, wantN)
			}
			if got := readQueue(t, s, "CF", 0); int64(len(got)) != wantN {
				t.Fatalf("read %d messages, want %d", len(got), wantN)
			}
		})
	}
}
