package commitlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// commitLog is the global append-only log: a file queue plus the flush position
// and the next file, created ahead of need so a roll rarely waits for fallocate.
type commitLog struct {
	q            *fileQueue
	fileSize     int64
	writeBuf     bool         // appends are staged in a write buffer (writebuffer.go)
	warn         func(error)  // reports a file that must do without one
	flushedWhere atomic.Int64 // global offset below which everything is fsynced
	lastPutTs    atomic.Int64 // store time of the newest appended record
	lastRecStart atomic.Int64 // offset of the newest appended record (-1: none since open)

	// Next file being created in the background (guarded by the put lock).
	next *pendingFile
}

type pendingFile struct {
	from int64
	done chan struct{}
	mf   *mappedFile
	err  error
}

func (c *commitLog) preallocate(from int64) {
	p := &pendingFile{from: from, done: make(chan struct{})}
	c.next = p
	go func() {
		defer close(p.done)
		p.mf, p.err = createMappedFile(c.q.dir, from, c.fileSize, false)
		if p.err == nil {
			c.attachWriteBuffer(p.mf)
		}
	}()
}

// fileFor returns the file the next n bytes go to (put lock held). When they do
// not fit in the current file with room left for the blank record, it writes
// the blank record, rolls to the next file and preallocates the one after.
// With the write buffer, the full file is committed before its successor joins
// the queue.
func (s *Store) fileFor(n int64) (*mappedFile, error) {
	c := s.cl
	last := c.q.last()
	if last != nil {
		wrote := last.appendPos()
		if wrote+n+message.BlankRecordMinSize <= last.size {
			return last, nil
		}
		if wrote < last.size {
			// END_OF_FILE: the rest of the file is one blank record.
			// The whole rest: this also stops a warmer still filling this
			// file, so it turns to the next one.
			last.claimWrite(last.size)
			message.PutBlankRecord(last.appendArea()[wrote:], int32(last.size-wrote))
			last.setAppendPos(last.size)
		}
		if last.wbuf != nil {
			if err := s.retireWriteBuffer(last); err != nil {
				return nil, err
			}
		}
	}
	from := int64(0)
	if last != nil {
		from = last.from + last.size
	}
	var mf *mappedFile
	if p := c.next; p != nil && p.from == from {
		<-p.done
		c.next = nil
		if p.err == nil {
			mf = p.mf
			c.q.appendFile(mf)
		}
	} else if p != nil {
		<-p.done // a stale preallocation (after truncation): drop it
		c.next = nil
		if p.err == nil {
			p.mf.destroy(true)
		}
	}
	if mf == nil {
		var err error
		if mf, err = c.q.create(from); err != nil {
			return nil, err
		}
		c.attachWriteBuffer(mf)
		c.q.appendFile(mf)
	}
	c.preallocate(from + c.fileSize)
	return mf, nil
}

// closeNext drops a pending preallocation (the file stays on disk, empty; it is
// reused or removed by recovery).
func (c *commitLog) closeNext() {
	if p := c.next; p != nil {
		<-p.done
		c.next = nil
		if p.err == nil {
			p.mf.destroy(false)
		}
	}
}

// dispatchReq is what the consume-queue dispatcher needs about one record.
type dispatchReq struct {
	cq          *consumeQueue
	phy         int64
	size        int32
	tagsCode    int64
	queueOffset int64
	storeTs     int64
}

func (d *dispatchReq) end() int64 { return d.phy + int64(d.size) }

// encBuf pools encode buffers: records are encoded outside the put lock.
var encBuf = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Put implements storage.Store.
func (s *Store) Put(m *message.Message) storage.PutResult {
	return s.put(unsafe.Slice(m, 1), false)
}

// PutBatch implements storage.Store.
func (s *Store) PutBatch(ms []message.Message) storage.PutResult {
	if len(ms) == 0 {
		return storage.PutResult{Status: storage.PutMessageIllegal, Err: fmt.Errorf("empty batch")}
	}
	return s.put(ms, true)
}

func (s *Store) put(ms []message.Message, batch bool) storage.PutResult {
	if st, err := s.checkWritable(); st != storage.PutOK {
		return storage.PutResult{Status: st, Err: err}
	}
	total, refusal, ok := storage.CheckPut(ms, batch, s.cl.fileSize)
	if !ok {
		return refusal
	}

	bp := encBuf.Get().(*[]byte)
	buf := (*bp)[:0]
	for i := range ms {
		buf = message.Encode(buf, &ms[i], 0, 0, 0)
	}
	defer func() {
		*bp = buf
		encBuf.Put(bp)
	}()

	s.putMu.Lock()
	// One clock read serves as lock-hold start and store time; the store time
	// never goes backwards along the log (OffsetByTime relies on it).
	now := time.Now().UnixMilli()
	s.lockBegin.Store(now)
	unlock := func() {
		s.lockBegin.Store(0)
		s.putMu.Unlock()
	}
	if !s.running.Load() {
		unlock()
		return storage.PutResult{Status: storage.PutServiceNotAvailable, Err: errNotRunning}
	}
	if p := s.fenceErr.Load(); p != nil { // fenced while this put waited for the lock
		unlock()
		return storage.PutResult{Status: storage.PutServiceNotAvailable, Err: *p}
	}
	key := queueKey{ms[0].Topic, ms[0].QueueID}
	qs := s.queueTable[key]
	if qs == nil {
		cq, err := s.consumeQueue(key.topic, key.queueID, true)
		if err != nil {
			unlock()
			return storage.PutResult{Status: storage.PutMessageIllegal, Err: err}
		}
		qs = &queueState{cq: cq}
		s.queueTable[key] = qs
	}
	// Consume-queue files first: a disk too full for them refuses the put
	// before its record is in the log.
	if err := qs.cq.reserve(qs.next*cqUnit, (qs.next+int64(len(ms)))*cqUnit); err != nil {
		unlock()
		return storage.PutResult{Status: s.createFailedStatus(err), Err: err}
	}
	now = max(now, s.lastStoreTs)
	s.lastStoreTs = now
	mf, err := s.fileFor(int64(total))
	if err != nil {
		unlock()
		return storage.PutResult{Status: s.createFailedStatus(err), Err: err}
	}
	pos := mf.appendPos()
	phy := mf.from + pos
	firstQ := int64(-1)
	var offsets []int64
	if batch {
		offsets = make([]int64, 0, len(ms))
	}
	off, lastOff := 0, 0
	nextQ := qs.next
	for i := range ms {
		rec := buf[off:]
		size := int(message.RecordSize(rec))
		lastOff = off
		q := int64(0)
		if message.Dispatchable(ms[i].SysFlag) {
			q = nextQ
			nextQ++
		}
		if firstQ < 0 {
			firstQ = q
		}
		message.PatchRecord(rec[:size], q, phy+int64(off), now)
		if batch {
			offsets = append(offsets, phy+int64(off))
		}
		off += size
	}
	// Under SYNC_FLUSH the consume-queue entries are queued for the flusher,
	// which dispatches them after the fsync that covers them. pendMu is taken
	// before the bytes become visible: a flusher that flushes them then waits
	// in dispatchPending until their entries are queued, so it never marks an
	// offset synced (releasing this put with PUT_OK) before they are readable.
	if s.syncFlush {
		s.pendMu.Lock()
	}
	mf.claimWrite(pos + int64(total))
	copy(mf.appendArea()[pos:], buf)
	mf.setAppendPos(pos + int64(total))
	if mf.warmNeeded(pos + int64(total)) {
		s.wakeWarmer()
	}
	s.cl.lastPutTs.Store(now)
	s.cl.lastRecStart.Store(phy + int64(lastOff)) // after wrote: a flush that sees it covers the record

	// Queue the consume-queue entries: written now under ASYNC_FLUSH (still
	// in the put lock, which keeps each queue in log order), after the fsync
	// under SYNC_FLUSH.
	off = 0
	dispatched := int64(0)
	for i := range ms {
		m := &ms[i]
		size := int32(message.RecordSize(buf[off:]))
		if message.Dispatchable(m.SysFlag) {
			tags := s.tagsCodeOf(m.Topic, unsafe.Slice(unsafe.StringData(m.Properties), len(m.Properties)), now, m.TagsCode)
			d := dispatchReq{cq: qs.cq, phy: phy + int64(off), size: size, tagsCode: tags, queueOffset: qs.next, storeTs: now}
			qs.next++
			if s.syncFlush {
				s.pending = append(s.pending, d)
			} else if err := s.dispatchOne(&d); err != nil {
				s.fence(fmt.Errorf("dispatch to consume queue %s/%d: %w", m.Topic, m.QueueID, err))
			} else {
				dispatched = d.queueOffset + 1
			}
		}
		off += int(size)
	}
	if s.syncFlush {
		s.pendMu.Unlock()
	}
	unlock()

	res := storage.PutResult{Status: storage.PutOK, CommitLogOffset: phy, WroteBytes: int32(total),
		QueueOffset: firstQ, StoreTimestamp: now, MsgCount: len(ms), Offsets: offsets}
	if s.syncFlush {
		if message.Property(ms[0].Properties, message.PropertyWaitStoreMsgOK) == "false" {
			s.wakeFlusher()
		} else {
			res.Status = s.waitFlushed(phy + int64(total))
		}
	} else if dispatched > 0 {
		if l := s.listener.Load(); l != nil {
			(*l)(key.topic, key.queueID, dispatched)
		}
	}
	return res
}

// queueState is the put path's view of a queue (put lock).
type queueState struct {
	next int64 // next queue offset
	cq   *consumeQueue
}

// SetDeliveryTimer implements storage.Store.
func (s *Store) SetDeliveryTimer(t storage.DeliveryTimer) {
	if t == nil {
		s.deliveryTimer.Store(nil)
		return
	}
	s.deliveryTimer.Store(&t)
}

// tagsCodeOf is the consume-queue tags code of a record being dispatched:
// the broker's delivery time where its rule gives one, else tags.
func (s *Store) tagsCodeOf(topic string, props []byte, storeTs, tags int64) int64 {
	if t := s.deliveryTimer.Load(); t != nil {
		if at, ok := (*t)(topic, props, storeTs); ok {
			return at
		}
	}
	return tags
}
