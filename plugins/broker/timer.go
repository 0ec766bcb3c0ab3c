package broker

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Timer messages: delivery at an arbitrary time (RocketMQ 5's TIMER_DELIVER_MS,
// TIMER_DELAY_SEC, TIMER_DELAY_MS).
//
// Storage. applySchedule (schedule.go) stores such a message in the internal
// topic rmq_sys_wheel_timer, queue 0, with its absolute delivery time in
// TIMER_OUT_MS and its destination in REAL_TOPIC / REAL_QID. The store indexes
// the topic with the delivery time as consume-queue tags code (also when it
// rebuilds the queue after a crash), so the timer queue itself is the durable
// list of timers: nothing else is written per message.
//
// Memory. One goroutine owns a binary min-heap of (deliverAt, commitLogOffset)
// pairs, 16 bytes per pending timer (about 16-32 MB per million with the slice's
// growth slack, see BenchmarkTimerScheduleMemory), O(log n) to add or take.
// It reads new timer-queue entries as the store reports them (arrival
// listener), sleeps until the earliest deliverAt, and then re-stores every due
// message to its real topic (deliverScheduled), earliest first.
//
// Progress and restart. Deliveries leave the queue out of order, so one offset
// cannot say what is done. The progress (config/timerProgress.json) is three
// numbers that can:
//   - enqueueOffset E: every timer-queue entry below E is in the heap or delivered;
//   - watermark T: among the entries below E, exactly those with
//     deliverAt <= T are delivered (the heap is drained up to a cut-off time
//     before T moves to it, and an entry is only taken from the heap when due);
//   - scanOffset S: no pending entry lies below S (the smallest offset in the heap).
//
// At start the heap is rebuilt from the queue entries in [S, E) whose
// deliverAt is after T, and reading continues at E. The progress is written
// every timerFlushIntervalMs when it changed, and at shutdown, so a clean
// restart neither loses nor repeats a timer; after a crash the deliveries made
// since the last write are made again (at least once), none is lost. A
// delivery is written with the store's durability (it waits for the flush
// under SYNC_FLUSH) before the progress can count it.
//
// Limits: timerMaxDelaySec bounds how far ahead a delivery may be (3 days, as
// RocketMQ 5); a record the commit-log retention removed before its time comes
// is reported and lost, so fileReservedTime must exceed timerMaxDelaySec.

const (
	timerTopic        = "rmq_sys_wheel_timer"
	timerProgressFile = "timerProgress.json"
	timerReadBatch    = 1024
)

// timerEntry is one pending timer.
type timerEntry struct {
	at  int64 // delivery time, ms
	phy int64 // commit-log offset of the timer-queue record
}

// timerHeap is a binary min-heap by delivery time (written out rather than
// through container/heap, whose interface boxing costs an allocation per push).
type timerHeap []timerEntry

func (h *timerHeap) push(e timerEntry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= e.at {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = e
}

func (h *timerHeap) pop() timerEntry {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && s[c+1].at < s[c].at {
			c++
		}
		if last.at <= s[c].at {
			break
		}
		s[i] = s[c]
		i = c
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// timerProgress is the persisted state (see the design comment).
type timerProgress struct {
	EnqueueOffset int64 `json:"enqueueOffset"`
	Watermark     int64 `json:"watermark"`
	ScanOffset    int64 `json:"scanOffset"`
}

// timerService owns the timer heap; everything but the counters and the
// progress snapshot is touched by its goroutine only.
type timerService struct {
	b      *Broker
	reader storage.Store
	path   string

	heap      timerHeap
	enqueued  int64 // E
	watermark int64 // T
	buf       []storage.QueueEntry
	failing   bool // the last delivery failed (logged once per streak)
	dirty     bool // entries were read or delivered since the progress was written

	pending atomic.Int64 // heap size, for runtime info
	wakeCh  chan struct{}
	done    chan struct{}
	started bool

	saveMu sync.Mutex
	saved  timerProgress
}

func newTimerService(b *Broker, reader storage.Store) *timerService {
	return &timerService{
		b:      b,
		reader: reader,
		path:   filepath.Join(b.configDir, timerProgressFile),
		wakeCh: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// kick wakes the timer goroutine (arrival listener; never blocks).
func (t *timerService) kick() {
	select {
	case t.wakeCh <- struct{}{}:
	default:
	}
}

// load reads the progress and rebuilds the heap from the timer queue.
func (t *timerService) load() error {
	var p timerProgress
	if _, err := t.b.loadMeta(t.path, "timer progress", func(data []byte) error {
		p = timerProgress{}
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		if p.EnqueueOffset < 0 || p.ScanOffset < 0 || p.ScanOffset > p.EnqueueOffset {
			return fmt.Errorf("inconsistent timer progress %+v", p)
		}
		return nil
	}); err != nil {
		return err
	}
	t.saved = p
	if maxOff := t.b.store.MaxOffset(timerTopic, 0); p.EnqueueOffset > maxOff {
		// The queue lost entries (store rebuilt): what is left is re-read.
		t.b.log.Warn().Int64("enqueueOffset", p.EnqueueOffset).Int64("queueMax", maxOff).
			Msg("timer progress beyond the timer queue, corrected")
		p.EnqueueOffset = maxOff
		p.ScanOffset = min(p.ScanOffset, maxOff)
	}
	t.enqueued, t.watermark = p.EnqueueOffset, p.Watermark
	began := time.Now()
	for off := p.ScanOffset; off < p.EnqueueOffset; {
		var next int64
		t.buf, next = t.reader.ReadQueueEntries(timerTopic, 0, off, min(timerReadBatch, int(p.EnqueueOffset-off)), t.buf[:0])
		for _, e := range t.buf {
			if e.Offset < p.EnqueueOffset && e.TagsCode > p.Watermark {
				t.heap.push(timerEntry{at: e.TagsCode, phy: e.CommitLogOffset})
			}
		}
		if next <= off {
			break
		}
		off = next
	}
	t.pending.Store(int64(len(t.heap)))
	if len(t.heap) > 0 || p.EnqueueOffset > 0 {
		t.b.log.Info().Int("pending", len(t.heap)).Int64("enqueueOffset", p.EnqueueOffset).
			Dur("took", time.Since(began)).Msg("timer messages loaded")
	}
	return nil
}

func (t *timerService) start() {
	t.started = true
	go t.run()
}

// stop waits for the goroutine (b.stop is closed) and writes the progress.
func (t *timerService) stop() {
	if !t.started {
		return
	}
	<-t.done
	if err := t.persist(); err != nil {
		t.b.log.Error().Err(err).Msg("persist timer progress")
	}
}

func (t *timerService) run() {
	defer close(t.done)
	flushEvery := time.Duration(t.b.cfg.TimerFlushIntervalMs) * time.Millisecond
	lastFlush := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-t.b.stop:
			return
		case <-t.wakeCh:
		case <-timer.C:
		}
		retry := !t.enqueue()
		if !retry {
			retry = !t.deliverDue()
		}
		t.pending.Store(int64(len(t.heap)))
		if t.dirty && time.Since(lastFlush) >= flushEvery {
			if err := t.persist(); err != nil {
				t.b.log.Error().Err(err).Msg("persist timer progress")
			}
			lastFlush = time.Now()
		}
		wait := time.Duration(-1)
		switch {
		case retry:
			wait = scheduleRetryDelay
		case len(t.heap) > 0:
			wait = max(time.Duration(t.heap[0].at-time.Now().UnixMilli())*time.Millisecond, time.Millisecond)
		}
		if t.dirty {
			// Come back to write the progress even if nothing else happens.
			if left := max(flushEvery-time.Since(lastFlush), time.Millisecond); wait < 0 || left < wait {
				wait = left
			}
		}
		timer.Stop()
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// enqueue moves new timer-queue entries into the heap. It returns false when
// it must be retried (stopping).
func (t *timerService) enqueue() bool {
	for {
		select {
		case <-t.b.stop:
			return false
		default:
		}
		var next int64
		t.buf, next = t.reader.ReadQueueEntries(timerTopic, 0, t.enqueued, timerReadBatch, t.buf[:0])
		for _, e := range t.buf {
			t.heap.push(timerEntry{at: e.TagsCode, phy: e.CommitLogOffset})
		}
		if next <= t.enqueued {
			return true
		}
		t.enqueued = next
		t.dirty = true
	}
}

// deliverDue delivers every timer due now, earliest first, then moves the
// watermark to now. It returns false when a put failed (to be retried).
func (t *timerService) deliverDue() bool {
	now := time.Now().UnixMilli()
	for len(t.heap) > 0 && t.heap[0].at <= now {
		select {
		case <-t.b.stop:
			return true
		default:
		}
		e := t.heap[0]
		if !t.b.deliverScheduled(e.phy, 0, !t.failing) {
			t.failing = true
			return false
		}
		t.failing = false
		t.dirty = true
		t.heap.pop()
	}
	if now > t.watermark && (len(t.heap) == 0 || t.heap[0].at > now) {
		t.watermark = now
	}
	return true
}

// progress computes the persistable state; the watermark is lowered below any
// entry still pending at or before it (a late arrival, or a failed put), which
// keeps "delivered iff deliverAt <= T" true.
func (t *timerService) progress() timerProgress {
	p := timerProgress{EnqueueOffset: t.enqueued, Watermark: t.watermark, ScanOffset: t.enqueued}
	if len(t.heap) == 0 {
		return p
	}
	if t.heap[0].at <= p.Watermark {
		p.Watermark = t.heap[0].at - 1
	}
	minPhy := t.heap[0].phy
	for _, e := range t.heap {
		minPhy = min(minPhy, e.phy)
	}
	// Entries of one queue are in commit-log order: the record of the
	// smallest offset gives the queue offset to scan from.
	if rec, err := t.b.store.ReadMessage(minPhy); err == nil {
		p.ScanOffset = min(message.RecordQueueOffset(rec), t.enqueued)
	} else {
		p.ScanOffset = t.saved.ScanOffset // the record is gone; keep the older, safe bound
	}
	return p
}

// persist writes the progress if it changed. Called by the goroutine, and by
// stop after the goroutine has ended.
func (t *timerService) persist() error {
	p := t.progress()
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	if p == t.saved {
		t.dirty = false
		return nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := writeFileSafe(t.path, data); err != nil {
		return err
	}
	t.saved = p
	t.dirty = false
	return nil
}
