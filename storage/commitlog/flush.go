package commitlog

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/mqd/mqd/kernel/fsutil"
	"github.com/mqd/mqd/storage"

	"golang.org/x/sys/unix"
)

// Flushing. ASYNC_FLUSH: a background loop msyncs the commit log every
// flushIntervalCommitLog when at least flushCommitLogLeastPages dirty pages are
// pending, and everything every flushCommitLogThoroughInterval. SYNC_FLUSH: a
// group-commit loop; each put wakes it and waits until flushedWhere covers its
// bytes. One msync covers every put appended since the previous one, so many
// concurrent puts share an fsync. Consume queues flush on their own loop, which
// also persists the checkpoint.

// wakeFlusher nudges the group-commit loop (non-blocking).
func (s *Store) wakeFlusher() {
	select {
	case s.flushWake <- struct{}{}:
	default:
	}
}

var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// waitFlushed blocks until the commit log is fsynced up to end and the records
// below it are dispatched (syncedWhere), or until
// syncFlushTimeout (then the message is stored but not known durable).
func (s *Store) waitFlushed(end int64) storage.PutStatus {
	s.wakeFlusher()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
			timerPool.Put(t)
		}
	}()
	for {
		ch := *s.flushNotify.Load()
		if s.syncedWhere.Load() >= end {
			return storage.PutOK
		}
		if s.fenceErr.Load() != nil {
			return storage.PutFlushDiskTimeout
		}
		if t == nil {
			t = timerPool.Get().(*time.Timer)
			t.Reset(s.syncTimeout)
		}
		select {
		case <-ch:
		case <-t.C:
			if s.syncedWhere.Load() >= end {
				return storage.PutOK
			}
			return storage.PutFlushDiskTimeout
		}
	}
}

// broadcastFlushed wakes every waiter (they re-check flushedWhere).
func (s *Store) broadcastFlushed() {
	ch := make(chan struct{})
	old := s.flushNotify.Swap(&ch)
	close(*old)
}

// flushCommitLog commits the write buffer (if any), msyncs the commit log
// (leastPages as in MappedFile.flush), advances flushedWhere and the
// checkpoint's physic timestamp.
func (s *Store) flushCommitLog(leastPages int) (int64, error) {
	// Read before the commit: the newest record they name is then committed
	// and covered by this flush (a put publishes its bytes before them).
	ts := s.cl.lastPutTs.Load()
	rec := s.cl.lastRecStart.Load()
	if s.cl.writeBuf {
		if _, err := s.commitStaged(); err != nil {
			return s.cl.flushedWhere.Load(), err
		}
	}
	maxOff := s.cl.q.maxOffset()
	var flushed int64
	var err error
	if h := s.syncErr.Load(); h != nil {
		err = (*h)()
	}
	if err == nil {
		flushed, err = s.cl.q.flush(s.cl.flushedWhere.Load(), leastPages)
	}
	if err != nil {
		s.fence(err)
		return s.cl.flushedWhere.Load(), err
	}
	if s.fenceErr.Load() != nil {
		// After a failed fsync the kernel may have dropped the dirty pages
		// and a later fsync succeeds without them (fsyncgate): nothing
		// flushed after the fence counts as durable.
		return s.cl.flushedWhere.Load(), nil
	}
	if prev := s.cl.flushedWhere.Load(); flushed > prev {
		s.cl.flushedWhere.Store(flushed)
		s.flushes.Add(1)
	}
	if flushed >= maxOff && ts > 0 {
		s.cp.setPhysic(ts)
	}
	if rec >= 0 && rec < flushed {
		s.cp.setPhysicRec(rec)
	}
	return flushed, nil
}

// groupCommitLoop is the SYNC_FLUSH flusher.
func (s *Store) groupCommitLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stopCh:
			s.syncFlushOnce()
			return
		case <-s.flushWake:
		case <-tick.C:
		}
		s.syncFlushOnce()
	}
}

func (s *Store) syncFlushOnce() {
	if s.fenceErr.Load() != nil {
		return // waiters were woken when the fence went up; nothing is acknowledged now
	}
	if s.appendEnd() > s.cl.flushedWhere.Load() || s.pendingLen() > 0 {
		// Let putters that are already runnable append first, so one fsync
		// covers more of them (the woken waiters of the previous flush are
		// usually about to put again): yield while appends keep arriving,
		// and for up to 200 µs until as many are queued as the previous fsync
		// covered (steady load: 64 senders went from 46 to 54 per fsync).
		want := s.lastBatch
		deadline := time.Now().Add(200 * time.Microsecond)
		for i, prev := 0, s.appendEnd(); i < 64; i++ {
			runtime.Gosched()
			cur := s.appendEnd()
			if cur == prev && (s.pendingLen() >= want || time.Now().After(deadline)) {
				break
			}
			prev = cur
		}
		s.lastBatch = s.pendingLen()
		if h := s.beforeSync.Load(); h != nil {
			(*h)()
		}
		flushed, err := s.flushCommitLog(0)
		if err == nil && s.fenceErr.Load() == nil {
			s.dispatchPending(flushed)
			// A dispatch that failed fenced the store: the entries it did
			// not write must not be acknowledged.
			if s.fenceErr.Load() == nil {
				s.syncedWhere.Store(flushed)
			}
		}
		s.broadcastFlushed()
	}
}

// appendEnd is the end of the appended bytes, committed or staged.
func (s *Store) appendEnd() int64 {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if f := s.cl.q.last(); f != nil {
		return f.from + f.appendPos()
	}
	return 0
}

func (s *Store) pendingLen() int {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	return len(s.pending)
}

// asyncFlushLoop is the ASYNC_FLUSH flusher (FlushRealTimeService).
func (s *Store) asyncFlushLoop() {
	defer s.wg.Done()
	interval := time.Duration(s.opts.FlushIntervalCommitLog) * time.Millisecond
	thorough := time.Duration(s.opts.FlushCommitLogThoroughInterval) * time.Millisecond
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stopCh:
			return
		case <-tick.C:
		}
		least := s.opts.FlushCommitLogLeastPages
		if time.Since(last) >= thorough {
			least = 0
			last = time.Now()
		}
		if _, err := s.flushCommitLog(least); err != nil {
			s.log.Error().Err(err).Msg("commit log flush failed; store no longer accepts writes")
			return
		}
	}
}

// cqFlushLoop flushes consume queues (FlushConsumeQueueService) and, on the
// thorough rounds, the checkpoint.
func (s *Store) cqFlushLoop() {
	defer s.wg.Done()
	interval := time.Duration(s.opts.FlushIntervalConsumeQueue) * time.Millisecond
	thorough := time.Duration(s.opts.FlushConsumeQueueThoroughInterval) * time.Millisecond
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stopCh:
			return
		case <-tick.C:
		}
		least := s.opts.FlushConsumeQueueLeastPages
		full := time.Since(last) >= thorough
		if full {
			least = 0
			last = time.Now()
		}
		if err := s.flushConsumeQueues(least, full); errors.Is(err, errDirsUnsynced) {
			continue // logged; retried next round
		} else if err != nil {
			s.log.Error().Err(err).Msg("consume queue flush failed; store no longer accepts writes")
			s.fence(err)
			return
		}
	}
}

// errDirsUnsynced: new consume-queue directories could not be synced for
// want of file descriptors. Not a disk failure (nothing is fenced), but
// nothing may count on those entries yet: no checkpoint, and a stop keeps
// the abort marker so the next start recovers as after a crash.
var errDirsUnsynced = errors.New("consume-queue directories not synced (out of file descriptors)")

// manyDirsToSync is the number of consume-queue directories awaiting a sync
// past which flushConsumeQueues syncs the whole file system instead.
const manyDirsToSync = 256

// flushConsumeQueues msyncs every consume queue; with checkpoint set it then
// records the logics timestamp and persists the checkpoint.
func (s *Store) flushConsumeQueues(leastPages int, checkpoint bool) error {
	ts := s.lastDispatchTs.Load()
	rec := s.lastDispatchRec.Load()
	s.cqMu.RLock()
	cqs := make([]*consumeQueue, 0, len(s.cqs))
	for _, cq := range s.cqs {
		cqs = append(cqs, cq)
	}
	s.cqMu.RUnlock()
	if s.cqDirs == nil {
		s.cqDirs = map[string]struct{}{}
	}
	for _, cq := range cqs {
		if err := cq.flush(leastPages); err != nil {
			return err
		}
		cq.q.dirsToSync(s.cqDirs)
	}
	// Entries of consume-queue files created since the last round: the
	// checkpoint below counts on the files being found after a power cut.
	// Out of descriptors is not a disk failure: retried next round, and
	// the checkpoint waits for it.
	outOfFDs := false
	if len(s.cqDirs) > manyDirsToSync {
		// A burst of new queues (thousands of auto-created topics): one
		// syncfs makes every directory entry durable at once, where an
		// fsync per directory took about 150 µs each here.
		err := fsutil.SyncFS(s.opts.ConsumeQueueDir())
		switch {
		case err == nil:
			clear(s.cqDirs)
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
			outOfFDs = true
		default:
			return err
		}
	}
	for dir := range s.cqDirs {
		err := fsutil.SyncDir(dir)
		switch {
		case err == nil, errors.Is(err, os.ErrNotExist): // (a topic deleted since keeps nothing)
			delete(s.cqDirs, dir)
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
			outOfFDs = true
		default:
			return err
		}
	}
	if outOfFDs {
		s.log.Warn().Int("directories", len(s.cqDirs)).Msg("out of file descriptors: consume-queue directories not synced yet, checkpoint deferred")
		return errDirsUnsynced
	}
	if checkpoint {
		if err := s.flushIndex(); err != nil {
			return err
		}
		if ts > 0 {
			s.cp.setLogics(ts)
		}
		if rec >= 0 {
			s.cp.setLogicsRec(rec)
		}
		return s.cp.flush()
	}
	return nil
}
