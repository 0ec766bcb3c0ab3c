package commitlog

import (
	"errors"
	"fmt"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Replication support (storage.Replicable). A master hands out raw ranges of
// its commit log; a slave writes them at the same offsets, so the files stay
// byte-identical, blank end-of-file records included. The slave then walks the
// new bytes record by record (RocketMQ's reput on a slave): each whole record is
// checked (magic, size, CRC, its own stored physical offset) and dispatched to
// its consume queue at the queue offset the master gave it. A record split
// across two transfers waits for its second half; a record that fails the
// checks means the two logs have different histories, so the bytes are cut
// off again and ErrDiverged returned: nothing unverified is ever dispatched.

// replicaState is the slave's reput position (put lock).
type replicaState struct {
	init bool
	pos  int64 // records below pos are checked and dispatched
}

var _ storage.Replicable = (*Store)(nil)

// ReadRaw implements storage.Replicable.
func (s *Store) ReadRaw(offset int64, max int) ([]byte, func(), error) {
	if s.cl == nil {
		return nil, nil, errNotRunning
	}
	end := s.cl.q.maxOffset()
	if offset < s.cl.q.minOffset() || offset > end || offset < 0 {
		return nil, nil, fmt.Errorf("%w: %d not in [%d, %d]", storage.ErrOffsetOutOfRange, offset, s.cl.q.minOffset(), end)
	}
	if offset == end || max <= 0 {
		return nil, nil, nil
	}
	mf := s.cl.q.find(offset)
	if mf == nil {
		return nil, nil, nil // end of a full last file, next not created yet
	}
	pos := offset - mf.from
	n := min(mf.wrote.Load()-pos, int64(max))
	if n <= 0 {
		mf.release()
		return nil, nil, nil
	}
	return mf.data[pos : pos+n : pos+n], mf.release, nil
}

// RecordBoundary implements storage.Replicable.
func (s *Store) RecordBoundary(offset int64) bool {
	if s.cl == nil || offset < 0 {
		return false
	}
	if offset == s.cl.q.maxOffset() || offset == s.cl.q.minOffset() {
		return true
	}
	mf := s.cl.q.find(offset)
	if mf == nil {
		return false
	}
	defer mf.release()
	pos := offset - mf.from
	if pos == 0 {
		return true
	}
	if pos+message.BlankRecordMinSize > mf.wrote.Load() {
		return false
	}
	rec := mf.data[pos:mf.wrote.Load()]
	switch message.RecordMagic(rec) {
	case message.MagicBlank:
		return pos+int64(message.RecordSize(rec)) == mf.size
	case message.MagicMessage:
		return len(rec) >= message.MinRecordSize && message.RecordPhysicalOffset(rec) == offset
	}
	return false
}

// AppendRaw implements storage.Replicable.
func (s *Store) AppendRaw(offset int64, data []byte) error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if !s.running.Load() {
		return errNotRunning
	}
	if p := s.fenceErr.Load(); p != nil {
		return *p
	}
	if !s.repl.init {
		s.repl = replicaState{init: true, pos: s.cl.q.maxOffset()}
	}
	end := s.cl.q.maxOffset()
	if offset != end {
		if !s.emptyLog() || offset%s.cl.fileSize != 0 || offset < 0 {
			return fmt.Errorf("%w: offset %d, log ends at %d", storage.ErrOffsetMismatch, offset, end)
		}
		// An empty slave starts where the master's retained log starts.
		s.dropAllFiles()
		s.repl.pos = offset
	}
	if len(data) == 0 {
		return nil
	}
	mf := s.cl.q.last()
	if mf == nil || mf.full() {
		var err error
		if offset%s.cl.fileSize != 0 {
			return fmt.Errorf("%w: a new commit-log file would start at %d, not a multiple of mappedFileSizeCommitLog %d", storage.ErrDiverged, offset, s.cl.fileSize)
		}
		if mf, err = s.cl.rollTo(offset); err != nil {
			s.fence(fmt.Errorf("create commit-log file at %d: %w", offset, err))
			return err
		}
	}
	pos := offset - mf.from
	if pos+int64(len(data)) > mf.size {
		return fmt.Errorf("%w: %d bytes at %d cross the end of the file at %d (master and slave must use the same mappedFileSizeCommitLog)",
			storage.ErrDiverged, len(data), offset, mf.from+mf.size)
	}
	mf.claimWrite(pos + int64(len(data)))
	copy(mf.data[pos:], data)
	mf.wrote.Store(pos + int64(len(data)))
	if mf.warmNeeded(pos + int64(len(data))) {
		s.wakeWarmer()
	}
	return s.reputReplica()
}

// emptyLog reports whether the commit log holds no byte (put lock).
func (s *Store) emptyLog() bool {
	for _, f := range s.cl.q.snapshot() {
		if f.wrote.Load() > 0 {
			return false
		}
	}
	return true
}

// dropAllFiles removes the (empty) commit-log files (put lock).
func (s *Store) dropAllFiles() {
	s.cl.closeNext()
	s.cl.q.mu.Lock()
	files := s.cl.q.files
	s.cl.q.files = nil
	s.cl.q.mu.Unlock()
	for _, f := range files {
		f.destroy(true)
	}
	s.cl.flushedWhere.Store(0)
}

// rollTo opens the file starting at from as the newest one (put lock), using
// the preallocated file when it is that one.
func (c *commitLog) rollTo(from int64) (*mappedFile, error) {
	if p := c.next; p != nil {
		<-p.done
		c.next = nil
		if p.err == nil {
			if p.from == from {
				c.q.appendFile(p.mf)
				c.preallocate(from + c.fileSize)
				return p.mf, nil
			}
			p.mf.destroy(true)
		}
	}
	if c.q.last() == nil && c.flushedWhere.Load() < from {
		c.flushedWhere.Store(from)
	}
	mf, err := c.q.newFile(from)
	if err != nil {
		return nil, err
	}
	c.preallocate(from + c.fileSize)
	return mf, nil
}

// reputReplica checks and dispatches the whole records between the reput
// position and the end of the log (put lock).
func (s *Store) reputReplica() error {
	listener := s.listener.Load()
	for {
		mf := s.cl.q.find(s.repl.pos)
		if mf == nil {
			return nil
		}
		pos := s.repl.pos - mf.from
		limit := mf.wrote.Load()
		for pos < limit {
			if limit-pos < message.BlankRecordMinSize {
				break // header not complete yet
			}
			size, err := message.CheckRecord(mf.data[pos:limit], true)
			if errors.Is(err, message.ErrBlankRecord) {
				if pos+int64(size) != mf.size {
					mf.release()
					return s.diverged(mf.from+pos, "blank record does not end the file")
				}
				if limit < mf.size {
					break
				}
				pos = mf.size
				break
			}
			if errors.Is(err, message.ErrTruncated) {
				declared := int64(message.RecordSize(mf.data[pos:]))
				if declared >= message.MinRecordSize && pos+declared <= mf.size {
					break // the rest comes with the next transfer
				}
			}
			if err != nil {
				mf.release()
				return s.diverged(mf.from+pos, err.Error())
			}
			rec := mf.data[pos : pos+int64(size)]
			phy := mf.from + pos
			if got := message.RecordPhysicalOffset(rec); got != phy {
				mf.release()
				return s.diverged(phy, fmt.Sprintf("record says it is at %d", got))
			}
			if err := s.dispatchRecord(rec, phy); err != nil {
				mf.release()
				s.fence(fmt.Errorf("dispatch replicated record at %d: %w", phy, err))
				return err
			}
			ts := message.RecordStoreTimestamp(rec)
			s.lastStoreTs = max(s.lastStoreTs, ts)
			s.cl.lastPutTs.Store(ts)
			s.cl.lastRecStart.Store(phy)
			if listener != nil {
				topic, _, queueID, qoff, _, sysFlag, _ := message.RecordFields(rec)
				if message.Dispatchable(sysFlag) {
					if cq, _ := s.consumeQueueBytes(topic, queueID); cq != nil {
						(*listener)(cq.topic, queueID, qoff+1)
					}
				}
			}
			pos += int64(size)
		}
		s.repl.pos = mf.from + pos
		full := pos >= mf.size
		mf.release()
		if !full {
			return nil
		}
	}
}

// diverged cuts the log back to the last checked record (put lock).
func (s *Store) diverged(at int64, why string) error {
	cut := s.repl.pos
	if err := s.cl.q.truncate(cut); err != nil {
		s.fence(fmt.Errorf("cut diverged replica bytes at %d: %w", cut, err))
	}
	if s.cl.flushedWhere.Load() > cut {
		s.cl.flushedWhere.Store(cut)
	}
	return fmt.Errorf("%w: at offset %d: %s; log cut back to %d", storage.ErrDiverged, at, why, cut)
}

// TruncateRaw implements storage.Replicable.
func (s *Store) TruncateRaw(offset int64) error {
	if !s.RecordBoundary(offset) {
		return fmt.Errorf("storage: truncate at %d: not a record boundary", offset)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	if err := s.cl.q.truncate(offset); err != nil {
		return err
	}
	if s.cl.flushedWhere.Load() > offset {
		s.cl.flushedWhere.Store(offset)
	}
	if s.syncedWhere.Load() > offset {
		s.syncedWhere.Store(offset)
	}
	s.cqMu.RLock()
	defer s.cqMu.RUnlock()
	for k, cq := range s.cqs {
		if err := cq.truncateByPhy(offset); err != nil {
			return err
		}
		if qs := s.queueTable[k]; qs != nil {
			qs.next = cq.max.Load()
		}
	}
	s.repl = replicaState{init: true, pos: offset}
	return nil
}
