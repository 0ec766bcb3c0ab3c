package ha

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
)

// Sync is SYNC_MASTER: a write counts as replicated once a slave has confirmed
// holding its last byte (RocketMQ GroupTransferService). With no slave
// connected, or the best one further behind than haSlaveFallbehindMax, the
// answer is SLAVE_NOT_AVAILABLE at once; without a confirmation within
// store.syncFlushTimeout it is FLUSH_SLAVE_TIMEOUT. Either way the message is
// stored on the master.
type Sync struct {
	src          Source
	timeout      time.Duration
	fallbehind   int64
	stopped      chan struct{}
	stopOnce     sync.Once
	provisioned  bool
	syncFlushMax int64

	mu      sync.Mutex
	waiting []*waiter   // in arrival order
	waking  bool        // the waker goroutine runs
	timer   *time.Timer // the waker's, reused across its runs
}

// MQDModule implements kernel.Module.
func (*Sync) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: SyncID, New: func() kernel.Module { return new(Sync) }}
}

// Provision reads ha.haSlaveFallbehindMax and store.syncFlushTimeout.
func (s *Sync) Provision(ctx kernel.Context) error {
	o := DefaultOptions()
	if err := ctx.Config.Unmarshal("ha", &o); err != nil {
		return fmt.Errorf("ha options: %w", err)
	}
	s.fallbehind = o.SlaveFallbehindMax
	s.syncFlushMax = ctx.Config.Int64("store.syncFlushTimeout")
	s.provisioned = true
	return nil
}

// Validate checks the settings.
func (s *Sync) Validate() error {
	if !s.provisioned {
		s.fallbehind = DefaultOptions().SlaveFallbehindMax
		s.syncFlushMax = 5000
	}
	if s.syncFlushMax <= 0 {
		return fmt.Errorf("store.syncFlushTimeout must be positive, got %d", s.syncFlushMax)
	}
	if s.fallbehind <= 0 {
		return fmt.Errorf("ha.haSlaveFallbehindMax must be positive, got %d", s.fallbehind)
	}
	s.timeout = time.Duration(s.syncFlushMax) * time.Millisecond
	s.stopped = make(chan struct{})
	return nil
}

// Stop ends the waits in progress: they answer FLUSH_SLAVE_TIMEOUT (the
// broker is going down; the slave may or may not have the bytes).
func (s *Sync) Stop(kernel.StopContext) error {
	if s.stopped != nil {
		s.stopOnce.Do(func() { close(s.stopped) })
	}
	return nil
}

// Role implements Replicator.
func (*Sync) Role() string { return storage.RoleSyncMaster }

// Attach implements Replicator.
func (s *Sync) Attach(src Source) { s.src = src }

var errNoSlave = errors.New("no slave connected")

// Ready implements Replicator: a slave is connected and has confirmed end.
func (s *Sync) Ready(end int64) error {
	if s.src == nil || s.src.SlaveCount() == 0 {
		return errNoSlave
	}
	if acked := s.src.AckedOffset(); acked < end {
		return fmt.Errorf("the slave has confirmed offset %d, %d bytes short of %d", acked, end-acked, end)
	}
	return nil
}

// waiter is one Await in progress; pooled, so that waiting allocates nothing.
type waiter struct {
	end      int64
	deadline time.Time
	done     chan storage.PutStatus // capacity 1: the waker never blocks
}

var waiters = sync.Pool{New: func() any { return &waiter{done: make(chan storage.PutStatus, 1)} }}

// Await implements Replicator. A waiting call registers with the waker (one
// goroutine, running only while calls wait) instead of watching the
// confirmations itself: each confirmation then wakes the calls it satisfies,
// not every call in progress, and one timer serves every deadline.
func (s *Sync) Await(end int64) storage.PutStatus {
	src := s.src
	if src == nil {
		return storage.PutSlaveNotAvailable
	}
	acked := src.AckedOffset()
	if acked >= end {
		return storage.PutOK
	}
	if src.SlaveCount() == 0 || end-acked > s.fallbehind {
		return storage.PutSlaveNotAvailable
	}
	src.Notify()
	w := waiters.Get().(*waiter)
	w.end, w.deadline = end, time.Now().Add(s.timeout)
	s.mu.Lock()
	// Checked under the lock after the waker last looked: a confirmation
	// raised since is either seen here or wakes the waker, which then sees w.
	if src.AckedOffset() >= end {
		s.mu.Unlock()
		waiters.Put(w)
		return storage.PutOK
	}
	select {
	case <-s.stopped:
		s.mu.Unlock()
		waiters.Put(w)
		return storage.PutFlushSlaveTimeout
	default:
	}
	s.waiting = append(s.waiting, w)
	if !s.waking {
		s.waking = true
		go s.wake()
	}
	s.mu.Unlock()
	st := <-w.done
	waiters.Put(w)
	return st
}

// wake answers the waiting calls as confirmations arrive or deadlines pass,
// and returns once none waits. Calls wait in arrival order, hence in deadline
// order (one timeout for all): the first one's deadline is the next to pass.
func (s *Sync) wake() {
	for {
		ch := s.src.AckChanged()
		acked := s.src.AckedOffset()
		now := time.Now()
		s.mu.Lock()
		kept := s.waiting[:0]
		for _, w := range s.waiting {
			switch {
			case acked >= w.end:
				w.done <- storage.PutOK
			case !now.Before(w.deadline):
				w.done <- storage.PutFlushSlaveTimeout
			default:
				kept = append(kept, w)
			}
		}
		clear(s.waiting[len(kept):])
		s.waiting = kept
		if len(kept) == 0 {
			s.waking = false
			s.mu.Unlock()
			return
		}
		next := kept[0].deadline.Sub(now)
		s.mu.Unlock()
		if s.timer == nil {
			s.timer = time.NewTimer(next)
		} else {
			s.timer.Reset(next)
		}
		select {
		case <-ch:
		case <-s.timer.C:
		case <-s.stopped:
			s.mu.Lock()
			for _, w := range s.waiting {
				w.done <- storage.PutFlushSlaveTimeout
			}
			clear(s.waiting)
			s.waiting = s.waiting[:0]
			s.waking = false
			s.timer.Stop()
			s.mu.Unlock()
			return
		}
		s.timer.Stop()
	}
}

var _ Replicator = (*Sync)(nil)
