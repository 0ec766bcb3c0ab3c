package commitlog

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// TestRecoveryTime measures how long Open takes after a clean stop of a
// store holding 2 GiB of 1 KiB messages (RocketMQ's default 1 GiB commit-log
// files), with the clean stop's record and without it (the walk of the
// newest files, as for a checkpoint written by RocketMQ); then after a crash
// of 512 MiB, 1 GiB and 2 GiB, against a clean restart; then for 2 GiB with
// 256 MiB written after the last checkpoint, and with no checkpoint at all
// (the fallback walk from the first file). Opt-in: it writes about 10 GiB in
// total, 2.3 GiB at a time; run with
//
//	MQD_RECOVERY_BENCH=1 go test ./storage/commitlog -run TestRecoveryTime -v -timeout 30m
//
// The data stays in the page cache across the simulated crash (as after
// kill -9), so the figure is recovery's CPU work, not disk reads.
func TestRecoveryTime(t *testing.T) {
	if os.Getenv("MQD_RECOVERY_BENCH") == "" {
		t.Skip("set MQD_RECOVERY_BENCH=1 to measure crash recovery of a multi-GiB commit log")
	}
	t.Run("2048MiBCleanStop", func(t *testing.T) { cleanRestartTime(t, 2<<30) })
	for _, c := range []struct {
		total, tail  int64
		noCheckpoint bool
	}{
		{512 << 20, 0, false}, {1 << 30, 0, false}, {2 << 30, 0, false},
		{2 << 30, 256 << 20, false}, {2 << 30, 0, true},
	} {
		name := fmt.Sprintf("%dMiB", c.total>>20)
		if c.tail > 0 {
			name += fmt.Sprintf("+%dMiBAfterCheckpoint", c.tail>>20)
		}
		if c.noCheckpoint {
			name += "NoCheckpoint"
		}
		t.Run(name, func(t *testing.T) { recoveryTime(t, c.total, c.tail, c.noCheckpoint) })
	}
}

// putBytes appends about n bytes of 1 KiB messages.
func putBytes(t *testing.T, s *Store, n int64) int64 {
	m := benchMsg(1024)
	rec := int64(message.EncodedSize(m))
	count := n / rec
	for i := int64(0); i < count; i++ {
		m.QueueID = int32(i & 7)
		if r := s.Put(m); r.Status != storage.PutOK {
			t.Fatal(r.Status, r.Err)
		}
	}
	return count
}

func recoveryTime(t *testing.T, total, tail int64, noCheckpoint bool) {
	opts := DefaultOptions()
	opts.StorePathRootDir = t.TempDir()
	// The checkpoint is persisted on thorough consume-queue flushes; make them
	// frequent so it reflects the flushed state when the crash comes (or
	// never happen, for the no-checkpoint case).
	opts.FlushConsumeQueueThoroughInterval = 500
	if noCheckpoint {
		opts.FlushConsumeQueueThoroughInterval = 3600_000
	}
	opts.FlushCommitLogThoroughInterval = 500
	s, err := Open(opts, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	n := putBytes(t, s, total-tail)
	wrote := time.Since(began)
	// Wait until the flushers have covered everything and persisted a
	// checkpoint, as on a broker that crashes some time after its last write.
	for deadline := time.Now().Add(60 * time.Second); s.FlushedPhyOffset() < s.MaxPhyOffset(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("commit log not flushed")
		}
	}
	time.Sleep(1200 * time.Millisecond) // two thorough rounds: no condition to wait on
	if tail > 0 {
		// Reopen with checkpoints off and write the tail: it is all after
		// the last persisted checkpoint.
		crash(t, s)
		o := opts
		o.FlushConsumeQueueThoroughInterval = 3600_000
		if s, err = Open(o, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		n += putBytes(t, s, tail)
	}
	maxPhy := s.MaxPhyOffset()
	crash(t, s)

	began = time.Now()
	s, err = Open(opts, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	crashed := time.Since(began)
	if s.MaxPhyOffset() != maxPhy {
		t.Fatalf("recovered to %d, want %d", s.MaxPhyOffset(), maxPhy)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	s, err = Open(opts, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	clean := time.Since(began)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MiB (%d msgs, written in %v): crash recovery %v, clean restart %v",
		maxPhy>>20, n, wrote.Round(time.Millisecond), crashed.Round(time.Millisecond), clean.Round(time.Microsecond))
}

// cleanRestartTime writes total bytes, stops cleanly and times Open, then
// again with the clean stop's record removed from the checkpoint.
func cleanRestartTime(t *testing.T, total int64) {
	opts := DefaultOptions()
	opts.StorePathRootDir = t.TempDir()
	s, err := Open(opts, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	n := putBytes(t, s, total)
	maxPhy := s.MaxPhyOffset()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	open := func() time.Duration {
		began := time.Now()
		s, err := Open(opts, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		if s.MaxPhyOffset() != maxPhy {
			t.Fatalf("recovered to %d, want %d", s.MaxPhyOffset(), maxPhy)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return took
	}
	fast := open()
	patchFile(t, opts.CheckpointPath(), func(b []byte) []byte {
		clear(b[64:80]) // no clean-stop record, as written by an earlier mqd
		return b
	})
	walk := open()
	t.Logf("%d MiB (%d msgs): clean restart %v; without the clean stop's record (walk of the newest files) %v",
		maxPhy>>20, n, fast.Round(time.Microsecond), walk.Round(time.Millisecond))
}

// waitCheckpoint waits until the persisted checkpoint lets crash recovery
// start at or after off.
func waitCheckpoint(t *testing.T, s *Store, off int64) {
	t.Helper()
	// The file, not s.cp: memory is updated before the file is written.
	persisted := func() int64 {
		cp, err := openCheckpoint(s.opts.CheckpointPath())
		if err != nil {
			t.Fatal(err)
		}
		defer cp.close()
		return cp.recoveryStart()
	}
	for deadline := time.Now().Add(30 * time.Second); persisted() < off; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint file's recovery start %d, want at least %d", persisted(), off)
		}
	}
}

func checkpointOpts(t *testing.T) Options {
	opts := testOptions(t.TempDir())
	opts.FlushIntervalCommitLog = 5
	opts.FlushCommitLogThoroughInterval = 10
	opts.FlushIntervalConsumeQueue = 5
	opts.FlushConsumeQueueThoroughInterval = 10
	return opts
}

// TestCrashRecoveryStartsAtCheckpointOffset: with a current checkpoint,
// crash recovery walks only what follows the last record known flushed to
// both the log and the consume queues, not the whole newest file.
func TestCrashRecoveryStartsAtCheckpointOffset(t *testing.T) {
	opts := checkpointOpts(t)
	s := openT(t, opts)
	res := putN(t, s, "CP", 0, 1000)
	last := res[len(res)-1]
	waitCheckpoint(t, s, last.CommitLogOffset)
	crash(t, s)
	// Damage a record early in the newest file: a walk from the file start
	// would cut the log there, a walk from the checkpoint does not see it.
	var early storage.PutResult
	for _, r := range res {
		if r.CommitLogOffset/opts.MappedFileSizeCommitLog == last.CommitLogOffset/opts.MappedFileSizeCommitLog {
			early = r
			break
		}
	}
	if early.CommitLogOffset == last.CommitLogOffset {
		t.Fatal("test setup: the newest file holds one record")
	}
	patchFile(t, clFile(t, s, early.CommitLogOffset), func(b []byte) []byte {
		b[early.CommitLogOffset%opts.MappedFileSizeCommitLog+bodyPos+1] ^= 0x20
		return b
	})
	s = openT(t, opts)
	defer closeT(t, s)
	if want := last.CommitLogOffset + int64(last.WroteBytes); s.MaxPhyOffset() != want {
		t.Fatalf("recovered to %d, want %d: the walk did not start at the checkpoint", s.MaxPhyOffset(), want)
	}
	if got := readQueue(t, s, "CP", 0); len(got) != 999 {
		t.Fatalf("read %d messages, want 999 (the damaged one is not served)", len(got))
	}
}

// TestCheckpointOffsetNotTrustedWhenDamaged: if the record at the
// checkpoint's offset is not intact, recovery falls back to the checkpoint
// time, and the offsets past the cut are forgotten.
func TestCheckpointOffsetNotTrustedWhenDamaged(t *testing.T) {
	opts := checkpointOpts(t)
	s := openT(t, opts)
	res := putN(t, s, "CP", 0, 1000)
	last := res[len(res)-1]
	waitCheckpoint(t, s, last.CommitLogOffset)
	start := s.cp.recoveryStart()
	crash(t, s)
	patchFile(t, clFile(t, s, start), func(b []byte) []byte {
		b[start%opts.MappedFileSizeCommitLog+bodyPos+1] ^= 0x20
		return b
	})
	s = openT(t, opts)
	defer closeT(t, s)
	// Everything was written within 3 s of the checkpoint time: the
	// fallback walks from the first file and cuts at the damaged record.
	if s.MaxPhyOffset() != start {
		t.Fatalf("recovered to %d, want the damaged record's offset %d", s.MaxPhyOffset(), start)
	}
	if got := s.cp.recoveryStart(); got >= start {
		t.Fatalf("checkpoint still trusts offset %d past the cut at %d", got, start)
	}
	if got := readQueue(t, s, "CP", 0); int64(len(got)) != s.MaxOffset("CP", 0) || len(got) >= 1000 {
		t.Fatalf("read %d messages, queue max %d", len(got), s.MaxOffset("CP", 0))
	}
}
