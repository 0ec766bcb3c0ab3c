package commitlog

import (
	"errors"
	"fmt"

	"github.com/mqd/mqd/storage/message"
)

// Recovery (DefaultMessageStore.recover). Consume queues are recovered first,
// then the commit log: after a clean shutdown from the newest record the stop
// recorded in the checkpoint (verifying that the log ends where the stop
// said), else from the third-last file; after a
// crash (abort file present) from the checkpoint's record offset when an intact
// record starts there (the walk then depends on what was written since the last
// checkpoint, not on the file size), else from the newest file whose first
// record is older than the checkpoint time, with CRC checks, re-dispatching every good record (the
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
	from := files[start].from
	end, lastTs, lastRec := int64(0), int64(0), int64(-1)
	verified := false
	if lastExitOK {
		end, lastTs, lastRec, verified = s.cleanTail(files)
	}
	if !lastExitOK {
		var ok bool
		if start, from, ok = s.checkpointStart(files); !ok {
			start = s.abnormalStart(files)
			from = files[start].from
		}
		// Consume-queue entries for records from the scan start on may not
		// have been flushed (pages of any age can be lost at a power cut, not
		// only in the last three files): drop them, the scan re-dispatches.
		for _, cq := range s.cqs {
			if err := cq.truncateFromPhy(from); err != nil {
				return err
			}
			maxPhyInCQ = max(maxPhyInCQ, cq.maxPhy)
		}
	}
	if !verified {
		var err error
		if end, lastTs, lastRec, err = s.scanCommitLog(files[start:], from, !lastExitOK); err != nil {
			return err
		}
		s.log.Debug().Int64("from", from).Int64("end", end).Msg("commit log scanned")
	}
	s.reportDroppedTail(files, end)
	if err := s.cl.q.truncate(end); err != nil {
		return err
	}
	if err := s.cp.forgetOffsetsFrom(end); err != nil {
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
	// The next flush records it in the checkpoint (it is on disk: a clean
	// stop flushed it, crash recovery fsyncs what it scanned), so the next
	// clean restart verifies the log from here.
	s.cl.lastRecStart.Store(lastRec)

	if maxPhyInCQ > end {
		for _, cq := range s.cqs {
			if err := cq.truncateByPhy(end); err != nil {
				return err
			}
		}
	}
	// Dispatch what the consume queues miss.
	from = s.MinPhyOffset()
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
	if !lastExitOK {
		return s.checkpointRecovered(files[start:])
	}
	return nil
}

// cleanTail verifies the log after a clean stop from what the stop
// recorded in the checkpoint: the newest record (intact, and knowing its own
// offset) and the end of the log (the walk from that record, through the
// file holding the end, stops exactly there). The log below was flushed and
// dispatched by that stop, so nothing else is read. ok is false when
// anything does not match (no such record, a checkpoint from RocketMQ or an
// earlier mqd, files changed since): recovery then walks the newest files.
func (s *Store) cleanTail(files []*mappedFile) (end, lastTs, lastRec int64, ok bool) {
	rec, stopEnd, ok := s.cp.cleanStop()
	if !ok {
		return 0, 0, -1, false
	}
	first, last := -1, len(files)-1
	for i, mf := range files {
		if rec >= mf.from && rec < mf.from+mf.size {
			first = i
		}
		if stopEnd >= mf.from && stopEnd < mf.from+mf.size {
			last = i
			break
		}
	}
	if first < 0 || first > last {
		s.log.Warn().Int64("record", rec).Int64("end", stopEnd).Msg("clean stop's offsets are not in the commit log; walking the newest files")
		return 0, 0, -1, false
	}
	mf := files[first]
	if b := mf.data[rec-mf.from:]; !wholeRecordAt(b, rec) {
		s.log.Warn().Int64("record", rec).Msg("clean stop's last record is not in the commit log; walking the newest files")
		return 0, 0, -1, false
	}
	end, lastTs, lastRec, err := s.scanCommitLog(files[first:last+1], rec, false)
	if err != nil || end != stopEnd || lastRec < 0 {
		s.log.Warn().Int64("record", rec).Int64("end", end).Int64("recordedEnd", stopEnd).
			Msg("commit log does not end where the clean stop recorded; walking the newest files")
		return 0, 0, -1, false
	}
	s.log.Debug().Int64("from", rec).Int64("end", end).Msg("clean stop verified")
	return end, lastTs, lastRec, true
}

// checkpointRecovered makes what crash recovery kept durable and records it
// in the checkpoint. The consume-queue entries it rewrote replace flushed ones
// below the old checkpoint offset, so that offset no longer holds until they
// are flushed; and after kill -9 the scanned log may still be only in the
// page cache.
func (s *Store) checkpointRecovered(scanned []*mappedFile) error {
	s.cp.resetLogicsRec()
	for _, mf := range scanned {
		if mf.hold() {
			err := mf.f.Sync()
			mf.release()
			if err != nil {
				return fmt.Errorf("fsync %s: %w", mf.path, err)
			}
		}
	}
	if err := s.flushConsumeQueues(0, false); errors.Is(err, errDirsUnsynced) {
		return s.cp.flush() // without a logics offset until the directories are synced
	} else if err != nil {
		return err
	}
	if rec := s.lastDispatchRec.Load(); rec >= 0 {
		s.cp.setLogicsRec(rec)
	}
	return s.cp.flush()
}

// checkpointStart returns the file and offset to scan from after a crash
// according to the checkpoint's record offsets: the log and the consume
// queues are durable below them. They are trusted only if an intact record
// that knows its own offset starts there; otherwise (no offsets, a store
// written by RocketMQ, files deleted or lost) ok is false.
func (s *Store) checkpointStart(files []*mappedFile) (i int, from int64, ok bool) {
	off := s.cp.recoveryStart()
	if off < 0 {
		return 0, 0, false
	}
	for i, mf := range files {
		if off < mf.from || off >= mf.from+mf.size {
			continue
		}
		if !wholeRecordAt(mf.data[off-mf.from:], off) {
			s.log.Warn().Int64("offset", off).Msg("checkpoint offset does not hold a record; recovering from the checkpoint time instead")
			return 0, 0, false
		}
		return i, off, true
	}
	return 0, 0, false
}

// wholeRecordAt reports whether b starts with an intact record (CRC
// checked) that says it is at offset off.
func wholeRecordAt(b []byte, off int64) bool {
	_, err := message.CheckRecord(b, true)
	return err == nil && message.RecordPhysicalOffset(b) == off
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

// scanCommitLog walks records from offset from (in files[0]) and returns the
// offset after the last good one, its store time and its offset (-1: none). With dispatch set, good
// records are re-dispatched.
func (s *Store) scanCommitLog(files []*mappedFile, from int64, dispatch bool) (end, lastTs, lastRec int64, err error) {
	lastRec = -1
	checkCRC := s.opts.CheckCRCOnRecover
	end = from
	for i, mf := range files {
		pos := int64(0)
		if i == 0 {
			pos = from - mf.from
		}
		for pos < mf.size {
			size, cerr := message.CheckRecord(mf.data[pos:], checkCRC)
			if errors.Is(cerr, message.ErrBlankRecord) && pos+int64(size) == mf.size {
				pos = mf.size // end of file; go on with the next
				break
			}
			if cerr != nil || message.RecordPhysicalOffset(mf.data[pos:]) != mf.from+pos {
				return end, lastTs, lastRec, nil
			}
			rec := mf.data[pos : pos+int64(size)]
			if dispatch {
				if err := s.dispatchRecord(rec, mf.from+pos); errors.Is(err, errBadQueueOffset) {
					// Damaged outside the CRC: report it and leave it out of its
					// queue (as redispatch does), but keep the intact records
					// after it.
					s.reportCorrupt(mf.from+pos, err)
				} else if err != nil {
					return end, lastTs, lastRec, err
				}
			}
			lastTs = message.RecordStoreTimestamp(rec)
			lastRec = mf.from + pos
			pos += int64(size)
			end = mf.from + pos
		}
		if pos >= mf.size {
			end = mf.from + mf.size
			if i == len(files)-1 {
				return end, lastTs, lastRec, nil
			}
		}
	}
	return end, lastTs, lastRec, nil
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
			if err := s.dispatchRecord(mf.data[pos:pos+int64(size)], mf.from+pos); errors.Is(err, errBadQueueOffset) {
				s.reportCorrupt(mf.from+pos, err) // not dispatched: never served
			} else if err != nil {
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
