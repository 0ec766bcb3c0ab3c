package commitlog

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Warming (RocketMQ's warmMapedFileEnable, done continuously): appends that
// write through the mapping take a page fault on every new 4 KiB page, which
// measured about 30% of an ASYNC_FLUSH put's CPU with 128-byte messages. A
// background goroutine keeps the pages just ahead of the write position
// faulted in (MADV_POPULATE_WRITE, Linux 5.14+), so the put path copies into
// pages that are already there. Files with a write buffer (SYNC_FLUSH) are
// written with pwrite, so a store with write buffers runs no warmer. On
// kernels without the advice warming turns itself off.

const (
	warmAhead = 8 << 20 // bytes kept faulted in ahead of the write position
	warmChunk = 1 << 20 // one madvise call
)

// warmNeeded reports whether the warmer should run after an append ended at
// pos (put lock): less than half the runway is left.
func (m *mappedFile) warmNeeded(pos int64) bool {
	return m.wbuf == nil && m.warmed.Load()-pos < warmAhead/2 && m.warmed.Load() < m.size
}

// wakeWarmer nudges the warmer (non-blocking).
func (s *Store) wakeWarmer() {
	select {
	case s.warmWake <- struct{}{}:
	default:
	}
}

// warmLoop faults in the newest file's pages ahead of its write position.
func (s *Store) warmLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopCh:
			return
		case <-s.warmWake:
		}
		if !s.warmFile(s.cl.q.last()) {
			return
		}
	}
}

// warmFile populates mf up to warmAhead past its write position; false when
// the kernel does not know the advice (warming stops).
func (s *Store) warmFile(mf *mappedFile) bool {
	if mf == nil || !mf.hold() {
		return true
	}
	defer mf.release()
	target := min(mf.size, mf.wrote.Load()+warmAhead)
	for from := mf.warmed.Load(); from < target; from = mf.warmed.Load() {
		from &^= pageSize - 1
		to := min(from+warmChunk, mf.size)
		if err := unix.Madvise(mf.data[from:to], unix.MADV_POPULATE_WRITE); err != nil {
			if errors.Is(err, unix.EINVAL) {
				s.log.Debug().Err(err).Msg("MADV_POPULATE_WRITE not supported: commit-log pages are not warmed")
				s.warmUnsupported.Store(true)
				return false
			}
			return true // e.g. EINTR or ENOMEM: try again on the next wake
		}
		mf.warmed.Store(to)
	}
	return true
}
