package ha

import (
	"sync"
	"time"

	"github.com/mqd/mqd/storage"
)

// Waiters answers the sends of a master that wait until their write counts
// as replicated: once Watermark reaches the write's end, PUT_OK; after
// Timeout, FLUSH_SLAVE_TIMEOUT. Every mode that waits for slaves uses it
// (Sync, and the external modes of ha/external), so the waiting itself, the
// part every send pays for, is written once.
//
// Waiting calls register with one waker goroutine, which runs only while
// calls wait, instead of watching the confirmations themselves: each change
// wakes the calls it satisfies, not every call in progress, and one timer
// serves every deadline. Calls wait in arrival order, hence in deadline order
// (one timeout for all). Waiting allocates nothing (pooled waiters).
type Waiters struct {
	// Watermark is the highest commit-log offset that counts as replicated.
	Watermark func() int64
	// Changed returns channels, one of which closes when Watermark may have
	// risen; it is called before Watermark is read (nil channels are
	// ignored).
	Changed func() [3]<-chan struct{}
	Timeout time.Duration

	stopOnce sync.Once
	stopped  chan struct{}

	mu      sync.Mutex
	waiting []*waiter   // in arrival order
	waking  bool        // the waker goroutine runs
	timer   *time.Timer // the waker's, reused across its runs
}

// NewWaiters returns waiters over watermark and changed.
func NewWaiters(watermark func() int64, changed func() [3]<-chan struct{}, timeout time.Duration) *Waiters {
	return &Waiters{Watermark: watermark, Changed: changed, Timeout: timeout, stopped: make(chan struct{})}
}

// waiter is one Wait in progress; pooled, so that waiting allocates nothing.
type waiter struct {
	end      int64
	deadline time.Time
	done     chan storage.PutStatus // capacity 1: the waker never blocks
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan storage.PutStatus, 1)} }}

// Wait returns PUT_OK once Watermark reaches end, FLUSH_SLAVE_TIMEOUT after
// Timeout or once Stop was called.
func (ws *Waiters) Wait(end int64) storage.PutStatus {
	if ws.Watermark() >= end {
		return storage.PutOK
	}
	w := waiterPool.Get().(*waiter)
	w.end, w.deadline = end, time.Now().Add(ws.Timeout)
	ws.mu.Lock()
	// Checked under the lock after the waker last looked: a rise since is
	// either seen here or wakes the waker, which then sees w.
	if ws.Watermark() >= end {
		ws.mu.Unlock()
		waiterPool.Put(w)
		return storage.PutOK
	}
	select {
	case <-ws.stopped:
		ws.mu.Unlock()
		waiterPool.Put(w)
		return storage.PutFlushSlaveTimeout
	default:
	}
	ws.waiting = append(ws.waiting, w)
	if !ws.waking {
		ws.waking = true
		go ws.wake()
	}
	ws.mu.Unlock()
	st := <-w.done
	waiterPool.Put(w)
	return st
}

// Stop answers every wait in progress, and every later one that would
// wait, FLUSH_SLAVE_TIMEOUT (the mode is going away; the slaves may or may
// not have the bytes).
func (ws *Waiters) Stop() {
	ws.stopOnce.Do(func() { close(ws.stopped) })
}

// Waiting is the number of calls waiting now.
func (ws *Waiters) Waiting() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.waiting)
}

func (ws *Waiters) wake() {
	for {
		chs := ws.Changed()
		mark := ws.Watermark()
		now := time.Now()
		ws.mu.Lock()
		kept := ws.waiting[:0]
		for _, w := range ws.waiting {
			switch {
			case mark >= w.end:
				w.done <- storage.PutOK
			case !now.Before(w.deadline):
				w.done <- storage.PutFlushSlaveTimeout
			default:
				kept = append(kept, w)
			}
		}
		clear(ws.waiting[len(kept):])
		ws.waiting = kept
		if len(kept) == 0 {
			ws.waking = false
			ws.mu.Unlock()
			return
		}
		next := kept[0].deadline.Sub(now)
		ws.mu.Unlock()
		if ws.timer == nil {
			ws.timer = time.NewTimer(next)
		} else {
			ws.timer.Reset(next)
		}
		select {
		case <-chs[0]:
		case <-chs[1]:
		case <-chs[2]:
		case <-ws.timer.C:
		case <-ws.stopped:
			ws.mu.Lock()
			for _, w := range ws.waiting {
				w.done <- storage.PutFlushSlaveTimeout
			}
			clear(ws.waiting)
			ws.waiting = ws.waiting[:0]
			ws.waking = false
			ws.timer.Stop()
			ws.mu.Unlock()
			return
		}
		ws.timer.Stop()
	}
}
