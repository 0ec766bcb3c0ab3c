package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Long-polling limits.
const (
	// pullHoldRecheckInterval is how often parked pulls are checked against the
	// store's max offsets, catching wake-ups the arrival listener missed (Java: 5 s).
	pullHoldRecheckInterval = 5 * time.Second
	// maxPullHold caps a pull's suspension: the Go client gives a pull 30 s and
	// asks for 20 s; Java's client asks for 15 s.
	maxPullHold = 25 * time.Second
)

// holdKey names a queue with parked pulls; a struct key keeps lookups free of
// allocation (Java builds "topic@queueId" strings).
type holdKey struct {
	topic   string
	queueID int32
}

// pullWaiter is one parked pull. The handler goroutine that parked it blocks on
// wake; the service sends on it at most once.
type pullWaiter struct {
	key    holdKey
	offset int64         // the pull's offset: any max offset beyond it wakes the pull
	wake   chan struct{} // capacity 1
	parked bool          // guarded by PullHoldService.mu
}

// holdOutcome says why a parked pull resumed.
type holdOutcome int

const (
	holdWoken      holdOutcome = iota // a message arrived: pull again
	holdExpired                       // the suspension ran out: pull once more and answer
	holdShutdown                      // the broker is stopping: answer PULL_NOT_FOUND now
	holdConnClosed                    // the consumer is gone: answer nothing
)

// PullHoldService parks pulls that found nothing (RocketMQ's
// PullRequestHoldService) until a message arrives in their queue, their
// suspension ends or the broker stops. A parked pull is its handler goroutine
// blocked in hold; the remoting server gives every request its own goroutine,
// so parking costs one goroutine and one timer and no response is written
// until the pull resumes.
type PullHoldService struct {
	b *Broker

	mu      sync.Mutex
	waiting map[holdKey][]*pullWaiter
	// count is the number of parked pulls, read without the lock so that
	// NotifyArrival, called for every dispatched message, costs one atomic load
	// while nobody waits.
	count atomic.Int64
	// holding counts every pull inside hold, short polls included.
	holding atomic.Int64

	closed    chan struct{}
	closeOnce sync.Once
	started   atomic.Bool
	done      chan struct{}
}

func newPullHoldService(b *Broker) *PullHoldService {
	return &PullHoldService{
		b:       b,
		waiting: make(map[holdKey][]*pullWaiter),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Start runs the periodic re-check.
func (s *PullHoldService) Start() {
	if !s.started.CompareAndSwap(false, true) {
		return
	}
	go s.loop()
}

// Shutdown answers every parked pull at once (PULL_NOT_FOUND with fresh
// offsets, written by the parked handlers themselves) and refuses to park new
// ones, so the server's drain does not wait out suspensions.
func (s *PullHoldService) Shutdown() {
	s.closeOnce.Do(func() { close(s.closed) })
	if s.started.Load() {
		<-s.done
	}
}

// NotifyArrival is the store's arrival listener: messages up to maxOffset
// (exclusive) are readable in the queue. It wakes the pulls parked there at a
// lower offset.
func (s *PullHoldService) NotifyArrival(topic string, queueID int32, maxOffset int64) {
	if s.count.Load() == 0 {
		return
	}
	key := holdKey{topic, queueID}
	s.mu.Lock()
	ws := s.waiting[key]
	if len(ws) == 0 {
		s.mu.Unlock()
		return
	}
	kept := ws[:0]
	for _, w := range ws {
		if maxOffset > w.offset {
			w.parked = false
			s.count.Add(-1)
			w.wake <- struct{}{} // capacity 1 and sent once: never blocks
		} else {
			kept = append(kept, w)
		}
	}
	clear(ws[len(kept):]) // drop references to woken waiters
	if len(kept) == 0 {
		delete(s.waiting, key)
	} else {
		s.waiting[key] = kept
	}
	s.mu.Unlock()
}

// hold parks a pull of (topic, queueID) at offset for up to timeout. With
// arrivals false (short polling) only the timeout, shutdown or the connection
// end it, as Java does when longPollingEnable is off.
func (s *PullHoldService) hold(topic string, queueID int32, offset int64, timeout time.Duration, arrivals bool, connDone <-chan struct{}) holdOutcome {
	select {
	case <-s.closed:
		return holdShutdown
	default:
	}
	s.holding.Add(1)
	defer s.holding.Add(-1)
	var w *pullWaiter
	if arrivals {
		w = &pullWaiter{key: holdKey{topic, queueID}, offset: offset, wake: make(chan struct{}, 1)}
		if !s.park(w) {
			return holdShutdown
		}
		// A message may have arrived between the pull's read and park: its
		// notification found nobody, so look once more now that we are visible.
		if s.b.store.MaxOffset(topic, queueID) > offset {
			s.unpark(w)
			return holdWoken
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var wake chan struct{}
	if w != nil {
		wake = w.wake
	}
	select {
	case <-wake:
		return holdWoken
	case <-t.C:
		s.unpark(w)
		return holdExpired
	case <-s.closed:
		s.unpark(w)
		return holdShutdown
	case <-connDone:
		s.unpark(w)
		return holdConnClosed
	}
}

func (s *PullHoldService) park(w *pullWaiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	s.waiting[w.key] = append(s.waiting[w.key], w)
	w.parked = true
	s.count.Add(1)
	return true
}

// unpark removes w if no wake-up took it out already.
func (s *PullHoldService) unpark(w *pullWaiter) {
	if w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.parked {
		return
	}
	w.parked = false
	s.count.Add(-1)
	ws := s.waiting[w.key]
	for i, x := range ws {
		if x == w {
			last := len(ws) - 1
			ws[i] = ws[last]
			ws[last] = nil
			ws = ws[:last]
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiting, w.key)
	} else {
		s.waiting[w.key] = ws
	}
}

// Parked returns the number of parked pulls.
func (s *PullHoldService) Parked() int { return int(s.holding.Load()) }

func (s *PullHoldService) loop() {
	defer close(s.done)
	t := time.NewTicker(pullHoldRecheckInterval)
	defer t.Stop()
	var keys []holdKey
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		if s.count.Load() == 0 {
			continue
		}
		keys = keys[:0]
		s.mu.Lock()
		for k := range s.waiting {
			keys = append(keys, k)
		}
		s.mu.Unlock()
		for _, k := range keys {
			s.NotifyArrival(k.topic, k.queueID, s.b.store.MaxOffset(k.topic, k.queueID))
		}
	}
}

// ParkedPulls is how many pulls are parked waiting for messages (operators'
// status and tests that must know a pull is parked before they send).
func (b *Broker) ParkedPulls() int { return b.pullHold.Parked() }
