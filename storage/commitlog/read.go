package commitlog

import (
	"errors"
	"fmt"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Read path (DefaultMessageStore.getMessage and friends). Records handed out
// alias the mapped commit-log files; each file is held (reference counted)
// until the GetResult is released, so retention or shutdown never unmaps memory
// under a reader.

// MaxOffset implements storage.Store.
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil {
		return 0
	}
	return cq.max.Load()
}

// MinOffset implements storage.Store.
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil {
		return 0
	}
	return cq.min.Load()
}

// recordAt returns the held commit-log file and the record at phy, checked to
// be a whole message record of the given size (size ≤ 0: any).
func (s *Store) recordAt(phy int64, size int32) (*mappedFile, []byte) {
	mf := s.cl.q.find(phy)
	if mf == nil {
		return nil, nil
	}
	pos := phy - mf.from
	wrote := mf.wrote.Load()
	if pos+message.MinRecordSize > wrote {
		mf.release()
		return nil, nil
	}
	n := int64(message.RecordSize(mf.data[pos:]))
	if message.RecordMagic(mf.data[pos:]) != message.MagicMessage || n < message.MinRecordSize ||
		pos+n > wrote || (size > 0 && n != int64(size)) {
		mf.release()
		return nil, nil
	}
	return mf, mf.data[pos : pos+n : pos+n]
}

// heldFiles tracks the commit-log files a GetResult holds (usually one).
type heldFiles struct {
	files []*mappedFile
}

func (h *heldFiles) add(mf *mappedFile) bool {
	for _, f := range h.files {
		if f == mf {
			mf.release() // already held once for this result
			return false
		}
	}
	h.files = append(h.files, mf)
	return true
}

func (h *heldFiles) release() {
	for _, f := range h.files {
		f.release()
	}
	h.files = nil
}

// GetMessages implements storage.Store.
func (s *Store) GetMessages(topic string, queueID int32, offset int64, maxMsgs int, maxBytes int, filter storage.Filter) *storage.GetResult {
	res := &storage.GetResult{}
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil {
		// Java creates the queue on lookup, so an unknown queue reads as empty.
		res.Status = storage.GetNoMessageInQueue
		return res
	}
	minOff, maxOff := cq.min.Load(), cq.max.Load()
	if storage.OutOfRange(res, offset, minOff, maxOff) {
		return res
	}
	if maxMsgs <= 0 {
		maxMsgs = 1 // Java returns one message for maxMsgNums 0
	}
	scanBytes := int64(max(16000, maxMsgs*cqUnit))
	cqFile, entries := cq.entries(offset, scanBytes)
	if cqFile == nil {
		// The entry's file is gone (deleted under us): continue at the next file.
		res.Status = storage.GetOffsetFoundNull
		next := (offset*cqUnit/s.cqFileSize + 1) * s.cqFileSize / cqUnit
		res.NextBeginOffset = min(max(next, minOff), maxOff)
		return res
	}
	defer cqFile.release()

	maxPhy := s.cl.q.maxOffset()
	memLimit := s.memBytes * int64(s.opts.AccessMessageInMemoryMaxRatio) / 100
	held := &heldFiles{}
	res.Records = make([][]byte, 0, min(maxMsgs, max(s.opts.MaxTransferCountOnMessageInMemory, s.opts.MaxTransferCountOnMessageInDisk)))
	res.Status = storage.GetNoMatchedMessage
	skipUntil := int64(-1) // after a missing commit-log file: skip entries below its end
	var lastPhy int64
	i := 0
	for ; i+cqUnit <= len(entries); i += cqUnit {
		phy, size, tags := getEntry(entries[i:])
		if size == placeholderSize || !validEntry(phy, size) {
			continue
		}
		if phy < skipUntil {
			continue
		}
		inDisk := maxPhy-phy > memLimit
		if batchFull(s, int(size), maxMsgs, maxBytes, res.TotalBytes, len(res.Records), inDisk) {
			break
		}
		if filter != nil && !filter.MatchTagsCode(tags) {
			continue
		}
		mf, rec := s.recordAt(phy, size)
		if mf == nil {
			if res.TotalBytes == 0 {
				res.Status = storage.GetMessageWasRemoving
			}
			skipUntil = phy + s.cl.fileSize - phy%s.cl.fileSize
			continue
		}
		if !s.verifyRecord(rec, phy, offset+int64(i/cqUnit)) {
			mf.release()
			continue
		}
		if filter != nil && !filter.MatchRecord(rec) {
			mf.release()
			continue
		}
		held.add(mf)
		res.Records = append(res.Records, rec)
		res.TotalBytes += len(rec)
		res.Status = storage.GetFound
		lastPhy = phy
		skipUntil = -1
	}
	res.NextBeginOffset = offset + int64(i/cqUnit)
	if len(res.Records) > 0 {
		res.SuggestPullingFromSlave = maxPhy-lastPhy > memLimit
		res.ReleaseFunc = held.release
	}
	return res
}

// batchFull is DefaultMessageStore.isTheBatchFull plus the caller's byte cap.
func batchFull(s *Store, size, maxMsgs, maxBytes, total, count int, inDisk bool) bool {
	if total == 0 || count == 0 {
		return false
	}
	if count >= maxMsgs {
		return true
	}
	if maxBytes > 0 && total+size > maxBytes {
		return true
	}
	if inDisk {
		return total+size > s.opts.MaxTransferBytesOnMessageInDisk || count >= s.opts.MaxTransferCountOnMessageInDisk
	}
	return total+size > s.opts.MaxTransferBytesOnMessageInMemory || count >= s.opts.MaxTransferCountOnMessageInMemory
}

// storeTimeAt returns the store time of the record a queue entry points at.
func (s *Store) storeTimeAt(cq *consumeQueue, idx int64) (int64, bool) {
	phy, size, _, ok := cq.entry(idx)
	if !ok || size == placeholderSize || !validEntry(phy, size) {
		return 0, false
	}
	mf, rec := s.recordAt(phy, size)
	if mf == nil {
		return 0, false
	}
	ts := message.RecordStoreTimestamp(rec)
	mf.release()
	return ts, true
}

// OffsetByTime implements storage.Store: a binary search over the queue by the
// store time of the records (store times grow along the commit log).
func (s *Store) OffsetByTime(topic string, queueID int32, ts int64) int64 {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil {
		return 0
	}
	lo, hi := cq.min.Load(), cq.max.Load()
	// Find the first index in [lo, hi) whose time ≥ ts; unreadable entries
	// (placeholders, deleted records) count as older.
	for lo < hi {
		mid := lo + (hi-lo)/2
		t, ok := s.storeTimeAt(cq, mid)
		if !ok || t < ts {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// EarliestMessageTime implements storage.Store.
func (s *Store) EarliestMessageTime(topic string, queueID int32) (int64, error) {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil {
		return 0, storage.ErrNotFound
	}
	for idx, end := cq.min.Load(), cq.max.Load(); idx < end; idx++ {
		if t, ok := s.storeTimeAt(cq, idx); ok {
			return t, nil
		}
	}
	return 0, storage.ErrNotFound
}

// MessageStoreTime implements storage.Store.
func (s *Store) MessageStoreTime(topic string, queueID int32, offset int64) (int64, error) {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil || offset < cq.min.Load() {
		return 0, storage.ErrNotFound
	}
	if t, ok := s.storeTimeAt(cq, offset); ok {
		return t, nil
	}
	return 0, storage.ErrNotFound
}

// ReadMessage implements storage.Store: a copy of the record at a commit-log
// offset, which must be the start of a message record.
func (s *Store) ReadMessage(commitLogOffset int64) ([]byte, error) {
	if commitLogOffset < 0 {
		return nil, fmt.Errorf("%w: negative commit log offset %d", storage.ErrNotFound, commitLogOffset)
	}
	mf, rec := s.recordAt(commitLogOffset, 0)
	if mf == nil {
		return nil, fmt.Errorf("%w: no message record at commit log offset %d", storage.ErrNotFound, commitLogOffset)
	}
	defer mf.release()
	if _, err := message.CheckRecord(rec, true); err != nil || message.RecordPhysicalOffset(rec) != commitLogOffset {
		if errors.Is(err, message.ErrBodyCRC) {
			s.reportCorrupt(commitLogOffset, err)
			return nil, fmt.Errorf("%w: the record at commit log offset %d is corrupt (%v)", storage.ErrNotFound, commitLogOffset, err)
		}
		return nil, fmt.Errorf("%w: no message record at commit log offset %d", storage.ErrNotFound, commitLogOffset)
	}
	return append([]byte(nil), rec...), nil
}
