package commitlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
	"github.com/mqd/mqd/storage/storetest"
)

// Power-loss simulation (docs/faults.md S7, S8). The store writes through
// mmap, so a fault-injecting file layer cannot see its writes; instead the
// test records the fsynced commit-log offset F at a random moment, crashes
// the store, and then destroys every byte a power cut could have lost: from F
// on, each 4 KiB page of the commit log is kept, zeroed or filled with
// garbage at random (pages reach the disk in any order), and consume-queue
// pages past their last flush are zeroed or kept. Recovery must then keep
// every message acknowledged before F was read (under SYNC_FLUSH: every
// acknowledged message, since an ack implies F covers it), serve only whole
// records, and never the same message twice.

type plAck struct {
	queue int32
	qoff  int64
	end   int64
	body  string
}

func TestPowerLossSyncFlush(t *testing.T) { powerLoss(t, storage.SyncFlush, 30) }

func TestPowerLossAsyncFlush(t *testing.T) { powerLoss(t, storage.AsyncFlush, 15) }

// The same with a checkpoint persisted every few milliseconds, so recovery
// mostly starts at the checkpoint's record offset rather than a file start.
func TestPowerLossSyncFlushCheckpoint(t *testing.T) {
	powerLoss(t, storage.SyncFlush, 15, func(o *Options) { o.FlushConsumeQueueThoroughInterval = 10 })
}

func TestPowerLossAsyncFlushCheckpoint(t *testing.T) {
	powerLoss(t, storage.AsyncFlush, 10, func(o *Options) { o.FlushConsumeQueueThoroughInterval = 10 })
}

func powerLoss(t *testing.T, flushType string, iterations int, tweak ...func(*Options)) {
	if testing.Short() {
		iterations = min(iterations, 5)
	}
	opts := testOptions(t.TempDir())
	opts.FlushDiskType = flushType
	opts.FlushIntervalCommitLog = 5
	opts.FlushIntervalConsumeQueue = 5
	opts.FlushCommitLogThoroughInterval = 20
	for _, f := range tweak {
		f(&opts)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	var (
		acked   []plAck // acknowledged before the flushed offset was read, every round
		seq     atomic.Int64
		lostAll int
	)
	s := openT(t, opts)
	for it := range iterations {
		var (
			mu   sync.Mutex
			got  []plAck
			stop atomic.Bool
			wg   sync.WaitGroup
		)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					body := fmt.Sprintf("w%d-%06d", w, seq.Add(1))
					r := s.Put(storetest.Msg("PL", int32(w%4), body, ""))
					if r.Status != storage.PutOK {
						return // the store is crashing
					}
					mu.Lock()
					got = append(got, plAck{int32(w % 4), r.QueueOffset, r.CommitLogOffset + int64(r.WroteBytes), body})
					mu.Unlock()
				}
			}()
		}
		// Let a random amount of traffic through, then cut the power.
		target := 50 + rng.IntN(400)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= target {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if flushType == storage.AsyncFlush {
			// Let the flusher cover part of the traffic, so the cut falls
			// between flushes with acknowledged data on both sides.
			mu.Lock()
			half := got[len(got)/2].end
			mu.Unlock()
			for s.FlushedPhyOffset() < half {
				time.Sleep(time.Millisecond)
			}
		}
		mu.Lock()
		snapshot := append([]plAck(nil), got...)
		mu.Unlock()
		// The power goes once the flushers have stopped, so what they
		// report flushed (and may have recorded in the checkpoint) is what
		// the disk holds.
		stopFlushers(s) // the putters fail from here on
		flushed := s.FlushedPhyOffset()
		cqFlushed := cqFlushedPositions(s)
		crash(t, s)
		stop.Store(true)
		wg.Wait()
		loseUnsynced(t, opts, flushed, cqFlushed, rng)

		s = openT(t, opts)
		lost := 0
		for _, a := range snapshot {
			if flushType == storage.SyncFlush || a.end <= flushed {
				acked = append(acked, a)
			}
		}
		// Acknowledged after the last flush (ASYNC only): may be lost.
		if flushType == storage.AsyncFlush {
			for _, a := range snapshot {
				if a.end > flushed && !present(t, s, a) {
					lost++
				}
			}
			lostAll += lost
		}
		checkPowerLoss(t, s, acked, it)
		if t.Failed() {
			break
		}
	}
	closeT(t, s)
	t.Logf("%s: %d power cuts, %d acknowledged messages verified, %d acknowledged after the last flush lost",
		flushType, iterations, len(acked), lostAll)
}

// cqFlushedPositions returns each consume-queue file's flushed position.
func cqFlushedPositions(s *Store) map[string]int64 {
	out := map[string]int64{}
	s.cqMu.RLock()
	defer s.cqMu.RUnlock()
	for _, cq := range s.cqs {
		for _, mf := range cq.q.snapshot() {
			out[mf.path] = mf.flushed.Load()
		}
	}
	return out
}

// loseUnsynced destroys what a power cut may lose: commit-log pages from the
// flushed offset on, consume-queue pages past their flush.
func loseUnsynced(t *testing.T, opts Options, flushed int64, cqFlushed map[string]int64, rng *rand.Rand) {
	t.Helper()
	size := opts.MappedFileSizeCommitLog
	ents, err := os.ReadDir(opts.CommitLogDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		var from int64
		if _, err := fmt.Sscanf(e.Name(), "%d", &from); err != nil || from+size <= flushed {
			continue
		}
		start := max(flushed-from, 0)
		mangle(t, filepath.Join(opts.CommitLogDir(), e.Name()), start, rng, true)
	}
	for path, pos := range cqFlushed {
		mangle(t, path, pos, rng, false)
	}
}

// mangle keeps, zeroes or (when garbage is set) scrambles each page of the
// file from pos on; the page holding pos keeps its bytes before pos.
func mangle(t *testing.T, path string, pos int64, rng *rand.Rand, garbage bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return
		}
		t.Fatal(err)
	}
	for p := pos; p < int64(len(data)); {
		end := min((p/pageSize+1)*pageSize, int64(len(data)))
		if !bytes.Equal(data[p:end], make([]byte, end-p)) {
			switch rng.IntN(3) {
			case 0: // reached the disk
			case 1:
				clear(data[p:end])
			case 2:
				if garbage {
					for i := p; i < end; i++ {
						data[i] = byte(rng.IntN(256))
					}
				} else {
					clear(data[p:end])
				}
			}
		}
		p = end
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func present(t *testing.T, s *Store, a plAck) bool {
	r := s.GetMessages("PL", a.queue, a.qoff, 1, 0, nil)
	defer r.Release()
	return r.Status == storage.GetFound && len(r.Records) == 1 && string(message.RecordBody(r.Records[0])) == a.body
}

// checkPowerLoss verifies every acknowledged message and the queues' shape.
func checkPowerLoss(t *testing.T, s *Store, acked []plAck, it int) {
	t.Helper()
	for _, a := range acked {
		if !present(t, s, a) {
			t.Errorf("power cut %d: acknowledged %s (queue %d offset %d, end %d) lost", it, a.body, a.queue, a.qoff, a.end)
			return
		}
	}
	seen := map[string]bool{}
	for q := int32(0); q < 4; q++ {
		msgs := storetest.ReadAll(t, s, "PL", q, 0)
		if int64(len(msgs)) != s.MaxOffset("PL", q) {
			t.Errorf("power cut %d: queue %d has %d readable messages, max offset %d", it, q, len(msgs), s.MaxOffset("PL", q))
		}
		for i, m := range msgs {
			if m.QueueOffset != int64(i) || m.CommitLogOffset >= s.MaxPhyOffset() {
				t.Errorf("power cut %d: queue %d entry %d has queue offset %d, commit log offset %d (max %d)", it, q, i, m.QueueOffset, m.CommitLogOffset, s.MaxPhyOffset())
				return
			}
			if seen[string(m.Body)] {
				t.Errorf("power cut %d: %s stored twice", it, m.Body)
			}
			seen[string(m.Body)] = true
		}
	}
	if s.CorruptRecords() != 0 {
		t.Errorf("power cut %d: %d corrupt records served around", it, s.CorruptRecords())
	}
}
