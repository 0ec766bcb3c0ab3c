package commitlog

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/storage/message"
)

// Corruption detection on the read path. Recovery verifies only the tail of
// the commit log, so a bit flipped later in an older file would otherwise be
// served. Every record a pull returns is checked (body CRC, its own commit-log
// offset, and the queue offset its consume-queue entry promised); a record
// that fails is not served: it is skipped, counted and logged as an ERROR
// (rate-limited), so operators see it while consumers keep progressing.

var errRecordMismatch = errors.New("record does not match its consume queue entry")

type corruption struct {
	count   atomic.Int64
	lastLog atomic.Int64 // unix ms of the last log line
}

// verifyRecord reports whether rec, found at phy for queue offset qoff, is intact.
func (s *Store) verifyRecord(rec []byte, phy, qoff int64) bool {
	if message.RecordPhysicalOffset(rec) != phy || message.RecordQueueOffset(rec) != qoff {
		s.reportCorrupt(phy, fmt.Errorf("%w: record says commit log offset %d, queue offset %d; entry says %d, %d",
			errRecordMismatch, message.RecordPhysicalOffset(rec), message.RecordQueueOffset(rec), phy, qoff))
		return false
	}
	if _, err := message.CheckRecord(rec, true); err != nil {
		s.reportCorrupt(phy, err)
		return false
	}
	return true
}

func (s *Store) reportCorrupt(phy int64, err error) {
	n := s.corrupt.count.Add(1)
	now := time.Now().UnixMilli()
	if last := s.corrupt.lastLog.Load(); now-last >= 10000 && s.corrupt.lastLog.CompareAndSwap(last, now) {
		s.log.Error().Err(err).Int64("offset", phy).Int64("corruptRecordsSeen", n).
			Msg("corrupt record in the commit log: not served (skipped)")
	}
}

// CorruptRecords counts records refused by the read path since start.
func (s *Store) CorruptRecords() int64 { return s.corrupt.count.Load() }

// tailProbe is how far past the recovered end recovery looks for bytes it is
// about to drop (bounded: a fresh file's zeros need not be read).
const tailProbe = 64 << 10

// reportDroppedTail logs what recovery cuts off at end: a few bytes are a torn
// final record (normal after a crash under ASYNC_FLUSH); data in later files
// means a corrupt record in the middle of the log and acknowledged messages
// after it dropped, an ERROR.
func (s *Store) reportDroppedTail(files []*mappedFile, end int64) {
	var near, laterFiles int64
	for _, mf := range files {
		switch {
		case mf.from+mf.size <= end:
		case mf.from <= end:
			pos := end - mf.from
			b := mf.data[pos:min(pos+tailProbe, mf.size)]
			for i := len(b) - 1; i >= 0; i-- {
				if b[i] != 0 {
					near = int64(i + 1)
					break
				}
			}
		default:
			if message.RecordMagic(mf.data) != 0 || message.RecordSize(mf.data) != 0 {
				laterFiles++
			}
		}
	}
	if near == 0 && laterFiles == 0 {
		return
	}
	s.recoveryDropped.Add(near + laterFiles*s.cl.fileSize)
	ev := s.log.Warn()
	if laterFiles > 0 || near >= tailProbe {
		ev = s.log.Error()
	}
	ev.Int64("truncatedAt", end).Int64("bytesDroppedNearEnd", near).Int64("laterFilesWithData", laterFiles).
		Msg("commit log recovery stopped at a torn or corrupt record; everything after it is dropped")
}

// RecoveryDroppedBytes estimates the bytes the last recovery cut off.
func (s *Store) RecoveryDroppedBytes() int64 { return s.recoveryDropped.Load() }
