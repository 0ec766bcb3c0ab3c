package commitlog

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/kernel/fsutil"

	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/storage"
)

// Retention and disk space (DefaultMessageStore.CleanCommitLogService,
// CleanConsumeQueueService and the disk check). Every cleanResourceInterval
// the cleaner measures the disk, raises or clears the disk-full flag (puts
// get PutDiskFull while it is set), and runs a deletion round when the hour is
// in deleteWhen, the disk is above diskMaxUsedSpaceRatio, or a manual
// deletion was requested. A round deletes the oldest commit-log files (never
// the current one, at most 10, stopping at the first that must stay) that are
// older than fileReservedTime hours, or regardless of age when the disk is
// above diskSpaceCleanForciblyRatio. Consume-queue and index files wholly
// below the new commit-log minimum follow, and queue minimum offsets move up.
//
// A deleted file leaves the directory at once; its mapping lives until the
// last reader releases it (Linux frees the blocks then). That is what
// destroyMapedFileIntervalForcibly bounds in RocketMQ, where a mapping cannot
// outlive its file; here a reader never finds unmapped memory, and a file
// still held past that interval is reported.

const maxFilesPerRound = 10

var errDiskFull = errors.New("the broker's disk is full")

type cleanState struct {
	diskFull     atomic.Bool
	manualRounds atomic.Int32
	// probe returns the used fraction of the partition holding dir; nil means
	// statfs. In-package tests replace it to simulate a full disk.
	probe atomic.Pointer[func(dir string) (float64, error)]
	// hung are deleted commit-log files readers still held (cleaner only).
	hung []hungFile
}

type hungFile struct {
	mf       *mappedFile
	since    time.Time
	reported bool
}

// diskUsedRatio is used/total of the partition holding dir
// (UtilAll.getDiskPartitionSpaceUsedPercent); -1 if it cannot be measured.
func diskUsedRatio(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1, err
	}
	total := float64(st.Blocks) * float64(st.Bsize)
	if total <= 0 {
		return -1, fmt.Errorf("statfs %s: no size", dir)
	}
	free := float64(st.Bfree) * float64(st.Bsize)
	return (total - free) / total, nil
}

func (s *Store) diskRatio(dir string) float64 {
	probe := diskUsedRatio
	if p := s.clean.probe.Load(); p != nil {
		probe = *p
	}
	r, err := probe(dir)
	if err != nil {
		return -1
	}
	return r
}

// createFailedStatus classifies a failed commit-log or consume-queue file
// creation: no space is DISK_FULL (and raises the flag until the next disk
// check clears it).
func (s *Store) createFailedStatus(err error) storage.PutStatus {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		if s.clean.diskFull.CompareAndSwap(false, true) {
			s.log.Error().Err(err).Msg("no space for a new store file: refusing writes until space returns")
		}
		return storage.PutDiskFull
	}
	return storage.PutCreateMappedFileFailed
}

// ExecuteDeleteFilesManually arms 20 deletion rounds regardless of deleteWhen
// and disk usage (TRIGGER_DELETE_FILES); files must still be older than
// fileReservedTime, unless the disk is above the forced-clean ratio.
func (s *Store) ExecuteDeleteFilesManually() {
	s.clean.manualRounds.Store(20)
	s.log.Info().Msg("manual commit log deletion armed for 20 rounds")
}

// DiskFull reports whether puts are refused for lack of disk space.
func (s *Store) DiskFull() bool { return s.clean.diskFull.Load() }

func (s *Store) startCleaner() {
	s.checkDisk()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(time.Duration(s.opts.CleanResourceInterval) * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stopCh:
				return
			case <-tick.C:
			}
			s.cleanOnce()
		}
	}()
}

// cleanOnce is one run of the cleaner: disk check, deletion round, queue and
// index pruning.
func (s *Store) cleanOnce() {
	ratio := s.checkDisk()
	before := s.MinPhyOffset()
	s.deleteExpiredCommitLog(ratio)
	if after := s.MinPhyOffset(); after > before {
		s.pruneQueuesAndIndex(after)
	}
	s.reportHung()
}

// checkDisk raises or clears the disk-full flag and returns the larger used
// ratio of the commit-log and consume-queue partitions.
func (s *Store) checkDisk() float64 {
	ratio := s.diskRatio(s.opts.CommitLogDir())
	if r := s.diskRatio(s.opts.ConsumeQueueDir()); r > ratio {
		ratio = r
	}
	full := ratio > s.opts.DiskSpaceWarningLevelRatio
	if s.clean.diskFull.Swap(full) != full {
		if full {
			s.log.Error().Float64("usedRatio", ratio).Float64("limit", s.opts.DiskSpaceWarningLevelRatio).
				Msg("disk nearly full: refusing writes (DISK_FULL) until space returns")
		} else {
			s.log.Info().Float64("usedRatio", ratio).Msg("disk space available again: accepting writes")
		}
	}
	return ratio
}

// deleteWhenNow reports whether the local hour is listed in deleteWhen.
func (s *Store) deleteWhenNow() bool {
	h := time.Now().Hour()
	for _, f := range strings.Split(s.opts.DeleteWhen, ";") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n == h {
			return true
		}
	}
	return false
}

func (s *Store) deleteExpiredCommitLog(ratio float64) {
	maxRatio := float64(min(max(s.opts.DiskMaxUsedSpaceRatio, 10), 95)) / 100
	spaceUp := ratio < 0 || ratio > maxRatio
	manual := false
	if n := s.clean.manualRounds.Load(); n > 0 {
		manual = s.clean.manualRounds.CompareAndSwap(n, n-1)
	}
	if !spaceUp && !manual && !s.deleteWhenNow() {
		return
	}
	forced := s.opts.CleanFileForciblyEnable && ratio > s.opts.DiskSpaceCleanForciblyRatio
	reserved := time.Duration(s.opts.FileReservedTime) * time.Hour
	files := s.cl.q.snapshot()
	var victims []*mappedFile
	for i := 0; i < len(files)-1 && len(victims) < maxFilesPerRound; i++ {
		mf := files[i]
		st, err := mf.f.Stat()
		if err != nil {
			break
		}
		if !forced && time.Since(st.ModTime()) < reserved {
			break // no holes: the first file to keep ends the round
		}
		victims = append(victims, mf)
	}
	if len(victims) == 0 {
		return
	}
	removed := s.cl.q.dropFirst(len(victims))
	for _, mf := range removed {
		if err := os.Remove(mf.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error().Err(err).Str("file", mf.path).Msg("delete commit log file")
		}
		mf.destroy(false)
		if mf.refs.Load() > 0 {
			s.clean.hung = append(s.clean.hung, hungFile{mf: mf, since: time.Now()})
		}
	}
	_ = fsutil.SyncDir(s.cl.q.dir)
	s.log.Info().Int("files", len(removed)).Bool("forced", forced).Bool("manual", manual).Bool("diskOverRatio", spaceUp).
		Float64("usedRatio", ratio).Int64("newMinPhyOffset", s.MinPhyOffset()).Msg("commit log files deleted")
}

// pruneQueuesAndIndex moves consume-queue minimum offsets past clMin and
// deletes consume-queue and index files wholly below it (never a queue's or
// the index's last file).
func (s *Store) pruneQueuesAndIndex(clMin int64) {
	s.cqMu.RLock()
	cqs := make([]*consumeQueue, 0, len(s.cqs))
	for _, cq := range s.cqs {
		cqs = append(cqs, cq)
	}
	s.cqMu.RUnlock()
	for _, cq := range cqs {
		cq.correctMin(clMin)
		minByte := cq.min.Load() * cqUnit
		n := 0
		files := cq.q.snapshot()
		for n < len(files)-1 && files[n].from+files[n].size <= minByte {
			n++
		}
		if n == 0 {
			continue
		}
		for _, mf := range cq.q.dropFirst(n) {
			_ = os.Remove(mf.path)
			mf.destroy(false)
		}
		_ = fsutil.SyncDir(cq.q.dir)
	}
	if ix := s.idx; ix != nil {
		ix.mu.Lock()
		n := 0
		for n < len(ix.files)-1 && ix.files[n].endPhy < clMin {
			n++
		}
		drop := append([]*indexFile(nil), ix.files[:n]...)
		ix.files = append(ix.files[:0], ix.files[n:]...)
		ix.mu.Unlock()
		for _, x := range drop {
			x.close()
			_ = os.Remove(x.path)
		}
		if n > 0 {
			_ = fsutil.SyncDir(ix.dir)
		}
	}
}

// reportHung logs deleted files that readers still hold after
// destroyMapedFileIntervalForcibly.
func (s *Store) reportHung() {
	limit := time.Duration(s.opts.DestroyMapedFileIntervalForcibly) * time.Millisecond
	kept := s.clean.hung[:0]
	for _, h := range s.clean.hung {
		if h.mf.refs.Load() <= 0 {
			continue
		}
		if !h.reported && time.Since(h.since) > limit {
			h.reported = true
			s.log.Warn().Str("file", h.mf.path).Dur("held", time.Since(h.since)).
				Msg("deleted commit log file still mapped by a reader; its space is freed when the reader finishes")
		}
		kept = append(kept, h)
	}
	s.clean.hung = kept
}

// dropFirst removes the n oldest files from the queue and returns them.
func (q *fileQueue) dropFirst(n int) []*mappedFile {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.files)-1)
	if n <= 0 {
		return nil
	}
	out := append([]*mappedFile(nil), q.files[:n]...)
	q.files = append(q.files[:0:0], q.files[n:]...)
	return out
}
