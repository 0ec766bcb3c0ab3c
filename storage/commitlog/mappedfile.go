package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/kernel/fsutil"

	"golang.org/x/sys/unix"
)

// pageSize is RocketMQ's flush granularity (MappedFile.OS_PAGE_SIZE).
const pageSize = 4096

// Sparse files (the consume queues) get blocks in chunks just ahead of their
// writes instead of all at creation: a consume-queue file is 5.7 MiB and every
// queue of every topic has one, so reserving them whole costs gigabytes for
// topics that hold a few messages (docs/store.md, "Consume-queue files are
// sparse").
// The chunk doubles from one page up to allocMaxChunk as a queue grows.
const allocMaxChunk = 1 << 20

// sysPageSize is the unit of a fault: a page written through a mapping
// needs blocks for the whole of it, so allocations round to it (64 KiB on
// some arm64 kernels, not RocketMQ's 4 KiB flush unit).
var sysPageSize = int64(os.Getpagesize())

// fileName is the 20-digit zero-padded start offset (UtilAll.offset2FileName).
func fileName(offset int64) string { return fmt.Sprintf("%020d", offset) }

// mappedFile is one preallocated, fully mapped file of a file queue. Positions
// are relative to the file start. Only the owner's single writer moves wrote;
// readers see bytes below wrote (a release store after the copy).
type mappedFile struct {
	path    string
	from    int64 // global offset of byte 0
	size    int64
	f       *os.File
	data    []byte
	wrote   atomic.Int64
	flushed atomic.Int64

	// Write buffer (writebuffer.go): appends are staged here up to staged
	// and committed into the file; nil when appends go through the mapping.
	wbuf     []byte
	staged   atomic.Int64
	released int64 // wbuf pages below this are handed back to the OS

	// Pages below warmed are zero-filled ahead of the writer or claimed by
	// it; the warmer writes only above it, holding warmMu (warm.go).
	warmMu sync.Mutex
	warmed atomic.Int64

	// Bytes below allocated have blocks behind them, so writes through the
	// mapping there cannot fault on a full disk. Whole files are allocated
	// at creation; sparse ones grow it with allocate.
	sparse    bool
	allocMu   sync.Mutex
	allocated atomic.Int64

	// refs counts the owner's reference (1) plus readers holding the file.
	// The mapping is released when it reaches 0 after destroy.
	refs      atomic.Int64
	destroyed atomic.Bool
	remove    atomic.Bool // delete the file once unmapped
}

// createMappedFile creates (or reuses, if it already has the right size) the file
// at dir/<from> and maps it. A whole file gets its blocks now and its
// directory entry is made durable; a sparse one is only sized (allocate gives
// it blocks, and its owner syncs the directory off the write path).
func createMappedFile(dir string, from, size int64, sparse bool) (*mappedFile, error) {
	path := filepath.Join(dir, fileName(from))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != size {
		if st.Size() > size {
			f.Close()
			return nil, fmt.Errorf("%s: size %d larger than the mapped file size %d", path, st.Size(), size)
		}
		if sparse {
			if err := f.Truncate(size); err != nil {
				f.Close()
				os.Remove(path)
				return nil, err
			}
		} else {
			if err := reserveWhole(f, path, size); err != nil {
				f.Close()
				os.Remove(path)
				return nil, err
			}
			if err := fsutil.SyncDir(dir); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	return mapFile(f, path, from, size, sparse)
}

// reserveWhole gives the file blocks for all its size now, so a full disk
// fails here and not as SIGBUS on a write through the mapping.
func reserveWhole(f *os.File, path string, size int64) error {
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("preallocate %s: %w", path, err)
		}
		return f.Truncate(size)
	}
	return nil
}

// extendFile grows a short file to size: a whole file with reserved blocks (a
// sparse tail would fault on a full disk when written through the mapping), a
// sparse one with a hole that allocate fills as it is written.
func extendFile(path string, size int64, sparse bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if sparse {
		return f.Truncate(size)
	}
	return reserveWhole(f, path, size)
}

// openMappedFile maps an existing file, which must be exactly size bytes.
func openMappedFile(path string, from, size int64, sparse bool) (*mappedFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != size {
		f.Close()
		return nil, fmt.Errorf("%s: size %d, want %d (the mapped file size setting must not change while files exist)", path, st.Size(), size)
	}
	return mapFile(f, path, from, size, sparse)
}

// mapFile maps f. A sparse file counts as allocated up to its first hole.
func mapFile(f *os.File, path string, from, size int64, sparse bool) (*mappedFile, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		if errors.Is(err, unix.ENOMEM) {
			// Every commit-log, consume-queue and index file is one mapping.
			return nil, fmt.Errorf("mmap %s: %w (is vm.max_map_count too low for this many queues? see docs/store.md)", path, err)
		}
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	mf := &mappedFile{path: path, from: from, size: size, f: f, data: data, sparse: sparse}
	mf.refs.Store(1)
	mf.allocated.Store(size)
	if sparse {
		// Blocks end at the first hole (written sequentially from byte 0).
		// Without SEEK_HOLE, assume the whole file is backed.
		if hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err == nil && hole < size {
			// Rounded down to a whole page: with blocks smaller than
			// pages, the page holding the hole is not backed throughout.
			mf.allocated.Store(hole &^ (sysPageSize - 1))
		}
		// No read-around on faults: with the usual read_ahead_kb (8 MiB
		// here) the first write to a new consume-queue file would fault in
		// and zero the whole 5.7 MiB file, milliseconds for a 20-byte
		// entry. Readers fault a page (204 entries) at a time; recovery asks
		// for what it scans (consumeQueue.recover).
		_ = unix.Madvise(data, unix.MADV_RANDOM)
		// The mapping outlives the descriptor, and one descriptor per queue
		// file would run into the open-file limit (20,000 here) long before
		// 10,000 topics; withFD opens the file again for the rare calls
		// that need one.
		_ = f.Close()
		mf.f = nil
	}
	return mf, nil
}

// withFD runs fn with a descriptor of the file: its own, or (for a sparse
// file, which keeps none) one opened for the call.
func (m *mappedFile) withFD(fn func(fd int) error) error {
	if m.f != nil {
		return fn(int(m.f.Fd()))
	}
	f, err := os.OpenFile(m.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(int(f.Fd()))
}

// allocate gives blocks to the bytes below end and a chunk beyond (safe from
// any goroutine while the file is held). It fails, rather than a later write
// through the mapping faulting, when the disk is full.
func (m *mappedFile) allocate(end int64) error {
	if end <= m.allocated.Load() {
		return nil
	}
	m.allocMu.Lock()
	defer m.allocMu.Unlock()
	have := m.allocated.Load()
	if end <= have {
		return nil
	}
	chunk := min(max(have, sysPageSize), allocMaxChunk)
	to := min((max(end, have+chunk)+sysPageSize-1)&^(sysPageSize-1), m.size)
	err := m.withFD(func(fd int) error { return unix.Fallocate(fd, 0, have, to-have) })
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			m.allocated.Store(m.size) // cannot reserve: write as RocketMQ does
			return nil
		}
		return fmt.Errorf("reserve %s: %w", m.path, err)
	}
	m.allocated.Store(to)
	return nil
}

// hold takes a reader reference; false if the file is being destroyed.
func (m *mappedFile) hold() bool {
	for {
		r := m.refs.Load()
		if r <= 0 || m.destroyed.Load() {
			return false
		}
		if m.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release drops a reference; the last one unmaps (and deletes when asked).
func (m *mappedFile) release() {
	if m.refs.Add(-1) == 0 {
		m.freeWriteBuffer()
		_ = unix.Munmap(m.data)
		m.data = nil
		if m.f != nil {
			_ = m.f.Close()
		}
		if m.remove.Load() {
			_ = os.Remove(m.path)
		}
	}
}

// destroy drops the owner's reference: the mapping goes once readers release.
func (m *mappedFile) destroy(removeFile bool) {
	if removeFile {
		m.remove.Store(true)
	}
	if m.destroyed.CompareAndSwap(false, true) {
		m.release()
	}
}

func (m *mappedFile) full() bool { return m.wrote.Load() >= m.size }

// flush msyncs the written but unflushed range when at least leastPages dirty
// pages are pending (or the file is full, or leastPages is 0). It returns the
// flushed position.
func (m *mappedFile) flush(leastPages int) (int64, error) {
	wrote := m.wrote.Load()
	flushed := m.flushed.Load()
	if wrote <= flushed {
		return flushed, nil
	}
	if leastPages > 0 && wrote < m.size && wrote/pageSize-flushed/pageSize < int64(leastPages) {
		return flushed, nil
	}
	start := flushed &^ (pageSize - 1)
	end := wrote
	if err := unix.Msync(m.data[start:end], unix.MS_SYNC); err != nil {
		return flushed, fmt.Errorf("msync %s: %w", m.path, err)
	}
	for {
		cur := m.flushed.Load()
		if cur >= wrote || m.flushed.CompareAndSwap(cur, wrote) {
			break
		}
	}
	return wrote, nil
}

// zeroFrom clears [pos, size): stale bytes after a truncation point must not
// look like records to a later recovery. Whole pages are zeroed by the file
// system, keeping their blocks: appends write there through the mapping, and
// a page with no block behind it raises SIGBUS when the disk is full. The
// partial first page is cleared through the mapping.
func (m *mappedFile) zeroFrom(pos int64) error {
	if pos >= m.size {
		return nil
	}
	pageStart := (pos + pageSize - 1) &^ (pageSize - 1)
	if pageStart > m.size {
		pageStart = m.size
	}
	clear(m.data[pos:pageStart])
	if pageStart < m.size && m.sparse {
		// A sparse file gives the tail's blocks back from the next whole
		// system page (the one holding pos stays backed throughout, since
		// allocations cover whole pages); allocate reserves them again
		// before the next write there (a consume queue's put path forgets
		// what it reserved: dropReserved).
		sysStart := min((pos+sysPageSize-1)&^(sysPageSize-1), m.size)
		clear(m.data[pageStart:sysStart])
		m.allocMu.Lock()
		err := m.withFD(func(fd int) error {
			if sysStart == m.size {
				return nil
			}
			return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, sysStart, m.size-sysStart)
		})
		if err == nil {
			m.allocated.Store(min(m.allocated.Load(), sysStart))
		}
		m.allocMu.Unlock()
		if err != nil {
			m.clearWrittenPages(sysStart, m.allocated.Load())
		}
	} else if pageStart < m.size {
		fd, n := int(m.f.Fd()), m.size-pageStart
		err := unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, pageStart, n)
		if err != nil {
			// No ZERO_RANGE (tmpfs): punch the pages out and reserve them
			// again, which can use the blocks the punch has just freed.
			if err = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, pageStart, n); err == nil {
				if err := unix.Fallocate(fd, 0, pageStart, n); err != nil {
					return fmt.Errorf("reserve %s after zeroing its tail: %w", m.path, err)
				}
			}
		}
		if err != nil {
			m.clearWrittenPages(pageStart, m.size)
		}
	}
	return unix.Msync(m.data[pos&^(pageSize-1):], unix.MS_SYNC)
}

// clearWrittenPages clears [from, to) through the mapping where hole punching
// is not available, page by page and only where something is written, to
// avoid dirtying a whole file (a sparse one passes its allocated end: its
// holes read as zeros, and touching them could allocate).
func (m *mappedFile) clearWrittenPages(from, to int64) {
	for p := from; p < to; p += pageSize {
		pg := m.data[p:min(p+pageSize, to)]
		if !allZero(pg) {
			clear(pg)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fileQueue is an ordered series of equally sized mapped files named by start
// offset (RocketMQ MappedFileQueue).
type fileQueue struct {
	dir      string
	fileSize int64

	// sparse queues (consume queues) create files without reserving them
	// whole and leave their directory entries to the consume-queue flush
	// (dirsToSync), which syncs them before the checkpoint counts on them.
	sparse   bool
	dirDirty atomic.Bool // files created in dir since the last dirsToSync
	dirNew   atomic.Bool // dir itself (and perhaps its parent) created since

	mu    sync.RWMutex
	files []*mappedFile
}

// loadFileQueue maps the files in dir. Every name must be a 20-digit offset and
// every file exactly fileSize bytes; positions start at the file size and
// recovery fixes the tail.
func loadFileQueue(dir string, fileSize int64, sparse bool) (*fileQueue, error) {
	q := &fileQueue{dir: dir, fileSize: fileSize, sparse: sparse}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return q, nil
		}
		return nil, err
	}
	var offs []int64
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		n := e.Name()
		off, err := strconv.ParseInt(n, 10, 64)
		if err != nil || len(n) != 20 {
			continue // not ours (editor backups, lost+found ...)
		}
		if off%fileSize != 0 {
			return nil, fmt.Errorf("%s: offset %d is not a multiple of the file size %d", filepath.Join(dir, n), off, fileSize)
		}
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	for i, off := range offs {
		if i > 0 && off != offs[i-1]+fileSize {
			q.close()
			return nil, fmt.Errorf("%s: gap between files %s and %s", dir, fileName(offs[i-1]), fileName(off))
		}
		path := filepath.Join(dir, fileName(off))
		if i == len(offs)-1 {
			// The newest file may be short after a crash during its creation
			// or a truncation by hand: extend it with zeros (an empty tail
			// that recovery handles like any end of data).
			if st, err := os.Stat(path); err == nil && st.Size() < fileSize {
				if err := extendFile(path, fileSize, sparse); err != nil {
					q.close()
					return nil, err
				}
			}
		}
		mf, err := openMappedFile(path, off, fileSize, sparse)
		if err != nil {
			q.close()
			return nil, err
		}
		mf.wrote.Store(fileSize)
		mf.flushed.Store(fileSize)
		q.files = append(q.files, mf)
	}
	return q, nil
}

func (q *fileQueue) close() {
	q.mu.Lock()
	files := q.files
	q.files = nil
	q.mu.Unlock()
	for _, f := range files {
		f.destroy(false)
	}
}

// last returns the newest file (nil if none). Not held: only the writer and
// code that owns the queue's lifecycle use it.
func (q *fileQueue) last() *mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.files) == 0 {
		return nil
	}
	return q.files[len(q.files)-1]
}

func (q *fileQueue) first() *mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.files) == 0 {
		return nil
	}
	return q.files[0]
}

func (q *fileQueue) snapshot() []*mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return append([]*mappedFile(nil), q.files...)
}

// minOffset is the start of the first file.
func (q *fileQueue) minOffset() int64 {
	if f := q.first(); f != nil {
		return f.from
	}
	return 0
}

// maxOffset is the global write position.
func (q *fileQueue) maxOffset() int64 {
	if f := q.last(); f != nil {
		return f.from + f.wrote.Load()
	}
	return 0
}

// find returns the held file containing offset, or nil.
func (q *fileQueue) find(offset int64) *mappedFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.files) == 0 || offset < q.files[0].from {
		return nil
	}
	i := (offset - q.files[0].from) / q.fileSize
	if i >= int64(len(q.files)) {
		return nil
	}
	f := q.files[i]
	if offset >= f.from+f.size || !f.hold() {
		return nil
	}
	return f
}

// appendFile adds a file after the last one.
func (q *fileQueue) appendFile(mf *mappedFile) {
	q.mu.Lock()
	q.files = append(q.files, mf)
	q.mu.Unlock()
}

// newFile creates the file at from and appends it.
func (q *fileQueue) newFile(from int64) (*mappedFile, error) {
	mf, err := q.create(from)
	if err != nil {
		return nil, err
	}
	q.appendFile(mf)
	return mf, nil
}

// create creates and maps the file at from without appending it.
func (q *fileQueue) create(from int64) (*mappedFile, error) {
	if q.sparse {
		if _, err := os.Stat(q.dir); errors.Is(err, os.ErrNotExist) {
			q.dirNew.Store(true)
		}
	}
	if err := os.MkdirAll(q.dir, 0o755); err != nil {
		return nil, err
	}
	mf, err := createMappedFile(q.dir, from, q.fileSize, q.sparse)
	if err == nil && q.sparse {
		q.dirDirty.Store(true)
	}
	return mf, err
}

// dirsToSync adds the directories whose entries a sparse queue created since
// the last call: its own, and its parent and grandparent when it made its
// directory (a topic's first queue creates the topic directory too).
func (q *fileQueue) dirsToSync(dirs map[string]struct{}) {
	if q.dirNew.Swap(false) {
		parent := filepath.Dir(q.dir)
		dirs[parent] = struct{}{}
		dirs[filepath.Dir(parent)] = struct{}{}
	}
	if q.dirDirty.Swap(false) {
		dirs[q.dir] = struct{}{}
	}
}

// truncate sets the write position to offset: the file holding it keeps its
// bytes below offset and is zeroed from there; later files are deleted.
func (q *fileQueue) truncate(offset int64) error {
	q.mu.Lock()
	var keep, drop []*mappedFile
	for _, f := range q.files {
		if f.from+f.size <= offset {
			keep = append(keep, f)
			continue
		}
		if f.from <= offset {
			pos := offset - f.from
			if f.wrote.Load() > pos || f.wrote.Load() == f.size {
				if err := f.zeroFrom(pos); err != nil {
					q.mu.Unlock()
					return err
				}
			}
			f.wrote.Store(pos)
			f.flushed.Store(pos)
			if f.wbuf != nil {
				f.staged.Store(pos)
				f.released = min(f.released, pos&^(pageSize-1))
			}
			keep = append(keep, f)
			continue
		}
		drop = append(drop, f)
	}
	q.files = keep
	q.mu.Unlock()
	for _, f := range drop {
		f.destroy(true)
	}
	if len(drop) > 0 {
		return fsutil.SyncDir(q.dir)
	}
	return nil
}

// flush flushes files from the one holding from on; it returns the new flushed
// global offset.
func (q *fileQueue) flush(from int64, leastPages int) (int64, error) {
	files := q.snapshot()
	flushedTo := from
	for _, f := range files {
		if f.from+f.size <= from {
			continue
		}
		if !f.hold() {
			continue
		}
		pos, err := f.flush(leastPages)
		f.release()
		if err != nil {
			return flushedTo, err
		}
		flushedTo = f.from + pos
		if pos < f.size {
			break
		}
	}
	return flushedTo, nil
}
