package commitlog

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Dispatch turns appended records into consume-queue entries (RocketMQ's
// ReputMessageService, run synchronously). The put path queues a dispatchReq
// for every dispatchable record inside the put lock, so s.pending is in
// commit-log order. Under ASYNC_FLUSH the putter dispatches right after its
// append; under SYNC_FLUSH the flusher dispatches what it has just fsynced, so
// consumers never see a record that a crash could still take back. A queue's
// MaxOffset only counts dispatched entries.

// dispatchPending writes the queued entries whose records end at or before
// limit, then wakes long polls.
func (s *Store) dispatchPending(limit int64) {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	s.pendMu.Lock()
	n := 0
	for n < len(s.pending) && s.pending[n].end() <= limit {
		n++
	}
	if n == 0 {
		s.pendMu.Unlock()
		return
	}
	work := append(s.dispatchBuf[:0], s.pending[:n]...)
	rest := copy(s.pending, s.pending[n:])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	s.pendMu.Unlock()

	listener := s.listener.Load()
	for i := range work {
		d := &work[i]
		if err := s.dispatchOne(d); err != nil {
			// Keep the undispatched entries (in order) and stop accepting
			// writes: the consume queue can no longer follow the log.
			s.pendMu.Lock()
			s.pending = append(append(make([]dispatchReq, 0, len(work)-i+len(s.pending)), work[i:]...), s.pending...)
			s.pendMu.Unlock()
			s.fence(fmt.Errorf("dispatch to consume queue: %w", err))
			break
		}
		if listener != nil {
			(*listener)(d.cq.topic, d.cq.queueID, d.queueOffset+1)
		}
	}
	clear(work)
	s.dispatchBuf = work[:0]
}

// dispatchOne writes one entry (put lock held under ASYNC_FLUSH, dispatch lock
// under SYNC_FLUSH).
func (s *Store) dispatchOne(d *dispatchReq) error {
	if err := d.cq.put(d.phy, d.size, d.tagsCode, d.queueOffset); err != nil {
		return err
	}
	s.lastDispatchTs.Store(d.storeTs)
	s.lastDispatchRec.Store(d.phy)
	return nil
}

// dispatchRecord re-dispatches a record read from the commit log (recovery).
func (s *Store) dispatchRecord(rec []byte, phy int64) error {
	topic, props, queueID, qoff, storeTs, sysFlag, err := message.RecordFields(rec)
	if err != nil {
		return err
	}
	if !message.Dispatchable(sysFlag) {
		return nil
	}
	tags := s.tagsCodeFor(topic, props, storeTs)
	cq, err := s.consumeQueueBytes(topic, queueID)
	if err != nil {
		return err
	}
	if err := checkQueueOffset(cq, qoff, phy); err != nil {
		return err
	}
	if err := cq.put(phy, int32(len(rec)), tags, qoff); err != nil {
		return err
	}
	s.lastDispatchTs.Store(storeTs)
	s.lastDispatchRec.Store(phy)
	return nil
}

// errBadQueueOffset: a record's queue offset cannot be right.
var errBadQueueOffset = errors.New("record's queue offset is impossible at its commit log offset")

// checkQueueOffset rejects a queue offset no intact record can have. The body
// CRC does not cover it, and a damaged one far ahead would make the consume
// queue fill the gap with placeholder entries, file after file. Every queue
// offset below qoff belongs to an earlier record of at least MinRecordSize
// bytes, and those the queue lacks lie between its last entry and phy.
func checkQueueOffset(cq *consumeQueue, qoff, phy int64) error {
	cur := cq.max.Load()
	if qoff < 0 || qoff > phy/message.MinRecordSize || qoff > cur && (qoff-cur)*message.MinRecordSize > phy-cq.maxPhy {
		return fmt.Errorf("%w: queue %s/%d offset %d at %d (queue has %d entries up to %d)",
			errBadQueueOffset, cq.topic, cq.queueID, qoff, phy, cur, cq.maxPhy)
	}
	return nil
}

func (s *Store) consumeQueueBytes(topic []byte, queueID int32) (*consumeQueue, error) {
	s.cqMu.RLock()
	cq := s.cqs[queueKey{string(topic), queueID}]
	s.cqMu.RUnlock()
	if cq != nil {
		return cq, nil
	}
	return s.consumeQueue(string(topic), queueID, true)
}

// consumeQueue returns a queue's consume queue, creating it (in memory; its
// first file comes with its first entry) when create is set.
func (s *Store) consumeQueue(topic string, queueID int32, create bool) (*consumeQueue, error) {
	key := queueKey{topic, queueID}
	s.cqMu.RLock()
	cq := s.cqs[key]
	s.cqMu.RUnlock()
	if cq != nil || !create {
		return cq, nil
	}
	if err := checkTopicPath(topic); err != nil {
		return nil, err
	}
	s.cqMu.Lock()
	defer s.cqMu.Unlock()
	if cq = s.cqs[key]; cq == nil {
		cq = &consumeQueue{topic: topic, queueID: queueID,
			q: &fileQueue{dir: cqDir(s.opts.ConsumeQueueDir(), topic, queueID), fileSize: s.cqFileSize, sparse: true}}
		s.cqs[key] = cq
	}
	return cq, nil
}

// checkTopicPath refuses topic names that are not a single path element.
// The broker validates names; this guards the file system regardless.
func checkTopicPath(topic string) error {
	if topic == "" || topic == "." || topic == ".." || len(topic) > 255 {
		return fmt.Errorf("topic name %q cannot be a directory name", topic)
	}
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; c == '/' || c == '\\' || c == 0 || c == os.PathSeparator {
			return fmt.Errorf("topic name %q contains a path separator", topic)
		}
	}
	if strings.Contains(topic, "..") {
		return fmt.Errorf("topic name %q looks like a path", topic)
	}
	return nil
}

// SetArrivalListener implements storage.Store. The listener runs on the
// dispatching goroutine and must not block.
func (s *Store) SetArrivalListener(l storage.ArrivalListener) {
	if l == nil {
		s.listener.Store(nil)
		return
	}
	s.listener.Store(&l)
}
