package commitlog

import (
	"errors"

	"github.com/mqd/mqd/storage/message"
)

// Recovery (DefaultMessageStore.recover). Consume queues are recovered first,
// then the commit log: after a clean shutdown from the third-last file, after a
// crash (abort file present) from the newest file whose first record is older
// than the checkpoint, with CRC checks, re-dispatching every good record (the
// consume queue ignores what it already has). The first bad or torn record ends
// the log: the tail is zeroed so stale bytes never parse as records later, and
// consume-queue entries past the end are dropped. Records beyond what the
// consume queues cover are dispatched again, and the next queue offsets are
// rebuilt from the consume queues.

func (s *Store) recover(lastExitOK bool) error {
	maxPhyInCQ := int64(0)
	for _, cq := range s.cqs {
		if err := cq.recover(); err != nil {
			return err
		}
		maxPhyInCQ = max(maxPhyInCQ, cq.maxPhy)
	}

	files := s.cl.q.snapshot()
	if len(files) == 0 {
		// No commit log: nothing the consume queues point at exists.
		for k, cq := range s.cqs {
			if err := cq.q.truncate(0); err != nil {
				return err
			}
			cq.q.close()
			delete(s.cqs, k)
		}
		return nil
	}
	start := max(len(files)-3, 0)
	if !lastExitOK {
		start = s.abnormalStart(files)
		// Consume-queue entries for records from the scan start on may not
		// have been flushed (pages of any age can be lost at a power cut, not
		// only in the last three files): drop them, the scan re-dispatches.
		for _, cq := range s.cqs {
			if err := cq.truncateFromPhy(files[start].from); err != nil {
				return err
			}
			maxPhyInCQ = max(maxPhyInCQ, cq.maxPhy)
		}
	}
	end, lastTs, err := s.scanCommitLog(files[start:], !lastExitOK)
	if err != nil {
		return err
	}
	s.log.Debug().Int64("from", files[start].from).Int64("end", end).Msg("commit log scanned")
	s.reportDroppedTail(files, end)
	if err := s.cl.q.truncate(end); err != nil {
		return err
	}
	if len(s.cl.q.snapshot()) == 0 {
		// Truncated to nothing at offset 0: keep an empty first file position.
		end = 0
	}
	s.cl.flushedWhere.Store(end)
	s.syncedWhere.Store(end)
	s.lastStoreTs = lastTs
	s.cl.lastPutTs.Store(lastTs)

	if maxPhyInCQ > end {
		for _, cq := range s.cqs {
			if err := cq.truncateByPhy(end); err != nil {
				return err
			}
		}
	}
	// Dispatch what the consume queues miss.
	from := s.MinPhyOffset()
	for _, cq := range s.cqs {
		from = max(from, cq.maxPhy)
	}
	if err := s.redispatch(from, end); err != nil {
		return err
	}
	clMin := s.MinPhyOffset()
	for k, cq := range s.cqs {
		cq.correctMin(clMin)
		if m := cq.max.Load(); m > 0 {
			s.queueTable[k] = &queueState{next: m, cq: cq}
		}
	}
	return nil
}

// abnormalStart picks the first file to scan after a crash
// (CommitLog.isMappedFileMatchedRecover).
func (s *Store) abnormalStart(files []*mappedFile) int {
	minTs := s.cp.minTimestamp()
	for i := len(files) - 1; i >= 0; i-- {
		d := files[i].data
		if message.RecordMagic(d) != message.MagicMessage {
			continue
		}
		ts := message.RecordStoreTimestamp(d)
		if ts != 0 && ts <= minTs {
			return i
		}
	}
	return 0
}

// scanCommitLog walks records and returns the offset after the last good one
// and its store time. With dispatch set, good records are re-dispatched.
func (s *Store) scanCommitLog(files []*mappedFile, dispatch bool) (end, lastTs int64, err error) {
	checkCRC := s.opts.CheckCRCOnRecover
	end = files[0].from
	for i, mf := range files {
		pos := int64(0)
		for pos < mf.size {
			size, cerr := message.CheckRecord(mf.data[pos:], checkCRC)
			if errors.Is(cerr, message.ErrBlankRecord) && pos+int64(size) == mf.size {
				pos = mf.size // end of file; go on with the next
				break
			}
			if cerr != nil || message.RecordPhysicalOffset(mf.data[pos:]) != mf.from+pos {
				return end, lastTs, nil
			}
			rec := mf.data[pos : pos+int64(size)]
			if dispatch {
				if err := s.dispatchRecord(rec, mf.from+pos); err != nil {
					return end, lastTs, err
				}
			}
			lastTs = message.RecordStoreTimestamp(rec)
			pos += int64(size)
			end = mf.from + pos
		}
		if pos >= mf.size {
			end = mf.from + mf.size
			if i == len(files)-1 {
				return end, lastTs, nil
			}
		}
	}
	return end, lastTs, nil
}

// redispatch dispatches the records in [from, end), which follow the last
// record every consume queue knows.
func (s *Store) redispatch(from, end int64) error {
	for from < end {
		mf := s.cl.q.find(from)
		if mf == nil {
			return nil
		}
		pos := from - mf.from
		limit := min(mf.wrote.Load(), end-mf.from)
		for pos < limit {
			size, err := message.CheckRecord(mf.data[pos:limit], false)
			if errors.Is(err, message.ErrBlankRecord) {
				pos = mf.size
				break
			}
			if err != nil {
				mf.release()
				return nil // recovery already cut the log at the last good record
			}
			if err := s.dispatchRecord(mf.data[pos:pos+int64(size)], mf.from+pos); err != nil {
				mf.release()
				return err
			}
			pos += int64(size)
		}
		if pos < mf.size && pos < limit {
			mf.release()
			return nil
		}
		next := mf.from + mf.size
		if pos < mf.size {
			next = mf.from + pos
		}
		mf.release()
		if next <= from {
			return nil
		}
		from = next
	}
	return nil
}
