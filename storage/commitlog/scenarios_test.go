package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
	"github.com/mqd/mqd/storage/storetest"
)

// Store fault scenarios of docs/faults.md without a test elsewhere: S3
// (corrupt record in an old file), S4 (bad record lengths in the tail), S10
// (slow fsync under SYNC_FLUSH), S14 (crash while rolling to a new file) and
// S15 (fuzzed store directory).

// bodyPos is where a record's body starts for IPv4 born and store hosts; the
// body CRC covers only the body.
const bodyPos = 88

// patchFile applies fn to the bytes of a file and writes them back.
func patchFile(t testing.TB, path string, fn func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readQueue pulls a whole queue, tolerating batches the read path skipped
// entirely, and checks every record it is given is intact.
func readQueue(t testing.TB, s *Store, topic string, qid int32) []*message.Ext {
	t.Helper()
	var out []*message.Ext
	off := s.MinOffset(topic, qid)
	for range 100000 {
		r := s.GetMessages(topic, qid, off, 32, 0, nil)
		for _, rec := range r.Records {
			if _, err := message.CheckRecord(rec, true); err != nil {
				t.Fatalf("%s/%d@%d: a pull returned a damaged record: %v", topic, qid, off, err)
			}
			e, err := message.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			e.Body = append([]byte(nil), e.Body...)
			out = append(out, e)
		}
		r.Release()
		switch r.Status {
		case storage.GetFound, storage.GetNoMatchedMessage, storage.GetOffsetFoundNull, storage.GetMessageWasRemoving:
			if r.NextBeginOffset <= off {
				t.Fatalf("%s/%d: read stuck at %d (status %d)", topic, qid, off, r.Status)
			}
			off = r.NextBeginOffset
		default:
			return out
		}
	}
	t.Fatalf("%s/%d: read does not end", topic, qid)
	return nil
}

// TestS3CorruptRecordInOldFileNotServed: after a clean shutdown recovery only
// walks the newest files, so a byte flipped in an old one is found by the
// read path: the record is skipped and counted, never served; the messages
// around it still are.
func TestS3CorruptRecordInOldFileNotServed(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	res := putN(t, s, "S3", 0, 2000)
	maxPhy := s.MaxPhyOffset()
	closeT(t, s)
	bad := res[10]
	if bad.CommitLogOffset >= maxPhy-3*opts.MappedFileSizeCommitLog {
		t.Fatalf("test setup: record %d is not in an old file", bad.CommitLogOffset)
	}
	patchFile(t, clFile(t, s, bad.CommitLogOffset), func(b []byte) []byte {
		b[bad.CommitLogOffset%opts.MappedFileSizeCommitLog+bodyPos+1] ^= 0x20
		return b
	})

	s = openT(t, opts)
	defer closeT(t, s)
	if s.MaxPhyOffset() != maxPhy {
		t.Fatalf("clean restart moved the end of the log: %d, want %d", s.MaxPhyOffset(), maxPhy)
	}
	got := readQueue(t, s, "S3", 0)
	if len(got) != 1999 {
		t.Fatalf("read %d messages, want 1999 (all but the corrupt one)", len(got))
	}
	for _, e := range got {
		if e.QueueOffset == 10 {
			t.Fatal("the corrupt record was served")
		}
	}
	if s.CorruptRecords() == 0 {
		t.Fatal("the corrupt record was not counted")
	}
	if _, err := s.ReadMessage(bad.CommitLogOffset); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ReadMessage of the corrupt record: %v, want not found", err)
	}
}

// TestS3CorruptRecordInScannedRangeTruncates: after a crash with no usable
// checkpoint recovery walks the whole log; a corrupt record in the middle ends
// it there (RocketMQ's policy), with the dropped bytes reported.
func TestS3CorruptRecordInScannedRangeTruncates(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	res := putN(t, s, "S3", 0, 2000)
	crash(t, s)
	bad := res[10]
	patchFile(t, clFile(t, s, bad.CommitLogOffset), func(b []byte) []byte {
		b[bad.CommitLogOffset%opts.MappedFileSizeCommitLog+bodyPos+1] ^= 0x20
		return b
	})

	s = openT(t, opts)
	defer closeT(t, s)
	if s.MaxPhyOffset() != bad.CommitLogOffset {
		t.Fatalf("recovered to %d, want the corrupt record's offset %d", s.MaxPhyOffset(), bad.CommitLogOffset)
	}
	if s.RecoveryDroppedBytes() < opts.MappedFileSizeCommitLog {
		t.Fatalf("RecoveryDroppedBytes %d: the later files with data were not reported", s.RecoveryDroppedBytes())
	}
	if got := readQueue(t, s, "S3", 0); len(got) != 10 || s.MaxOffset("S3", 0) != 10 {
		t.Fatalf("read %d messages, queue max %d; want 10, 10", len(got), s.MaxOffset("S3", 0))
	}
}

// TestS4BadLengthsInTail: a garbage size or magic in the last record ends
// recovery there, without a panic or an allocation sized by the garbage.
func TestS4BadLengthsInTail(t *testing.T) {
	cases := []struct {
		name string
		pos  int // 0: totalSize, 4: magic
		v    uint32
	}{
		{"minus1", 0, 0xFFFFFFFF},
		{"zero", 0, 0},
		{"three", 0, 3},
		{"maxInt32", 0, 1<<31 - 1},
		{"pastFile", 0, 64<<10 + 1},
		{"pastNextRecord", 0, 4096},
		{"badMagic", 4, 0xDEADBEEF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions(t.TempDir())
			s := openT(t, opts)
			res := putN(t, s, "S4", 0, 30)
			last := res[29]
			crash(t, s)
			patchFile(t, clFile(t, s, last.CommitLogOffset), func(b []byte) []byte {
				binary.BigEndian.PutUint32(b[last.CommitLogOffset%opts.MappedFileSizeCommitLog+int64(c.pos):], c.v)
				return b
			})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s = openT(t, opts)
			runtime.ReadMemStats(&after)
			defer closeT(t, s)
			if s.MaxPhyOffset() != last.CommitLogOffset || s.MaxOffset("S4", 0) != 29 {
				t.Fatalf("recovered to %d (queue max %d), want %d (29)", s.MaxPhyOffset(), s.MaxOffset("S4", 0), last.CommitLogOffset)
			}
			// Everything Open allocates, not only the scan, stays below one
			// message's bound (maxMessageSize, 4 MiB by default) plus 64 KiB:
			// nothing was sized by the damaged field.
			if a := after.TotalAlloc - before.TotalAlloc; a > 4<<20+64<<10 {
				t.Fatalf("recovery allocated %d bytes", a)
			}
			if got := readQueue(t, s, "S4", 0); len(got) != 29 {
				t.Fatalf("read %d messages, want 29", len(got))
			}
			putN(t, s, "S4", 0, 1) // the log goes on at the cut
			if got := readQueue(t, s, "S4", 0); len(got) != 30 {
				t.Fatalf("read %d messages after a new put, want 30", len(got))
			}
		})
	}
}

// TestS10SlowFsyncGivesFlushDiskTimeout: under SYNC_FLUSH a put is answered
// only after an fsync covering it; when the fsync takes longer than
// syncFlushTimeout the answer is FLUSH_DISK_TIMEOUT, never PUT_OK.
func TestS10SlowFsyncGivesFlushDiskTimeout(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FlushDiskType = storage.SyncFlush
	opts.SyncFlushTimeout = 100
	s := openT(t, opts)
	defer closeT(t, s)

	release := make(chan struct{})
	var once sync.Once
	hook := func() { once.Do(func() { <-release }) } // the first group commit stalls
	s.beforeSync.Store(&hook)

	const senders = 16
	statuses := make(chan storage.PutStatus, senders)
	for i := range senders {
		go func() {
			statuses <- s.Put(storetest.Msg("S10", 0, fmt.Sprintf("slow-%d", i), "")).Status
		}()
	}
	for range senders {
		if st := <-statuses; st != storage.PutFlushDiskTimeout {
			close(release)
			t.Fatalf("put during a stalled fsync: status %v, want FLUSH_DISK_TIMEOUT", st)
		}
	}
	close(release)

	// Healthy again: every ack comes after an fsync covering its bytes, and
	// concurrent puts share fsyncs.
	flushesBefore := s.flushes.Load()
	var wg sync.WaitGroup
	errs := make(chan error, senders*8)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 8 {
				r := s.Put(storetest.Msg("S10", 0, fmt.Sprintf("ok-%d-%d", i, j), ""))
				if r.Status != storage.PutOK {
					errs <- fmt.Errorf("put: %v %v", r.Status, r.Err)
					return
				}
				if end := r.CommitLogOffset + int64(r.WroteBytes); s.FlushedPhyOffset() < end {
					errs <- fmt.Errorf("PUT_OK for bytes up to %d with only %d fsynced", end, s.FlushedPhyOffset())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := s.flushes.Load() - flushesBefore; n >= senders*8 {
		t.Errorf("%d fsyncs for %d puts: no group commit", n, senders*8)
	}
	// The timed-out messages were stored, only not known durable in time.
	if got := readQueue(t, s, "S10", 0); len(got) != senders*9 {
		t.Fatalf("read %d messages, want %d", len(got), senders*9)
	}
}

// TestS14CrashWhileRolling: a crash around the creation of the next commit-log
// file leaves it missing, empty, short or zero-filled, possibly after the
// previous file was closed with its end-of-file blank record. Recovery accepts
// each, and the log goes on without a gap.
func TestS14CrashWhileRolling(t *testing.T) {
	for _, c := range []string{"missing", "empty", "short", "zeroFilled", "blankThenEmpty"} {
		t.Run(c, func(t *testing.T) {
			opts := testOptions(t.TempDir())
			s := openT(t, opts)
			putN(t, s, "S14", 0, 1000)
			maxPhy := s.MaxPhyOffset()
			crash(t, s)
			fsz := opts.MappedFileSizeCommitLog
			cur := maxPhy - maxPhy%fsz
			next := filepath.Join(opts.CommitLogDir(), fileName(cur+fsz))
			want := maxPhy
			switch c {
			case "missing":
				if err := os.Remove(next); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
			case "empty":
				writeFile(t, next, nil)
			case "short":
				writeFile(t, next, make([]byte, 1000))
			case "zeroFilled":
				writeFile(t, next, make([]byte, fsz))
			case "blankThenEmpty":
				// The roll wrote END_OF_FILE into the current file; the
				// next file was created but never written or synced.
				patchFile(t, filepath.Join(opts.CommitLogDir(), fileName(cur)), func(b []byte) []byte {
					message.PutBlankRecord(b[maxPhy-cur:], int32(fsz-(maxPhy-cur)))
					return b
				})
				writeFile(t, next, nil)
				want = cur + fsz
			}
			s = openT(t, opts)
			defer closeT(t, s)
			if s.MaxPhyOffset() != want {
				t.Fatalf("recovered to %d, want %d", s.MaxPhyOffset(), want)
			}
			// Enough to roll through the next file and into the one after.
			res := putN(t, s, "S14", 0, 1000)
			if res[0].CommitLogOffset != want {
				t.Fatalf("first put after recovery at %d, want %d", res[0].CommitLogOffset, want)
			}
			for i := 1; i < len(res); i++ {
				prevEnd := res[i-1].CommitLogOffset + int64(res[i-1].WroteBytes)
				if o := res[i].CommitLogOffset; o != prevEnd && o != prevEnd-prevEnd%fsz+fsz {
					t.Fatalf("put %d at %d after one ending at %d: gap", i, o, prevEnd)
				}
			}
			if res[len(res)-1].CommitLogOffset < cur+2*fsz {
				t.Fatal("test setup: the puts did not roll past the recreated file")
			}
			if got := readQueue(t, s, "S14", 0); len(got) != 2000 {
				t.Fatalf("read %d messages, want 2000", len(got))
			}
		})
	}
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fuzzSeedStore is a small crashed store (two commit-log files, two queues,
// index on) as a map of path (relative to the store root) to contents.
var fuzzSeed = sync.OnceValues(func() (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "mqd-fuzz-seed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts := testOptions(dir)
	s, err := Open(opts, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	for i := range 500 {
		m := storetest.Msg("FZ", int32(i%2), fmt.Sprintf("fuzz-%d", i), "t")
		if r := s.Put(m); r.Status != storage.PutOK {
			return nil, fmt.Errorf("put: %v %v", r.Status, r.Err)
		}
	}
	// Crash: no clean stop, the abort file stays.
	s.running.Store(false)
	close(s.stopCh)
	s.wg.Wait()
	s.stopped = true
	if err := s.Cleanup(); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	root := opts.StorePathRootDir
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "lock" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[rel] = b
		return nil
	})
	return files, err
})

// FuzzRecover damages bytes of a crashed store's files (commit log, consume
// queues, index, checkpoint) and opens it: Open must not panic, and whatever
// it then serves must be whole records with a matching CRC. The input is a
// list of 4-byte edits: file selector, 16-bit offset, XOR mask (0: zero the
// byte).
func FuzzRecover(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0xFF})                    // first record's size
	f.Add([]byte{0, 0, 4, 0x01})                    // first record's magic
	f.Add([]byte{0, 0x30, 0x00, 0x80, 1, 0, 0, 0})  // mid-log byte, a consume-queue byte
	f.Add([]byte{2, 0, 8, 0x7F, 3, 0x10, 0, 0xFF})  // other files
	f.Add([]byte{0, 0x7F, 0xF0, 0xFF, 0, 0, 88, 1}) // log tail, first body
	seed, err := fuzzSeed()
	if err != nil {
		f.Fatal(err)
	}
	names := make([]string, 0, len(seed))
	for n := range seed {
		names = append(names, n)
	}
	// Commit-log files first so small selectors hit them most.
	sortByCommitLogFirst(names)
	f.Fuzz(func(t *testing.T, edits []byte) {
		opts := testOptions(t.TempDir())
		files := map[string][]byte{}
		for n, b := range seed {
			files[n] = append([]byte(nil), b...)
		}
		for i := 0; i+4 <= len(edits) && i < 4*64; i += 4 {
			b := files[names[int(edits[i])%len(names)]]
			if len(b) == 0 {
				continue
			}
			off := int(binary.BigEndian.Uint16(edits[i+1:])) % len(b)
			if m := edits[i+3]; m == 0 {
				b[off] = 0
			} else {
				b[off] ^= m
			}
		}
		for n, b := range files {
			p := filepath.Join(opts.StorePathRootDir, n)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, b)
		}
		s, err := Open(opts, zerolog.Nop())
		if err != nil {
			return // refusing a damaged store is allowed; panicking is not
		}
		defer closeT(t, s)
		for _, topic := range s.Topics() {
			for _, q := range s.QueueIDs(topic) {
				readQueue(t, s, topic, q)
			}
		}
		for off := s.MinPhyOffset(); off < s.MaxPhyOffset(); {
			rec, err := s.ReadMessage(off)
			if err != nil {
				break
			}
			if _, err := message.CheckRecord(rec, true); err != nil {
				t.Fatalf("ReadMessage(%d) returned a damaged record: %v", off, err)
			}
			off += int64(len(rec))
		}
		if r := s.Put(storetest.Msg("FZ", 0, "after", "")); r.Status != storage.PutOK {
			t.Fatalf("put after recovery: %v %v", r.Status, r.Err)
		}
	})
}

func sortByCommitLogFirst(names []string) {
	rank := func(n string) int {
		if filepath.Dir(n) == "commitlog" {
			return 0
		}
		return 1
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && (rank(names[j]) < rank(names[j-1]) || rank(names[j]) == rank(names[j-1]) && names[j] < names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}
