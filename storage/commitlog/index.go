package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mqd/mqd/kernel/fsutil"

	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Message index (RocketMQ IndexFile and IndexService). Each file is a 40-byte
// header, maxHashSlotNum 4-byte slots and maxIndexNum 20-byte entries; a slot
// holds the newest entry of its hash bucket and each entry links to the
// previous one. Keys are "<topic>#<UNIQ_KEY>" and "<topic>#<KEYS token>".
//
// A background indexer follows the commit log (up to what consumers may see:
// the fsynced and dispatched end under SYNC_FLUSH), so the put path pays
// nothing for it, and the same code rebuilds whatever recovery dropped: after a
// crash, files newer than the checkpoint's index time are deleted and the
// indexer starts again from the end of the last kept file. Files are sparse,
// as RocketMQ's (a 420 MB file costs what is written), but mqd reserves
// blocks with fallocate before it writes through the mapping: the header and
// slots when a file is created or opened, entries a chunk ahead of the
// newest, so a full disk fails a reservation (the indexer retries later)
// rather than a write. A file whose slots could not be reserved (written by
// RocketMQ, disk full at start) can still fault on a write: the indexer
// goroutine turns that fault into a panic it recovers from and retries,
// instead of dying on SIGBUS.

const (
	indexHeaderSize = 40
	indexSlotSize   = 4
	indexEntrySize  = 20
	// indexBatch bounds the records indexed per lock hold, so queries wait little.
	indexBatch = 4096
	// indexReserveChunk is how far ahead of the newest entry blocks are reserved.
	indexReserveChunk = 1 << 20
)

type indexFile struct {
	path     string
	f        *os.File
	data     []byte
	slots    int
	maxIndex int32

	// Header, mirrored in data[0:40] (index lock).
	beginTs, endTs, beginPhy, endPhy int64
	slotCount, count                 int32
	flushedCount                     int32

	reserved int64 // bytes below this have blocks (index lock)
}

// reserve gives blocks to the file's bytes below end and a chunk beyond.
func (x *indexFile) reserve(end int64) error {
	if end <= x.reserved {
		return nil
	}
	size := int64(len(x.data))
	to := min(max(end, x.reserved+indexReserveChunk), size)
	if err := unix.Fallocate(int(x.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, x.reserved, to-x.reserved); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			x.reserved = size // cannot reserve: write as RocketMQ does
			return nil
		}
		return fmt.Errorf("reserve index file %s: %w", x.path, err)
	}
	x.reserved = to
	return nil
}

// entryEnd is the end of the next entry's bytes.
func (x *indexFile) entryEnd() int64 {
	return indexHeaderSize + int64(x.slots)*indexSlotSize + int64(x.count+1)*indexEntrySize
}

func indexFileSize(slots, maxIndex int) int64 {
	return indexHeaderSize + int64(slots)*indexSlotSize + int64(maxIndex)*indexEntrySize
}

// indexFileName is the creation time as yyyyMMddHHmmssSSS (local time).
func indexFileName(t time.Time) string {
	return t.Format("20060102150405") + fmt.Sprintf("%03d", t.Nanosecond()/1e6)
}

func mapIndexFile(path string, slots, maxIndex int, create bool) (*indexFile, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	size := indexFileSize(slots, maxIndex)
	var header [indexHeaderSize]byte
	if create {
		// Sparse, as in RocketMQ; x.reserve gives blocks before any write.
		if err := f.Truncate(size); err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
	} else if st, err := f.Stat(); err != nil || st.Size() != size {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: size %d, want %d for maxHashSlotNum %d and maxIndexNum %d", path, st.Size(), size, slots, maxIndex)
		}
		return nil, err
	} else {
		// Read the header with a read, not through the mapping: a hole in a
		// sparse file faults on tmpfs when it is full.
		if _, err := f.ReadAt(header[:], 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		if create {
			os.Remove(path)
		}
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	x := &indexFile{path: path, f: f, data: data, slots: slots, maxIndex: int32(maxIndex)}
	if create {
		x.count = 1 // entry 0 is never used: 0 means "none"
		if err := x.reserve(x.entryEnd()); err != nil {
			x.close()
			os.Remove(path)
			return nil, err
		}
		x.writeHeader()
	} else {
		be, h := binary.BigEndian, header[:]
		x.beginTs = int64(be.Uint64(h[0:]))
		x.endTs = int64(be.Uint64(h[8:]))
		x.beginPhy = int64(be.Uint64(h[16:]))
		x.endPhy = int64(be.Uint64(h[24:]))
		x.slotCount = int32(be.Uint32(h[32:]))
		x.count = int32(be.Uint32(h[36:]))
		x.flushedCount = x.count
		if x.count < 1 || x.count > x.maxIndex {
			x.close()
			return nil, fmt.Errorf("%s: corrupt header (index count %d)", path, x.count)
		}
		if !x.full() {
			// Best effort: a failure leaves the reservation to the next put.
			_ = x.reserve(x.entryEnd())
		}
	}
	return x, nil
}

func (x *indexFile) writeHeader() {
	be := binary.BigEndian
	be.PutUint64(x.data[0:], uint64(x.beginTs))
	be.PutUint64(x.data[8:], uint64(x.endTs))
	be.PutUint64(x.data[16:], uint64(x.beginPhy))
	be.PutUint64(x.data[24:], uint64(x.endPhy))
	be.PutUint32(x.data[32:], uint32(x.slotCount))
	be.PutUint32(x.data[36:], uint32(x.count))
}

func (x *indexFile) full() bool { return x.count >= x.maxIndex }

// put adds one key (IndexFile.putKey); false when the file is full.
func (x *indexFile) put(hash int32, phy, ts int64) bool {
	if x.full() {
		return false
	}
	be := binary.BigEndian
	slotPos := indexHeaderSize + int(hash)%x.slots*indexSlotSize
	prev := int32(be.Uint32(x.data[slotPos:]))
	if prev <= 0 || prev >= x.count {
		prev = 0
	}
	if x.count == 1 {
		if x.beginTs == 0 {
			x.beginTs = ts
		}
		if x.beginPhy == 0 {
			x.beginPhy = phy
		}
	}
	diff := (ts - x.beginTs) / 1000
	diff = min(max(diff, 0), math.MaxInt32)
	e := x.data[indexHeaderSize+x.slots*indexSlotSize+int(x.count)*indexEntrySize:]
	be.PutUint32(e, uint32(hash))
	be.PutUint64(e[4:], uint64(phy))
	be.PutUint32(e[12:], uint32(diff))
	be.PutUint32(e[16:], uint32(prev))
	be.PutUint32(x.data[slotPos:], uint32(x.count))
	if prev == 0 {
		x.slotCount++
	}
	x.count++
	x.endPhy, x.endTs = phy, ts
	x.writeHeader()
	return true
}

// timeMatched is IndexFile.isTimeMatched.
func (x *indexFile) timeMatched(begin, end int64) bool {
	return (begin < x.beginTs && end > x.endTs) || (begin >= x.beginTs && begin <= x.endTs) || (end >= x.beginTs && end <= x.endTs)
}

// selectOffsets walks a key's chain (IndexFile.selectPhyOffset) and hands
// every offset whose hash and time match to accept, until accept says stop.
func (x *indexFile) selectOffsets(hash int32, begin, end int64, accept func(phy int64) bool) {
	be := binary.BigEndian
	slotPos := indexHeaderSize + int(hash)%x.slots*indexSlotSize
	cur := int32(be.Uint32(x.data[slotPos:]))
	for steps := int32(0); cur > 0 && cur < x.count && steps < x.count; steps++ {
		e := x.data[indexHeaderSize+x.slots*indexSlotSize+int(cur)*indexEntrySize:]
		h := int32(be.Uint32(e))
		phy := int64(be.Uint64(e[4:]))
		diff := int32(be.Uint32(e[12:]))
		prev := int32(be.Uint32(e[16:]))
		if diff < 0 {
			return
		}
		t := x.beginTs + int64(diff)*1000
		if h == hash && t >= begin && t <= end && !accept(phy) {
			return
		}
		if prev <= 0 || prev >= cur || t < begin {
			return
		}
		cur = prev
	}
}

func (x *indexFile) flush() error {
	if x.flushedCount == x.count {
		return nil
	}
	if err := unix.Msync(x.data, unix.MS_SYNC); err != nil {
		return fmt.Errorf("msync %s: %w", x.path, err)
	}
	x.flushedCount = x.count
	return nil
}

func (x *indexFile) close() {
	if x.data != nil {
		_ = unix.Munmap(x.data)
		x.data = nil
	}
	_ = x.f.Close()
}

// javaHash continues Java's String.hashCode over s (UTF-16 code units).
func javaHash[T ~string | ~[]byte](h int32, s T) int32 {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		var r rune
		var n int
		switch v := any(s).(type) {
		case string:
			r, n = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, n = utf8.DecodeRune(v[i:])
		default:
			r, n = utf8.DecodeRuneInString(string(s[i:]))
		}
		i += n
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
		} else {
			h = 31*h + int32(r)
		}
	}
	return h
}

// indexKeyHash is abs(("<topic>#<key>").hashCode()), 0 for Integer.MIN_VALUE.
func indexKeyHash[T ~string | ~[]byte](topic, key T) int32 {
	h := javaHash(javaHash(0, topic), "#")
	h = javaHash(h, key)
	if h < 0 {
		h = -h
	}
	if h < 0 {
		h = 0
	}
	return h
}

// indexService owns the index files.
type indexService struct {
	dir      string
	slots    int
	maxIndex int

	mu    sync.RWMutex
	files []*indexFile

	// Indexer goroutine only.
	next      int64 // commit-log offset to index next
	skipAt    int64 // the record here is already indexed (-1: none)
	lastFault time.Time
	wake      chan struct{}
}

// openIndex loads the index files after commit-log recovery and decides where
// the indexer resumes. After a crash, files changed since the last index
// flush recorded in the checkpoint are dropped (they may be partial), and
// so are files that reach past the recovered commit log.
func (s *Store) openIndex(lastExitOK bool) error {
	if !s.opts.MessageIndexEnable {
		return nil
	}
	ix := &indexService{dir: s.opts.IndexDir(), slots: s.opts.MaxHashSlotNum, maxIndex: s.opts.MaxIndexNum,
		skipAt: -1, wake: make(chan struct{}, 1)}
	if err := os.MkdirAll(ix.dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(ix.dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && len(n) == 17 {
			if _, err := strconv.ParseUint(n, 10, 64); err == nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	clMin, clMax := s.MinPhyOffset(), s.MaxPhyOffset()
	cpIndex := s.cp.indexTimestamp()
	dropRest := false
	for _, n := range names {
		path := filepath.Join(ix.dir, n)
		if !dropRest {
			x, err := mapIndexFile(path, ix.slots, ix.maxIndex, false)
			switch {
			case err != nil:
				s.log.Warn().Err(err).Str("file", path).Msg("index file unusable; rebuilding the index from here")
				dropRest = true
			case x.count > 1 && x.endPhy >= clMax:
				s.log.Warn().Str("file", path).Int64("endPhyOffset", x.endPhy).Int64("commitLogMax", clMax).
					Msg("index file reaches past the commit log; rebuilding it")
				x.close()
				dropRest = true
			case !lastExitOK && x.endTs > cpIndex:
				x.close()
				dropRest = true // not known flushed: rebuild from the previous file's end
			default:
				ix.files = append(ix.files, x)
				continue
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if dropRest {
		if err := fsutil.SyncDir(ix.dir); err != nil {
			return err
		}
	}
	ix.next = clMin
	if n := len(ix.files); n > 0 {
		last := ix.files[n-1]
		switch {
		case last.count > 1:
			ix.next, ix.skipAt = last.endPhy, last.endPhy
		case last.beginPhy > 0:
			ix.next, ix.skipAt = last.beginPhy, last.beginPhy
		}
	}
	if ix.next < clMin {
		ix.next, ix.skipAt = clMin, -1
	}
	s.idx = ix
	s.log.Debug().Int("files", len(ix.files)).Int64("resumeAt", ix.next).Int64("commitLogMax", clMax).Msg("index loaded")
	return nil
}

// indexLimit is how far the indexer may read: what consumers can see.
func (s *Store) indexLimit() int64 {
	if s.syncFlush {
		return s.syncedWhere.Load()
	}
	return s.cl.q.maxOffset()
}

// wakeIndexer nudges the indexer (non-blocking).
func (s *Store) wakeIndexer() {
	if s.idx != nil {
		select {
		case s.idx.wake <- struct{}{}:
		default:
		}
	}
}

// indexLoop is the indexer goroutine.
func (s *Store) indexLoop() {
	defer s.wg.Done()
	// A write to a sparse index page on a full disk raises SIGBUS; make it a
	// recoverable panic on this goroutine.
	debug.SetPanicOnFault(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stopCh:
			s.indexRound()
			return
		case <-s.idx.wake:
		case <-tick.C:
		}
		s.indexRound()
	}
}

// indexRound indexes the records from ix.next up to the visible end.
func (s *Store) indexRound() {
	ix := s.idx
	limit := s.indexLimit()
	for ix.next < limit {
		if ok := s.indexChunk(limit); !ok {
			return
		}
	}
}

// indexChunk indexes up to indexBatch records of one commit-log file under
// the index lock; false when no progress can be made now.
func (s *Store) indexChunk(limit int64) (ok bool) {
	ix := s.idx
	mf := s.cl.q.find(ix.next)
	if mf == nil {
		if lo := s.MinPhyOffset(); ix.next < lo {
			ix.next, ix.skipAt = lo, -1 // retention deleted what was not indexed yet
			return true
		}
		return false
	}
	defer mf.release()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			ok = false
			if time.Since(ix.lastFault) > time.Minute {
				ix.lastFault = time.Now()
				s.log.Error().Interface("fault", r).Str("dir", ix.dir).
					Msg("writing the index failed (disk full?); indexing retries and queries may miss recent messages")
			}
		}
	}()
	pos := ix.next - mf.from
	end := min(mf.wrote.Load(), limit-mf.from)
	for n := 0; pos < end && n < indexBatch; n++ {
		size, err := message.CheckRecord(mf.data[pos:end], false)
		if errors.Is(err, message.ErrBlankRecord) {
			pos = mf.size
			break
		}
		if err != nil {
			s.log.Error().Err(err).Int64("offset", mf.from+pos).Str("file", mf.path).
				Msg("unreadable record while indexing; skipping the rest of the file")
			pos = mf.size
			break
		}
		phy := mf.from + pos
		if phy != ix.skipAt {
			if err := s.indexRecord(mf.data[pos:pos+int64(size)], phy); err != nil {
				s.log.Error().Err(err).Msg("index file creation failed; indexing retries")
				ix.next = phy
				return false
			}
		}
		pos += int64(size)
	}
	if pos >= mf.size {
		pos = mf.size
	}
	ix.next = mf.from + pos
	ix.skipAt = -1
	return true
}

// indexRecord adds a record's keys (index lock held).
func (s *Store) indexRecord(rec []byte, phy int64) error {
	topic, props, _, _, ts, sysFlag, err := message.RecordFields(rec)
	if err != nil || message.TranType(sysFlag) == message.SysFlagTranRollback {
		return nil
	}
	if uk := message.PropertyBytes(props, message.PropertyUniqKey); len(uk) > 0 {
		if err := s.indexPut(indexKeyHash(topic, uk), phy, ts); err != nil {
			return err
		}
	}
	keys := message.PropertyBytes(props, message.PropertyKeys)
	for len(keys) > 0 {
		i := 0
		for i < len(keys) && keys[i] != ' ' {
			i++
		}
		if i > 0 {
			if err := s.indexPut(indexKeyHash(topic, keys[:i]), phy, ts); err != nil {
				return err
			}
		}
		if i < len(keys) {
			i++
		}
		keys = keys[i:]
	}
	return nil
}

func (s *Store) indexPut(hash int32, phy, ts int64) error {
	ix := s.idx
	var last *indexFile
	if n := len(ix.files); n > 0 {
		last = ix.files[n-1]
		if !last.full() {
			if err := last.reserve(last.entryEnd()); err != nil {
				return err
			}
			last.put(hash, phy, ts)
			return nil
		}
	}
	x, err := s.newIndexFile(last)
	if err != nil {
		return err
	}
	x.put(hash, phy, ts)
	return nil
}

// newIndexFile starts the next file (index lock held). A full predecessor is
// flushed and its end time recorded in the checkpoint, so a later crash
// recovery keeps it.
func (s *Store) newIndexFile(prev *indexFile) (*indexFile, error) {
	ix := s.idx
	if prev != nil {
		if err := prev.flush(); err != nil {
			return nil, err
		}
		s.cp.setIndex(prev.endTs)
		if err := s.cp.flush(); err != nil {
			return nil, err
		}
	}
	t := time.Now()
	var x *indexFile
	var err error
	for range 1000 {
		x, err = mapIndexFile(filepath.Join(ix.dir, indexFileName(t)), ix.slots, ix.maxIndex, true)
		if !errors.Is(err, os.ErrExist) {
			break
		}
		t = t.Add(time.Millisecond) // two files in one millisecond: names must differ
	}
	if err != nil {
		return nil, err
	}
	if prev != nil {
		x.beginTs, x.endTs, x.beginPhy, x.endPhy = prev.endTs, prev.endTs, prev.endPhy, prev.endPhy
		x.writeHeader()
	}
	if err := fsutil.SyncDir(ix.dir); err != nil {
		x.close()
		os.Remove(x.path)
		return nil, err
	}
	ix.files = append(ix.files, x)
	return x, nil
}

// flushIndex msyncs the index files and records the newest flushed end time
// in the checkpoint (flushed by the caller).
func (s *Store) flushIndex() error {
	if s.idx == nil {
		return nil
	}
	ix := s.idx
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var ts int64
	for _, x := range ix.files {
		if err := x.flush(); err != nil {
			return err
		}
		ts = max(ts, x.endTs)
	}
	if ts > 0 {
		s.cp.setIndex(ts)
	}
	return nil
}

func (s *Store) closeIndex() {
	if s.idx == nil {
		return
	}
	s.idx.mu.Lock()
	for _, x := range s.idx.files {
		x.close()
	}
	s.idx.files = nil
	s.idx.mu.Unlock()
}

// QueryMessages implements storage.Store (IndexService.queryOffset plus
// DefaultMessageStore.queryMessage). Candidates are checked against the
// record (topic and key), so hash collisions and stale entries are dropped.
func (s *Store) QueryMessages(topic, key string, maxNum int, begin, end int64, uniqKey bool) (storage.QueryResult, error) {
	var res storage.QueryResult
	if s.idx == nil {
		return res, errors.New("the message index is disabled (messageIndexEnable=false)")
	}
	if !s.running.Load() {
		return res, errNotRunning
	}
	if uniqKey {
		maxNum = s.opts.DefaultQueryMaxNum
	}
	maxNum = min(maxNum, s.opts.MaxMsgsNumBatch)
	if maxNum <= 0 || topic == "" || key == "" {
		return res, nil
	}
	if end <= 0 {
		end = math.MaxInt64
	}
	hash := indexKeyHash(topic, key)
	ix := s.idx
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	accept := func(phy int64) bool {
		for _, o := range res.Offsets {
			if o == phy {
				return true
			}
		}
		if s.recordHasKey(phy, topic, key, uniqKey) {
			res.Offsets = append(res.Offsets, phy)
		}
		return len(res.Offsets) < maxNum
	}
	for i := len(ix.files) - 1; i >= 0; i-- {
		x := ix.files[i]
		if i == len(ix.files)-1 {
			res.IndexLastUpdateTimestamp, res.IndexLastUpdatePhyOffset = x.endTs, x.endPhy
		}
		if x.count > 1 && x.timeMatched(begin, end) {
			x.selectOffsets(hash, begin, end, accept)
		}
		if x.beginTs < begin || len(res.Offsets) >= maxNum {
			break
		}
	}
	return res, nil
}

// recordHasKey checks that the record at phy belongs to topic and carries key
// as its unique key or (unless uniqOnly) as one of its KEYS.
func (s *Store) recordHasKey(phy int64, topic, key string, uniqOnly bool) bool {
	mf, rec := s.recordAt(phy, 0)
	if mf == nil {
		return false
	}
	defer mf.release()
	t, props, _, _, _, _, err := message.RecordFields(rec)
	if err != nil || string(t) != topic {
		return false
	}
	if string(message.PropertyBytes(props, message.PropertyUniqKey)) == key {
		return true
	}
	if uniqOnly {
		return false
	}
	keys := message.PropertyBytes(props, message.PropertyKeys)
	for len(keys) > 0 {
		i := 0
		for i < len(keys) && keys[i] != ' ' {
			i++
		}
		if string(keys[:i]) == key {
			return true
		}
		if i < len(keys) {
			i++
		}
		keys = keys[i:]
	}
	return false
}
