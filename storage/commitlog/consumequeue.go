package commitlog

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// cqUnit is the size of a consume-queue entry: commit-log offset (8), record
// size (4), tags code (8).
const cqUnit = 20

// placeholderSize marks the entries written before the first real entry of a
// queue whose first file starts mid-stream (RocketMQ fillPreBlank).
const placeholderSize = math.MaxInt32

type queueKey struct {
	topic   string
	queueID int32
}

// consumeQueue is one (topic, queueId) index into the commit log. Only the
// dispatcher writes it; readers see entries below max.
type consumeQueue struct {
	topic   string
	queueID int32
	q       *fileQueue
	max     atomic.Int64 // next logical offset
	min     atomic.Int64 // first readable logical offset
	maxPhy  int64        // end of the newest entry's record (dispatcher only)

	// Files the put path created ahead of the dispatcher (reserve), so that
	// a full disk fails the put before its record is appended rather than
	// its dispatch after (which would fence the store).
	resMu    sync.Mutex
	reserved []*mappedFile
	resEnd   atomic.Int64 // byte end the put path knows has files and blocks
}

// reserve makes sure the entry bytes [start, end) have files and blocks (put
// lock held): the queue's own or reserved files, or new ones created and
// reserved, are allocated up to end and a chunk beyond.
func (c *consumeQueue) reserve(start, end int64) error {
	if end <= c.resEnd.Load() {
		return nil
	}
	c.resMu.Lock()
	defer c.resMu.Unlock()
	for pos := start; pos < end; {
		mf, err := c.reservedFileAt(pos)
		if err != nil {
			return fmt.Errorf("consume queue %s/%d: %w", c.topic, c.queueID, err)
		}
		upTo := min(end, mf.from+mf.size)
		err = mf.allocate(upTo - mf.from)
		covered := mf.from + mf.allocated.Load()
		mf.release()
		if err != nil {
			return fmt.Errorf("consume queue %s/%d: %w", c.topic, c.queueID, err)
		}
		c.resEnd.Store(covered)
		pos = upTo
	}
	return nil
}

// reservedFileAt returns the held file holding byte pos: the queue's newest,
// a reserved one, or new ones created up to pos and reserved (resMu held).
func (c *consumeQueue) reservedFileAt(pos int64) (*mappedFile, error) {
	holds := func(mf *mappedFile) bool { return mf.from <= pos && pos < mf.from+mf.size }
	have := pos - pos%c.q.fileSize // where files must start when there are none
	if last := c.q.last(); last != nil {
		if holds(last) {
			if !last.hold() {
				return nil, fmt.Errorf("file %s was closed", last.path)
			}
			return last, nil
		}
		have = last.from + last.size
	}
	for _, mf := range c.reserved {
		if holds(mf) && mf.hold() {
			return mf, nil
		}
		have = max(have, mf.from+mf.size)
	}
	if have > pos {
		// Files end past pos but none holds it: creating more would never
		// reach it.
		return nil, fmt.Errorf("no file holds byte %d (files reach %d)", pos, have)
	}
	for {
		mf, err := c.q.create(have)
		if err != nil {
			return nil, err
		}
		c.reserved = append(c.reserved, mf)
		have += c.q.fileSize
		if holds(mf) {
			mf.hold()
			return mf, nil
		}
	}
}

// newFile appends the file at from, taking it from the reserved ones when
// the put path created it (dispatcher).
func (c *consumeQueue) newFile(from int64) (*mappedFile, error) {
	c.resMu.Lock()
	var mf *mappedFile
	for len(c.reserved) > 0 && c.reserved[0].from <= from {
		r := c.reserved[0]
		c.reserved[0] = nil
		c.reserved = c.reserved[1:]
		if r.from == from {
			mf = r
			break
		}
		r.destroy(false) // stale (the queue was truncated since)
	}
	// Appended before resMu is released: a reserve in between would
	// otherwise see the old last file and map this one a second time.
	defer c.resMu.Unlock()
	if mf == nil {
		return c.q.newFile(from)
	}
	c.q.appendFile(mf)
	return mf, nil
}

// dropReserved unmaps the reserved files (they stay on disk, empty, until
// recovery trims the queue) and forgets what they covered.
func (c *consumeQueue) dropReserved() {
	c.resMu.Lock()
	for _, mf := range c.reserved {
		mf.destroy(false)
	}
	c.reserved = nil
	c.resEnd.Store(0)
	c.resMu.Unlock()
}

func cqDir(root, topic string, queueID int32) string {
	return filepath.Join(root, topic, strconv.Itoa(int(queueID)))
}

func getEntry(b []byte) (phy int64, size int32, tags int64) {
	return int64(binary.BigEndian.Uint64(b)), int32(binary.BigEndian.Uint32(b[8:])), int64(binary.BigEndian.Uint64(b[12:]))
}

func validEntry(phy int64, size int32) bool { return phy >= 0 && size > 0 }

// put writes the entry for queue offset qoff. Entries already covered (a
// re-dispatch after restart) are ignored; a gap is filled with placeholders so
// that an entry's position always equals its queue offset.
func (c *consumeQueue) put(phy int64, size int32, tags, qoff int64) error {
	if phy+int64(size) <= c.maxPhy {
		return nil
	}
	cur := c.max.Load()
	if qoff < cur {
		return nil
	}
	if cur == 0 && c.q.last() == nil && qoff > 0 {
		// First file of a queue created mid-stream (its older files were
		// deleted, or the CQ was lost): start at the file holding qoff.
		from := (qoff * cqUnit) - (qoff*cqUnit)%c.q.fileSize
		if _, err := c.newFile(from); err != nil {
			return err
		}
		cur = from / cqUnit
		c.max.Store(cur)
		c.min.Store(qoff)
	}
	for cur < qoff {
		if err := c.write(0, placeholderSize, 0, cur); err != nil {
			return err
		}
		cur++
	}
	if err := c.write(phy, size, tags, qoff); err != nil {
		return err
	}
	c.maxPhy = phy + int64(size)
	return nil
}

func (c *consumeQueue) write(phy int64, size int32, tags, qoff int64) error {
	mf := c.q.last()
	if mf == nil || mf.full() {
		from := qoff * cqUnit
		if mf != nil {
			from = mf.from + mf.size
		} else if from%c.q.fileSize != 0 {
			return fmt.Errorf("consume queue %s/%d: no file for entry %d", c.topic, c.queueID, qoff)
		}
		var err error
		if mf, err = c.newFile(from); err != nil {
			return fmt.Errorf("consume queue %s/%d: %w", c.topic, c.queueID, err)
		}
	}
	pos := mf.wrote.Load()
	if mf.from+pos != qoff*cqUnit {
		return fmt.Errorf("consume queue %s/%d: entry %d would land at byte %d", c.topic, c.queueID, qoff, mf.from+pos)
	}
	// The put path reserved these bytes; recovery and replicated records
	// come here first.
	if err := mf.allocate(pos + cqUnit); err != nil {
		return fmt.Errorf("consume queue %s/%d: %w", c.topic, c.queueID, err)
	}
	b := mf.data[pos : pos+cqUnit]
	binary.BigEndian.PutUint64(b, uint64(phy))
	binary.BigEndian.PutUint32(b[8:], uint32(size))
	binary.BigEndian.PutUint64(b[12:], uint64(tags))
	mf.wrote.Store(pos + cqUnit)
	c.max.Store(qoff + 1)
	return nil
}

// entry reads the entry at logical offset idx (which must be in [min, max)).
func (c *consumeQueue) entry(idx int64) (phy int64, size int32, tags int64, ok bool) {
	if idx < 0 || idx >= c.max.Load() {
		return 0, 0, 0, false
	}
	mf := c.q.find(idx * cqUnit)
	if mf == nil {
		return 0, 0, 0, false
	}
	defer mf.release()
	pos := idx*cqUnit - mf.from
	if pos+cqUnit > mf.wrote.Load() {
		return 0, 0, 0, false
	}
	phy, size, tags = getEntry(mf.data[pos:])
	return phy, size, tags, true
}

// entries returns the held file holding logical offset idx and the readable
// entry bytes from idx to the end of that file (at most maxBytes). The caller
// releases the file.
func (c *consumeQueue) entries(idx int64, maxBytes int64) (*mappedFile, []byte) {
	limit := c.max.Load() * cqUnit
	mf := c.q.find(idx * cqUnit)
	if mf == nil {
		return nil, nil
	}
	pos := idx*cqUnit - mf.from
	end := min(mf.wrote.Load(), limit-mf.from, pos+maxBytes)
	if end <= pos {
		mf.release()
		return nil, nil
	}
	return mf, mf.data[pos:end]
}

// recover finds the end of the valid entries (scanning from the third-last
// file) and truncates the queue there.
func (c *consumeQueue) recover() error {
	files := c.q.snapshot()
	if len(files) == 0 {
		return nil
	}
	start := max(len(files)-3, 0)
	end := files[start].from
	maxPhy := int64(-1)
scan:
	for _, mf := range files[start:] {
		// Bytes past a sparse file's blocks are never read: they hold no
		// entries, and on tmpfs even a read fault there needs free space.
		have := mf.allocated.Load()
		if have > 0 {
			_ = unix.Madvise(mf.data[:have], unix.MADV_WILLNEED) // read ahead what the scan reads
		}
		for pos := int64(0); pos+cqUnit <= mf.size; pos += cqUnit {
			if pos+cqUnit > have {
				end = mf.from + pos
				break scan
			}
			phy, size, _ := getEntry(mf.data[pos:])
			if !validEntry(phy, size) {
				end = mf.from + pos
				break scan
			}
			if size != placeholderSize {
				maxPhy = phy + int64(size)
			}
			end = mf.from + pos + cqUnit
		}
	}
	if err := c.q.truncate(end); err != nil {
		return err
	}
	c.max.Store(end / cqUnit)
	c.maxPhy = maxPhy
	if maxPhy < 0 {
		c.maxPhy = c.scanMaxPhy()
	}
	return nil
}

// scanMaxPhy finds the newest real entry when the last files hold only
// placeholders (rare).
func (c *consumeQueue) scanMaxPhy() int64 {
	for idx := c.max.Load() - 1; idx >= c.q.minOffset()/cqUnit; idx-- {
		if phy, size, _, ok := c.entry(idx); ok && validEntry(phy, size) && size != placeholderSize {
			return phy + int64(size)
		}
	}
	return 0
}

// truncateByPhy drops the entries whose records end past the commit-log end,
// with the placeholders among and after them: the queue then ends at its
// newest entry inside the log. When no entry is left inside the log, the
// leading placeholders stay (the queue's first offset does not move back).
func (c *consumeQueue) truncateByPhy(clEnd int64) error {
	lo := c.q.minOffset() / cqUnit
	maxIdx := c.max.Load()
	idx := maxIdx // new end
	firstBeyond := int64(-1)
	for i := maxIdx - 1; i >= lo; i-- {
		phy, size, _, ok := c.entry(i)
		if !ok {
			idx = i + 1 // unreadable: keep it and what precedes
			break
		}
		if size == placeholderSize {
			continue
		}
		if end := phy + int64(size); end <= clEnd && end >= phy {
			idx = i + 1
			break
		}
		firstBeyond = i
		idx = i // if only placeholders precede, the queue ends here
	}
	if firstBeyond < 0 {
		idx = maxIdx // no entry past the log: trailing placeholders are not ours to drop
	}
	if idx == c.max.Load() {
		return nil
	}
	c.dropReserved()
	if err := c.q.truncate(idx * cqUnit); err != nil {
		return err
	}
	c.max.Store(idx)
	c.maxPhy = c.scanMaxPhy()
	return nil
}

// truncateFromPhy drops the newest entries back to the last valid entry
// pointing below from (crash recovery: entries at or after from, and any
// damaged ones among them, are rebuilt from the commit log).
func (c *consumeQueue) truncateFromPhy(from int64) error {
	lo := c.q.minOffset() / cqUnit
	idx := c.max.Load()
	for idx > lo {
		phy, size, _, ok := c.entry(idx - 1)
		if ok && validEntry(phy, size) && size != placeholderSize && phy < from {
			break
		}
		idx--
	}
	if idx == c.max.Load() {
		return nil
	}
	if err := c.q.truncate(idx * cqUnit); err != nil {
		return err
	}
	c.max.Store(idx)
	c.maxPhy = c.scanMaxPhy()
	return nil
}

// correctMin sets the first readable offset: the first entry that is not a
// placeholder and whose record is still in the commit log.
func (c *consumeQueue) correctMin(clMin int64) {
	idx := c.q.minOffset() / cqUnit
	maxOff := c.max.Load()
	for ; idx < maxOff; idx++ {
		phy, size, _, ok := c.entry(idx)
		if !ok || (size != placeholderSize && phy >= clMin) {
			break
		}
	}
	c.min.Store(idx)
}

// flush msyncs dirty entries.
func (c *consumeQueue) flush(leastPages int) error {
	last := c.q.last()
	if last == nil {
		return nil
	}
	files := c.q.snapshot()
	for _, mf := range files {
		if mf.flushed.Load() >= mf.wrote.Load() {
			continue
		}
		if !mf.hold() {
			continue
		}
		_, err := mf.flush(leastPages)
		mf.release()
		if err != nil {
			return err
		}
	}
	return nil
}

// loadConsumeQueues maps every <root>/<topic>/<queueId> series.
func loadConsumeQueues(root string, fileSize int64) (map[queueKey]*consumeQueue, error) {
	out := map[queueKey]*consumeQueue{}
	topics, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) {
			return out, nil
		}
		return nil, err
	}
	for _, t := range topics {
		if !t.IsDir() {
			continue
		}
		qs, err := os.ReadDir(filepath.Join(root, t.Name()))
		if err != nil {
			return nil, err
		}
		for _, qd := range qs {
			id, err := strconv.ParseInt(qd.Name(), 10, 32)
			if err != nil || !qd.IsDir() {
				continue
			}
			fq, err := loadFileQueue(filepath.Join(root, t.Name(), qd.Name()), fileSize, true)
			if err != nil {
				for _, c := range out {
					c.q.close()
				}
				return nil, err
			}
			c := &consumeQueue{topic: t.Name(), queueID: int32(id), q: fq}
			c.max.Store(fq.maxOffset() / cqUnit)
			c.min.Store(fq.minOffset() / cqUnit)
			out[queueKey{t.Name(), int32(id)}] = c
		}
	}
	return out, nil
}
