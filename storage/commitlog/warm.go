package commitlog

import (
	"golang.org/x/sys/unix"
)

// Warming (RocketMQ's warmMapedFileEnable, done continuously): appends that
// write through the mapping would take a page fault for every new page of
// the commit log, each allocating a page-cache page inside the put lock. A
// background goroutine keeps the pages just ahead of the write position in
// the page cache, so the put path copies into pages that are already there.
//
// It fills them with zeros using pwrite, which is what the file's
// preallocated (unwritten) blocks read as anyway. The write path puts pages
// into the cache far more cheaply than faults on a shared mapping do: on
// this project's test machine (ext4 on a virtual disk, 256 MiB fresh files)
// MADV_POPULATE_WRITE or touching the mapping cost 7-11 µs a page once the
// page cache had grown by a gigabyte, pwrite of zeros 0.5-0.8 µs plus
// 0.3 µs for the writer's later fault on the cached page; with 1 KiB
// messages that was about a tenth of the broker's CPU per message.
// docs/store.md, "Warming the commit log".
//
// Zeros must never land on bytes a writer has written. The warmer fills
// only from max(warmed, write position) up and advances warmed after each
// chunk, holding warmMu while it writes; every writer of the mapping calls
// claimWrite first, which for a range reaching past warmed takes warmMu
// (waiting out a chunk being filled) and moves warmed past the range. A
// writer below warmed writes where the warmer never goes again.
//
// Files with a write buffer (SYNC_FLUSH) are written with pwrite by the
// committer, so a store with write buffers runs no warmer.

const (
	warmAhead = 8 << 20   // bytes kept in the page cache ahead of the write position
	warmChunk = 256 << 10 // one pwrite, and the longest a claiming writer waits for
)

// warmZeros is the source of the warmer's pwrites (never written: its pages
// stay the kernel's shared zero page).
var warmZeros [warmChunk]byte

// warmNeeded reports whether the warmer should run after an append ended at
// pos (put lock): less than half the runway is left.
func (m *mappedFile) warmNeeded(pos int64) bool {
	return m.wbuf == nil && m.warmed.Load()-pos < warmAhead/2 && m.warmed.Load() < m.size
}

// claimWrite keeps the warmer from ever zero-filling below end: call it
// before writing up to end (put lock). Appends to a write buffer go to
// anonymous memory and need no claim.
func (m *mappedFile) claimWrite(end int64) {
	if m.wbuf != nil || end <= m.warmed.Load() {
		return
	}
	m.warmMu.Lock()
	if end > m.warmed.Load() {
		m.warmed.Store(min((end+pageSize-1)&^(pageSize-1), m.size))
	}
	m.warmMu.Unlock()
}

// wakeWarmer nudges the warmer (non-blocking).
func (s *Store) wakeWarmer() {
	select {
	case s.warmWake <- struct{}{}:
	default:
	}
}

// warmLoop keeps the newest file's pages ahead of its write position cached.
func (s *Store) warmLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopCh:
			return
		case <-s.warmWake:
		}
		s.warmFile(s.cl.q.last())
	}
}

// warmFile zero-fills mf up to warmAhead past its write position.
func (s *Store) warmFile(mf *mappedFile) {
	if mf == nil || !mf.hold() {
		return
	}
	defer mf.release()
	target := min(mf.size, mf.wrote.Load()+warmAhead)
	for {
		select {
		case <-s.stopCh:
			return
		default:
		}
		mf.warmMu.Lock()
		// Bytes below the write position were written (a recovered file's
		// included); claimed ones are above warmed already.
		from := max(mf.warmed.Load(), (mf.wrote.Load()+pageSize-1)&^(pageSize-1))
		if from >= target {
			mf.warmMu.Unlock()
			return
		}
		to := min(from+warmChunk, target)
		err := mf.withFD(func(fd int) error {
			for at := from; at < to; {
				n, err := unix.Pwrite(fd, warmZeros[:to-at], at)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					return err
				}
				at += int64(n)
			}
			return nil
		})
		if err != nil {
			// Only a cost: the writer faults the pages in itself. The whole
			// file counts as warmed, so no later wake tries it again.
			to = mf.size
		}
		mf.warmed.Store(to)
		mf.warmMu.Unlock()
		if err != nil {
			s.log.Debug().Err(err).Str("file", mf.path).Msg("commit-log warming stopped for this file")
			return
		}
	}
}
