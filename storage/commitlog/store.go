// Package commitlog is the native message store, module "storage.commitlog":
// RocketMQ's on-disk layout (memory-mapped commit log files named by start
// offset, 20-byte consume-queue entries per topic and queue, checkpoint and abort
// files), its put path (encode outside the put lock, patch offsets and store time
// inside), dispatch to consume queues, ASYNC_FLUSH and SYNC_FLUSH (group commit),
// clean and crash recovery, and the read path used by pulls. Files are split by
// subsystem: mappedfile, commitlog (put path), consumequeue, queueentries,
// dispatch, flush, writebuffer, warm, checkpoint, recovery, read, verify,
// index, clean (retention, disk space), replica (storage.Replicable) and store
// (lifecycle). docs/store.md describes the format and the mechanisms.
package commitlog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/kernel/fsutil"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
)

// ModuleID is the kernel ID of this engine.
const ModuleID = "storage.commitlog"

func init() { kernel.RegisterModule(new(Store)) }

var errNotRunning = errors.New("store is not running")

// Store is the commit-log message store. It is a kernel module (Provision reads
// store.*, Start opens and recovers, Stop flushes and closes cleanly) and a
// storage.Store. Open and Close drive the same lifecycle without a kernel.
type Store struct {
	opts        Options
	log         zerolog.Logger
	cqFileSize  int64
	syncFlush   bool
	syncTimeout time.Duration
	commitMu    sync.Mutex // write buffer commits (writebuffer.go)
	lastBatch   int        // group commit loop: entries its last fsync covered
	warmWake    chan struct{}

	lockFile *os.File
	cl       *commitLog
	cp       *checkpoint
	idx      *indexService // nil when messageIndexEnable is off
	clean    cleanState
	corrupt  corruption

	recoveryDropped atomic.Int64 // bytes the last recovery cut off (estimate)

	cqMu sync.RWMutex
	cqs  map[queueKey]*consumeQueue

	putMu       sync.Mutex
	queueTable  map[queueKey]*queueState // per queue: next offset, consume queue (put lock)
	lastStoreTs int64                    // put lock
	lockBegin   atomic.Int64             // ms when the put lock was taken, 0 when free

	pendMu      sync.Mutex
	pending     []dispatchReq
	dispatchMu  sync.Mutex
	dispatchBuf []dispatchReq // dispatch lock

	listener       atomic.Pointer[storage.ArrivalListener]
	lastDispatchTs atomic.Int64
	deliveryTimer  atomic.Pointer[storage.DeliveryTimer] // the broker's rule for delivery-time tags codes

	// lastDispatchRec is the offset of the newest record with a consume-queue
	// entry (-1: none since open); entries are written in log order.
	lastDispatchRec atomic.Int64

	// cqDirs are consume-queue directories whose new entries still need a
	// sync (flushConsumeQueues only, which never runs concurrently).
	cqDirs map[string]struct{}

	flushWake   chan struct{}
	syncedWhere atomic.Int64 // SYNC_FLUSH: fsynced and dispatched up to here
	flushNotify atomic.Pointer[chan struct{}]

	running  atomic.Bool
	fenceErr atomic.Pointer[error]
	stopCh   chan struct{}
	wg       sync.WaitGroup
	started  bool
	stopped  bool

	repl replicaState // slave reput position (replica.go, put lock)

	flushes  atomic.Int64 // commit-log flushes that advanced flushedWhere
	memBytes int64        // physical RAM, for the in-memory/in-disk read limits

	// beforeSync, when set, runs before each SYNC_FLUSH group commit: the
	// only way to make an fsync slow on purpose (tests of syncFlushTimeout).
	beforeSync atomic.Pointer[func()]
	// syncErr, when set, runs before each commit-log flush and an error it
	// returns is taken as the flush's (an fsync failing with EIO, which
	// this file layer cannot provoke otherwise).
	syncErr atomic.Pointer[func() error]
}

// MQDModule implements kernel.Module.
func (*Store) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: ModuleID, New: func() kernel.Module { return new(Store) }}
}

// Provision reads the store.* configuration.
func (s *Store) Provision(ctx kernel.Context) error {
	s.opts = DefaultOptions()
	if err := ctx.Config.Unmarshal("store", &s.opts); err != nil {
		return fmt.Errorf("store options: %w", err)
	}
	s.log = ctx.Logger
	return nil
}

// Validate normalizes and checks the options.
func (s *Store) Validate() error {
	s.opts.Normalize()
	return s.opts.Validate()
}

// CommitLogDir and ConsumeQueueDir are where this engine keeps its files
// (the broker's runtime info reports their disks' usage).
func (s *Store) CommitLogDir() string { return s.opts.CommitLogDir() }

// ConsumeQueueDir is where the consume queues live.
func (s *Store) ConsumeQueueDir() string { return s.opts.ConsumeQueueDir() }

// Options returns the store's options.
func (s *Store) Options() Options { return s.opts }

// Capabilities implements kernel.Capable.
func (*Store) Capabilities() []string {
	return []string{"replication", "sync-flush", "group-commit", "index", "rocketmq-layout"}
}

// Open creates, recovers and starts a store without a kernel; a delivery
// timer given is set before recovery dispatches anything.
func Open(opts Options, log zerolog.Logger, timer ...storage.DeliveryTimer) (*Store, error) {
	s := &Store{opts: opts, log: log}
	for _, t := range timer {
		s.SetDeliveryTimer(t)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		_ = s.Cleanup()
		return nil, err
	}
	return s, nil
}

// Close stops the store cleanly and releases its files.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(s.Stop(ctx), s.Cleanup())
}

// Start takes the store lock, loads and recovers the files, creates the abort
// marker and starts the flushers.
func (s *Store) Start() error {
	if s.started {
		return errors.New("store already started")
	}
	s.started = true
	s.cqFileSize = s.opts.MappedFileSizeConsumeQueue
	s.syncFlush = s.opts.IsSyncFlush()
	s.syncTimeout = time.Duration(s.opts.SyncFlushTimeout) * time.Millisecond
	s.queueTable = map[queueKey]*queueState{}
	s.flushWake = make(chan struct{}, 1)
	ch := make(chan struct{})
	s.flushNotify.Store(&ch)
	s.stopCh = make(chan struct{})
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		s.memBytes = int64(si.Totalram) * int64(si.Unit)
	}
	if s.memBytes <= 0 {
		s.memBytes = 8 << 30
	}

	root := s.opts.StorePathRootDir
	for _, d := range []string{root, s.opts.CommitLogDir(), s.opts.ConsumeQueueDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := s.lock(); err != nil {
		return err
	}
	_, err := os.Stat(s.opts.AbortPath())
	lastExitOK := errors.Is(err, os.ErrNotExist)

	fq, err := loadFileQueue(s.opts.CommitLogDir(), s.opts.MappedFileSizeCommitLog, false)
	if err != nil {
		return fmt.Errorf("load commit log: %w", err)
	}
	s.cl = &commitLog{q: fq, fileSize: s.opts.MappedFileSizeCommitLog, writeBuf: s.opts.UsesWriteBuffer(),
		warn: func(err error) {
			s.log.Warn().Err(err).Msg("no write buffer for this commit-log file: its appends go through the mapping (slower SYNC_FLUSH fsyncs, same durability)")
		}}
	s.cl.lastRecStart.Store(-1)
	s.lastDispatchRec.Store(-1)
	if s.cqs, err = loadConsumeQueues(s.opts.ConsumeQueueDir(), s.cqFileSize); err != nil {
		return fmt.Errorf("load consume queues: %w", err)
	}
	if s.cp, err = openCheckpoint(s.opts.CheckpointPath()); err != nil {
		return fmt.Errorf("open checkpoint: %w", err)
	}
	began := time.Now()
	if err := s.recover(lastExitOK); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if err := s.openIndex(lastExitOK); err != nil {
		return fmt.Errorf("load index: %w", err)
	}
	s.log.Info().Bool("cleanShutdown", lastExitOK).Int64("minPhyOffset", s.MinPhyOffset()).
		Int64("maxPhyOffset", s.MaxPhyOffset()).Int("queues", len(s.cqs)).
		Dur("took", time.Since(began)).Str("dir", root).Msg("message store recovered")

	if last := s.cl.q.last(); last != nil {
		s.cl.attachWriteBuffer(last)
	}

	if err := createAbort(s.opts.AbortPath()); err != nil {
		return err
	}
	s.running.Store(true)
	if s.syncFlush {
		s.wg.Add(1)
		go s.groupCommitLoop()
	} else {
		s.wg.Add(1)
		go s.asyncFlushLoop()
	}
	s.warmWake = make(chan struct{}, 1)
	if !s.cl.writeBuf {
		s.wg.Add(1)
		go s.warmLoop()
		s.wakeWarmer()
	}
	s.wg.Add(1)
	go s.cqFlushLoop()
	if s.idx != nil {
		s.wg.Add(1)
		go s.indexLoop()
	}
	s.startCleaner()
	return nil
}

func createAbort(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("create abort file: %w", err)
	}
	f.Close()
	return fsutil.SyncDir(filepath.Dir(path))
}

// lock takes an exclusive flock on <root>/lock so two processes cannot share
// the store.
func (s *Store) lock() error {
	f, err := os.OpenFile(s.opts.LockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("store %s is in use by another process (lock file %s)", s.opts.StorePathRootDir, s.opts.LockPath())
		}
		return fmt.Errorf("lock %s: %w", s.opts.LockPath(), err)
	}
	s.lockFile = f
	return nil
}

// Stop refuses new puts, dispatches and flushes everything, writes the
// checkpoint and removes the abort marker (kept if a write error fenced the
// store, so the next start recovers as after a crash).
func (s *Store) Stop(ctx kernel.StopContext) error {
	if !s.started || s.stopped {
		return nil
	}
	s.stopped = true
	s.running.Store(false)
	s.putMu.Lock() // wait for appends in progress
	s.putMu.Unlock()
	close(s.stopCh)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("store stop: flushers did not finish: %w", ctx.Err())
	}
	var errs []error
	if _, err := s.flushCommitLog(0); err != nil {
		errs = append(errs, err)
	}
	s.dispatchPending(s.cl.q.maxOffset())
	s.syncedWhere.Store(s.cl.flushedWhere.Load())
	s.broadcastFlushed()
	if len(errs) == 0 && s.fenceErr.Load() == nil && s.cl.flushedWhere.Load() == s.cl.q.maxOffset() {
		// Everything is flushed and dispatched: the next start may trust
		// the log up to here (recovery.go, cleanStart).
		s.cp.setCleanEnd(s.cl.q.maxOffset())
	}
	if err := s.flushConsumeQueues(0, true); err != nil {
		errs = append(errs, err)
	}
	if p := s.fenceErr.Load(); p != nil {
		errs = append(errs, *p)
	}
	if len(errs) == 0 {
		if err := os.Remove(s.opts.AbortPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		} else {
			_ = fsutil.SyncDir(filepath.Dir(s.opts.AbortPath()))
		}
	}
	return errors.Join(errs...)
}

// Cleanup unmaps and closes every file and releases the store lock. Mappings
// that readers still hold stay until they are released.
func (s *Store) Cleanup() error {
	s.running.Store(false)
	if s.cl != nil {
		s.putMu.Lock()
		s.cl.closeNext()
		s.putMu.Unlock()
		s.cl.q.close()
	}
	s.cqMu.Lock()
	for _, cq := range s.cqs {
		cq.dropReserved()
		cq.q.close()
	}
	s.cqs = nil
	s.cqMu.Unlock()
	s.closeIndex()
	var err error
	if s.cp != nil {
		err = s.cp.close()
		s.cp = nil
	}
	if s.lockFile != nil {
		_ = unix.Flock(int(s.lockFile.Fd()), unix.LOCK_UN)
		s.lockFile.Close()
		s.lockFile = nil
	}
	return err
}

// fence stops accepting writes after a write, flush or dispatch error: after a
// failed fsync the kernel may have dropped dirty pages, so nothing more can be
// acknowledged as durable until a restart recovers from disk.
func (s *Store) fence(err error) {
	err = fmt.Errorf("message store fenced (no writes until a restart recovers from disk): %w", err)
	if s.fenceErr.CompareAndSwap(nil, &err) {
		s.log.Error().Err(err).Msg("message store fenced: no more writes until restart")
		// Puts waiting for a flush answer now (FLUSH_DISK_TIMEOUT) rather
		// than at syncFlushTimeout: the flusher no longer runs.
		if s.flushNotify.Load() != nil {
			s.broadcastFlushed()
		}
	}
}

// checkWritable runs the put pre-checks of DefaultMessageStore.asyncPutMessage.
func (s *Store) checkWritable() (storage.PutStatus, error) {
	if !s.running.Load() {
		return storage.PutServiceNotAvailable, errNotRunning
	}
	if s.opts.IsSlave() {
		return storage.PutServiceNotAvailable, errors.New("store of a SLAVE broker does not accept writes")
	}
	if p := s.fenceErr.Load(); p != nil {
		return storage.PutServiceNotAvailable, *p
	}
	if s.clean.diskFull.Load() {
		return storage.PutDiskFull, errDiskFull
	}
	if begin := s.lockBegin.Load(); begin != 0 && s.opts.OSPageCacheBusyTimeOutMills > 0 {
		if held := time.Now().UnixMilli() - begin; held > s.opts.OSPageCacheBusyTimeOutMills && held < 10000000 {
			return storage.PutOSPageCacheBusy, fmt.Errorf("put lock held for %d ms", held)
		}
	}
	return storage.PutOK, nil
}

// MinPhyOffset implements storage.Store.
func (s *Store) MinPhyOffset() int64 {
	if s.cl == nil {
		return 0
	}
	return s.cl.q.minOffset()
}

// MaxPhyOffset implements storage.Store.
func (s *Store) MaxPhyOffset() int64 {
	if s.cl == nil {
		return 0
	}
	return s.cl.q.maxOffset()
}

// FlushedPhyOffset is the commit-log offset below which data is fsynced.
func (s *Store) FlushedPhyOffset() int64 { return s.cl.flushedWhere.Load() }

// QueueIDs implements storage.Store.
func (s *Store) QueueIDs(topic string) []int32 {
	s.cqMu.RLock()
	var ids []int32
	for k := range s.cqs {
		if k.topic == topic {
			ids = append(ids, k.queueID)
		}
	}
	s.cqMu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Topics lists the topics that have consume queues.
func (s *Store) Topics() []string {
	s.cqMu.RLock()
	seen := map[string]bool{}
	for k := range s.cqs {
		seen[k.topic] = true
	}
	s.cqMu.RUnlock()
	return slices.Sorted(maps.Keys(seen))
}

// DeleteTopics implements storage.Store: it drops the topics' consume queues
// and their directories (the records stay in the commit log until retention).
func (s *Store) DeleteTopics(topics ...string) error {
	for _, t := range topics {
		if err := checkTopicPath(t); err != nil {
			return err
		}
	}
	var errs []error
	for _, t := range topics {
		// Hold both locks so no put or dispatch recreates the queue half-way.
		s.putMu.Lock()
		s.dispatchMu.Lock()
		s.cqMu.Lock()
		for k, cq := range s.cqs {
			if k.topic == t {
				delete(s.cqs, k)
				cq.dropReserved()
				cq.q.mu.Lock()
				files := cq.q.files
				cq.q.files = nil
				cq.q.mu.Unlock()
				for _, f := range files {
					f.destroy(false) // unlinked by RemoveAll below; a reader may still map it
				}
			}
		}
		for k := range s.queueTable {
			if k.topic == t {
				delete(s.queueTable, k)
			}
		}
		s.pendMu.Lock()
		kept := s.pending[:0]
		for _, d := range s.pending {
			if d.cq.topic != t {
				kept = append(kept, d)
			}
		}
		clear(s.pending[len(kept):])
		s.pending = kept
		s.pendMu.Unlock()
		if err := os.RemoveAll(filepath.Join(s.opts.ConsumeQueueDir(), t)); err != nil {
			errs = append(errs, err)
		}
		s.cqMu.Unlock()
		s.dispatchMu.Unlock()
		s.putMu.Unlock()
	}
	return errors.Join(errs...)
}

var _ storage.Store = (*Store)(nil)
