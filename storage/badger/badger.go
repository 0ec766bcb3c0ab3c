// Package badger is the storage engine "storage.badger" (store.engine=badger):
// messages in a Badger v4 key-value store instead of memory-mapped files,
// with RocketMQ's observable semantics kept (docs/store.md, "The Badger
// engine").
//
// Every record is encoded exactly as in the native commit log and given a
// physical offset from a virtual log: records are laid end to end in
// virtual files of mappedFileSizeCommitLog bytes (a record never crosses a
// file boundary, as in RocketMQ), so offset message IDs, VIEW_MESSAGE_BY_ID
// and commit-log offsets in answers mean what they mean on the native
// engine. Keys (on-disk names, never change them):
//
//	L <phy:8>                                  the record
//	Q <topic> 0 <queueId:4> <queueOffset:8>    consume-queue unit: phy:8 size:4 tagsCode:8
//	X <topic> 0 <queueId:4>                    the queue's next offset (written with its units)
//	K <topic> 0 <key> 0 <phy:8>                index of KEYS tokens -> store time:8
//	U <topic> 0 <uniqKey> 0 <phy:8>            index of UNIQ_KEY -> store time:8
//
// A put's keys are written in one transaction by a single committer
// goroutine that takes every put queued meanwhile (group commit); under
// SYNC_FLUSH it syncs before any of them is answered or readable, under
// ASYNC_FLUSH a ticker syncs every flushIntervalCommitLog. Retention is a
// TTL of fileReservedTime on every key (no tombstone per message); value-log
// garbage collection runs on a schedule. Replication (storage.Replicable) is
// not offered: a master on this engine runs without slaves.
package badger

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// ModuleID is the kernel ID of this engine.
const ModuleID = "storage.badger"

// DirName is the engine's directory under storePathRootDir.
const DirName = "badger"

// Key prefixes (see the package comment).
const (
	prefixRecord = 'L'
	prefixQueue  = 'Q'
	prefixNext   = 'X'
	prefixKey    = 'K'
	prefixUniq   = 'U'
)

const unitSize = 20 // consume-queue unit: phy, size, tags code

// maxInflight bounds the batches being written at once.
const maxInflight = 16

func init() { kernel.RegisterModule(new(Store)) }

// Options are the engine's own settings, beside the store.* keys it shares
// with every engine (flush mode, retention, read limits, file size).
type Options struct {
	// Dir is where Badger keeps its files (default <storePathRootDir>/badger).
	Dir string
	// GCInterval is the period of value-log garbage collection.
	GCInterval time.Duration
	// GCDiscardRatio is the share of stale data that makes a value-log file
	// worth rewriting.
	GCDiscardRatio float64
	// MaxBatch bounds the puts one commit takes.
	MaxBatch int
	// ValueThreshold: values this large or larger (records) are kept in
	// Badger's value log rather than its LSM tree. 0 picks by flush mode
	// (valueThresholdFor).
	ValueThreshold int64
	// TTL, when set, replaces fileReservedTime as the life of every key
	// (Badger counts it in seconds; tests use a few).
	TTL time.Duration
}

// DefaultOptions are the engine's defaults.
func DefaultOptions() Options {
	return Options{GCInterval: 10 * time.Minute, GCDiscardRatio: 0.5, MaxBatch: 512}
}

// valueThresholdFor is the value threshold when none is set. Under
// ASYNC_FLUSH records (about 1 KiB) go to the value log, so compactions move
// only keys and small units. Under SYNC_FLUSH every commit must sync each log
// it wrote before it is answered: records kept in the LSM tree (Badger's
// largest threshold, 1 MiB) leave one log to sync per commit instead of two,
// which measured 16.7-17.5k against 13.5-13.9k durable sends a second
// (docs/store.md, "The Badger engine").
func valueThresholdFor(set int64, syncFlush bool) int64 {
	switch {
	case set > 0:
		return set
	case syncFlush:
		return 1 << 20
	default:
		return 256
	}
}

// WithDir, WithGCInterval and WithMaxBatch set one option.
func (o Options) WithDir(d string) Options { o.Dir = d; return o }

// WithGCInterval sets the garbage-collection period.
func (o Options) WithGCInterval(d time.Duration) Options { o.GCInterval = d; return o }

// WithMaxBatch sets how many puts one commit takes at most.
func (o Options) WithMaxBatch(n int) Options { o.MaxBatch = n; return o }

// queue is one consume queue's bounds; next advances only once its units
// are committed (and synced under SYNC_FLUSH), so readers never see more.
type queue struct {
	min  atomic.Int64
	next atomic.Int64
	// assigned is the next offset a put takes (under putMu).
	assigned int64
}

type queueKey struct {
	topic string
	id    int32
}

// putReq is one Put or PutBatch waiting for its commit.
type putReq struct {
	recs    []byte // the encoded records, end to end
	units   []unit
	res     storage.PutResult
	done    chan struct{}
	indexes [][]byte // index keys
	endPhy  int64
}

type unit struct {
	q      *queue
	key    queueKey
	offset int64
	phy    int64
	size   int32
	tags   int64
}

// Store is the Badger engine.
type Store struct {
	opts storage.Options
	eng  Options
	log  zerolog.Logger
	db   *badgerdb.DB
	ttl  time.Duration

	putMu       sync.Mutex
	nextPhy     int64 // under putMu
	lastStoreTs int64 // under putMu

	minPhy   atomic.Int64
	maxPhy   atomic.Int64 // end of the committed log
	queuesMu sync.RWMutex
	queues   map[queueKey]*queue

	reqs     chan *putReq
	fenced   atomic.Pointer[error] // a write failed: no more puts
	seq      uint64                // batches committed (committer goroutine only)
	slots    chan struct{}         // bounds the batches written at once
	inflight sync.WaitGroup
	results  chan commitResult
	relWG    sync.WaitGroup
	stop     chan struct{}
	wg       sync.WaitGroup
	running  atomic.Bool
	listener atomic.Pointer[storage.ArrivalListener]
	timer    atomic.Pointer[storage.DeliveryTimer]

	lastIndexTs  atomic.Int64
	lastIndexPhy atomic.Int64
}

// MQDModule implements kernel.Module.
func (*Store) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: ModuleID, New: func() kernel.Module { return new(Store) }}
}

// Provision reads the store.* configuration.
func (s *Store) Provision(ctx kernel.Context) error {
	s.opts = storage.DefaultOptions()
	if err := ctx.Config.Unmarshal("store", &s.opts); err != nil {
		return fmt.Errorf("store options: %w", err)
	}
	s.eng = DefaultOptions()
	s.log = ctx.Logger
	return nil
}

// Validate normalizes and checks the options.
func (s *Store) Validate() error {
	s.opts.Normalize()
	if s.eng.MaxBatch == 0 {
		s.eng = DefaultOptions()
	}
	if s.eng.Dir == "" {
		s.eng.Dir = filepath.Join(s.opts.StorePathRootDir, DirName)
	}
	return s.opts.Validate()
}

// Open opens a store without a kernel; a delivery timer given is set before
// anything is dispatched.
func Open(opts storage.Options, eng Options, log zerolog.Logger, timer ...storage.DeliveryTimer) (*Store, error) {
	s := &Store{opts: opts, eng: eng, log: log}
	for _, t := range timer {
		s.SetDeliveryTimer(t)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the store.
func (s *Store) Close() error { return s.Stop(nil) }

// Options returns the store options.
func (s *Store) Options() storage.Options { return s.opts }

// Capabilities implements kernel.Capable: no "replication" (a master on
// this engine runs without slaves).
func (*Store) Capabilities() []string {
	return []string{"sync-flush", "group-commit", "index", "ttl-retention"}
}

// zerologAdapter routes Badger's log into zerolog (warnings and errors only:
// its info lines are per compaction).
type zerologAdapter struct{ log zerolog.Logger }

func (a zerologAdapter) Errorf(f string, v ...any) {
	a.log.Error().Msg(strings.TrimSpace(fmt.Sprintf(f, v...)))
}
func (a zerologAdapter) Warningf(f string, v ...any) {
	a.log.Warn().Msg(strings.TrimSpace(fmt.Sprintf(f, v...)))
}
func (zerologAdapter) Infof(string, ...any)  {}
func (zerologAdapter) Debugf(string, ...any) {}

// Start opens the database and rebuilds the in-memory bounds.
func (s *Store) Start() error {
	if err := os.MkdirAll(s.eng.Dir, 0o755); err != nil {
		return err
	}
	// Where records go depends on the flush mode (valueThresholdFor); keys
	// are written once by one committer, so conflict detection would only
	// cost.
	// Under SYNC_FLUSH Badger syncs every write (and the files it rotates
	// out, which DB.Sync would not); one write carries every put queued
	// meanwhile, so that is the group commit.
	bo := badgerdb.DefaultOptions(s.eng.Dir).WithLogger(zerologAdapter{s.log}).WithSyncWrites(s.opts.IsSyncFlush()).
		WithMetricsEnabled(false).WithDetectConflicts(false).WithValueThreshold(valueThresholdFor(s.eng.ValueThreshold, s.opts.IsSyncFlush())).
		WithNumVersionsToKeep(1)
	db, err := badgerdb.Open(bo)
	if err != nil {
		return fmt.Errorf("open badger store %s: %w", s.eng.Dir, err)
	}
	s.db = db
	if s.opts.FileReservedTime > 0 {
		s.ttl = time.Duration(s.opts.FileReservedTime) * time.Hour
	}
	if s.eng.TTL > 0 {
		s.ttl = s.eng.TTL
	}
	s.queues = map[queueKey]*queue{}
	if err := s.load(); err != nil {
		db.Close()
		return err
	}
	s.reqs = make(chan *putReq, 4096)
	s.slots = make(chan struct{}, maxInflight)
	s.results = make(chan commitResult, maxInflight)
	s.relWG.Add(1)
	go s.releaseLoop()
	s.stop = make(chan struct{})
	s.running.Store(true)
	s.wg.Add(2)
	go s.commitLoop()
	go s.maintenance()
	return nil
}

// load finds the end of the log and every queue's bounds.
func (s *Store) load() error {
	return s.db.View(func(txn *badgerdb.Txn) error {
		// End of the log: the last record.
		it := txn.NewIterator(badgerdb.IteratorOptions{Reverse: true, Prefix: []byte{prefixRecord}})
		it.Seek([]byte{prefixRecord, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
		if it.Valid() {
			phy := int64(binary.BigEndian.Uint64(it.Item().Key()[1:]))
			// The record's own size: ValueSize is an estimate for values
			// kept in the value log.
			if err := it.Item().Value(func(v []byte) error {
				s.nextPhy = phy + int64(message.RecordSize(v))
				s.lastStoreTs = message.RecordStoreTimestamp(v)
				return nil
			}); err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
		s.maxPhy.Store(s.nextPhy)
		it = txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixRecord}})
		it.Rewind()
		if it.Valid() {
			s.minPhy.Store(int64(binary.BigEndian.Uint64(it.Item().Key()[1:])))
		} else {
			s.minPhy.Store(s.nextPhy)
		}
		it.Close()
		// Queues: their next offsets, then their first units.
		it = txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixNext}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			topic, id, ok := splitQueueKey(k[1:])
			if !ok {
				continue
			}
			var next int64
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == 8 {
					next = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			}); err != nil {
				return err
			}
			q := &queue{assigned: next}
			q.next.Store(next)
			q.min.Store(s.firstOffset(txn, topic, id, next))
			s.queues[queueKey{topic, id}] = q
		}
		return nil
	})
}

// splitQueueKey parses <topic> 0 <queueId:4>.
func splitQueueKey(b []byte) (string, int32, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 || len(b) < i+5 {
		return "", 0, false
	}
	return string(b[:i]), int32(binary.BigEndian.Uint32(b[i+1:])), true
}

func queuePrefix(topic string, id int32) []byte {
	k := make([]byte, 0, 1+len(topic)+1+4+8)
	k = append(k, prefixQueue)
	k = append(k, topic...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(id))
}

func unitKey(topic string, id int32, off int64) []byte {
	return binary.BigEndian.AppendUint64(queuePrefix(topic, id), uint64(off))
}

func nextKey(topic string, id int32) []byte {
	k := queuePrefix(topic, id)
	k[0] = prefixNext
	return k
}

func recordKey(phy int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixRecord}, uint64(phy))
}

// firstOffset is the lowest queue offset whose unit still exists (retention
// removes units from the front), or next when none does.
func (s *Store) firstOffset(txn *badgerdb.Txn, topic string, id int32, next int64) int64 {
	p := queuePrefix(topic, id)
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: p})
	defer it.Close()
	it.Rewind()
	if !it.Valid() {
		return next
	}
	return int64(binary.BigEndian.Uint64(it.Item().Key()[len(p):]))
}

var errNotRunning = errors.New("badger store is not running")

// Put implements storage.Store.
func (s *Store) Put(m *message.Message) storage.PutResult {
	return s.put([]message.Message{*m}, false)
}

// PutBatch implements storage.Store.
func (s *Store) PutBatch(ms []message.Message) storage.PutResult { return s.put(ms, true) }

func (s *Store) put(ms []message.Message, batch bool) storage.PutResult {
	if !s.running.Load() {
		return storage.PutResult{Status: storage.PutServiceNotAvailable, Err: errNotRunning}
	}
	if err := s.fenced.Load(); err != nil {
		return storage.PutResult{Status: storage.PutServiceNotAvailable, Err: *err}
	}
	if s.opts.IsSlave() {
		return storage.PutResult{Status: storage.PutServiceNotAvailable, Err: errors.New("a slave does not accept writes")}
	}
	fileSize := s.opts.MappedFileSizeCommitLog
	total, refusal, ok := storage.CheckPut(ms, batch, fileSize)
	if !ok {
		return refusal
	}
	buf := make([]byte, 0, total)
	for i := range ms {
		buf = message.Encode(buf, &ms[i], 0, 0, 0)
	}

	s.putMu.Lock()
	if !s.running.Load() { // stopped while this put waited for the lock
		s.putMu.Unlock()
		return storage.PutResult{Status: storage.PutServiceNotAvailable, Err: errNotRunning}
	}
	now := max(time.Now().UnixMilli(), s.lastStoreTs)
	s.lastStoreTs = now
	// Records never cross a virtual file boundary (RocketMQ's layout).
	phy := s.nextPhy
	if rest := fileSize - phy%fileSize; int64(total)+message.BlankRecordMinSize > rest {
		phy += rest
	}
	key := queueKey{ms[0].Topic, ms[0].QueueID}
	q := s.queueFor(key)
	req := &putReq{recs: buf, done: make(chan struct{})}
	req.res = storage.PutResult{Status: storage.PutOK, CommitLogOffset: phy, WroteBytes: int32(total), StoreTimestamp: now, MsgCount: len(ms)}
	if batch {
		req.res.Offsets = make([]int64, 0, len(ms))
	}
	off := 0
	first := true
	for i := range ms {
		m := &ms[i]
		rec := buf[off:]
		size := int(message.RecordSize(rec))
		qo := int64(0)
		if message.Dispatchable(m.SysFlag) {
			qo = q.assigned
			q.assigned++
			tags := m.TagsCode
			if t := s.timer.Load(); t != nil {
				if at, ok := (*t)(m.Topic, unsafe.Slice(unsafe.StringData(m.Properties), len(m.Properties)), now); ok {
					tags = at
				}
			}
			req.units = append(req.units, unit{q: q, key: key, offset: qo, phy: phy + int64(off), size: int32(size), tags: tags})
		}
		if first {
			req.res.QueueOffset = qo
			first = false
		}
		message.PatchRecord(rec[:size], qo, phy+int64(off), now)
		if batch {
			req.res.Offsets = append(req.res.Offsets, phy+int64(off))
		}
		if s.opts.MessageIndexEnable {
			req.indexes = appendIndexKeys(req.indexes, m, phy+int64(off))
		}
		off += size
	}
	req.endPhy = phy + int64(total)
	s.nextPhy = req.endPhy
	s.reqs <- req // in log order: the channel is filled under putMu
	s.putMu.Unlock()
	if !s.opts.IsSyncFlush() {
		<-req.done
		return req.res
	}
	t := time.NewTimer(time.Duration(s.opts.SyncFlushTimeout) * time.Millisecond)
	defer t.Stop()
	select {
	case <-req.done:
		return req.res
	case <-t.C:
		// Stored, not yet known durable; the write goes on.
		res := req.res
		res.Status, res.Err = storage.PutFlushDiskTimeout, errors.New("the sync did not finish within syncFlushTimeout")
		return res
	}
}

// queueFor returns (creating) a queue's state; under putMu.
func (s *Store) queueFor(k queueKey) *queue {
	s.queuesMu.RLock()
	q := s.queues[k]
	s.queuesMu.RUnlock()
	if q != nil {
		return q
	}
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	if q = s.queues[k]; q == nil {
		q = &queue{}
		s.queues[k] = q
	}
	return q
}

// appendIndexKeys adds the index keys of a message: each KEYS token under
// K, the UNIQ_KEY under U (a query by key looks in both).
func appendIndexKeys(dst [][]byte, m *message.Message, phy int64) [][]byte {
	add := func(prefix byte, key string) {
		k := make([]byte, 0, 2+len(m.Topic)+len(key)+8)
		k = append(k, prefix)
		k = append(k, m.Topic...)
		k = append(k, 0)
		k = append(k, key...)
		k = append(k, 0)
		dst = append(dst, binary.BigEndian.AppendUint64(k, uint64(phy)))
	}
	if u := message.Property(m.Properties, message.PropertyUniqKey); u != "" {
		add(prefixUniq, u)
	}
	for _, k := range strings.Fields(message.Property(m.Properties, message.PropertyKeys)) {
		add(prefixKey, k)
	}
	return dst
}

// commitLoop writes queued puts in log order, many per transaction.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*putReq, 0, s.eng.MaxBatch)
	for {
		var first *putReq
		select {
		case first = <-s.reqs:
		case <-s.stop:
			// Puts still queued were accepted before the stop: write them.
			for {
				select {
				case r := <-s.reqs:
					s.commit([]*putReq{r})
				default:
					s.inflight.Wait()
					close(s.results)
					return
				}
			}
		}
		batch = append(batch[:0], first)
	more:
		for len(batch) < s.eng.MaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(slices.Clone(batch))
	}
}

// commitResult is a written batch, in commit order.
type commitResult struct {
	seq   uint64
	batch []*putReq
	err   error
}

// commit starts the write of a batch of puts without waiting for it:
// Badger writes (and, under SYNC_FLUSH, syncs: SyncWrites) the transactions
// committed meanwhile together, so several batches share a sync; the
// releaser answers them in order. At most maxInflight batches are written
// at once.
func (s *Store) commit(batch []*putReq) {
	s.seq++
	seq := s.seq
	s.slots <- struct{}{}
	s.inflight.Add(1)
	done := func(err error) {
		s.results <- commitResult{seq, batch, err}
		<-s.slots
		s.inflight.Done()
	}
	if err := s.fenced.Load(); err != nil {
		done(*err)
		return
	}
	s.write(batch, done)
}

// releaseLoop makes written puts readable and answers them in commit order.
// A failed write fences the store: part of it may be in Badger, so nothing
// may be written past it; its puts, and those written after it, are
// answered as not stored and never become readable.
func (s *Store) releaseLoop() {
	defer s.relWG.Done()
	next := uint64(1)
	held := map[uint64]commitResult{}
	for r := range s.results {
		held[r.seq] = r
		for {
			c, ok := held[next]
			if !ok {
				break
			}
			delete(held, next)
			next++
			if c.err == nil {
				c.err = fencedErr(s.fenced.Load())
			}
			if c.err != nil {
				s.fence(c.err)
				s.fail(c.batch, c.err)
				continue
			}
			s.release(c.batch)
		}
	}
}

func fencedErr(p *error) error {
	if p == nil {
		return nil
	}
	return *p
}

func (s *Store) fence(err error) {
	if s.fenced.CompareAndSwap(nil, &err) {
		s.log.Error().Err(err).Msg("badger store: a write failed; the store takes no more puts until it is restarted")
	}
}

func (s *Store) fail(batch []*putReq, err error) {
	for _, r := range batch {
		r.res = storage.PutResult{Status: storage.PutServiceNotAvailable, Err: err}
		close(r.done)
	}
}

// release makes written (and, under SYNC_FLUSH, synced) puts readable and
// answers them.
func (s *Store) release(batch []*putReq) {
	l := s.listener.Load()
	for _, r := range batch {
		for _, u := range r.units {
			u.q.next.Store(u.offset + 1)
		}
		s.maxPhy.Store(r.endPhy)
		if len(r.recs) > 0 { // not a barrier
			s.lastIndexPhy.Store(r.res.CommitLogOffset)
			s.lastIndexTs.Store(r.res.StoreTimestamp)
		}
		close(r.done)
		if l != nil {
			for _, u := range r.units {
				(*l)(u.key.topic, u.key.id, u.offset+1)
			}
		}
	}
}

func (s *Store) entry(key, val []byte) *badgerdb.Entry {
	e := badgerdb.NewEntry(key, val)
	if s.ttl > 0 {
		e = e.WithTTL(s.ttl)
	}
	return e
}

// write puts a batch's keys in as few transactions as Badger allows and
// calls done once the last is written (synced under SYNC_FLUSH).
func (s *Store) write(batch []*putReq, done func(error)) {
	if err := s.writeTxn(batch, done); err != nil {
		done(err)
	}
}

func (s *Store) writeTxn(batch []*putReq, done func(error)) error {
	txn := s.db.NewTransaction(true)
	set := func(e *badgerdb.Entry) error {
		err := txn.SetEntry(e)
		if errors.Is(err, badgerdb.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = s.db.NewTransaction(true)
			err = txn.SetEntry(e)
		}
		if err != nil {
			txn.Discard()
		}
		return err
	}
	nexts := map[queueKey]int64{}
	for _, r := range batch {
		off := 0
		for off < len(r.recs) {
			size := int(message.RecordSize(r.recs[off:]))
			phy := message.RecordPhysicalOffset(r.recs[off:])
			if err := set(s.entry(recordKey(phy), r.recs[off:off+size])); err != nil {
				return err
			}
			off += size
		}
		for _, u := range r.units {
			v := binary.BigEndian.AppendUint64(nil, uint64(u.phy))
			v = binary.BigEndian.AppendUint32(v, uint32(u.size))
			v = binary.BigEndian.AppendUint64(v, uint64(u.tags))
			if err := set(s.entry(unitKey(u.key.topic, u.key.id, u.offset), v)); err != nil {
				return err
			}
			nexts[u.key] = u.offset + 1
		}
		ts := binary.BigEndian.AppendUint64(nil, uint64(r.res.StoreTimestamp))
		for _, k := range r.indexes {
			if err := set(s.entry(k, ts)); err != nil {
				return err
			}
		}
	}
	for k, n := range nexts {
		// The queue's next offset never expires: it outlives its units.
		if err := set(badgerdb.NewEntry(nextKey(k.topic, k.id), binary.BigEndian.AppendUint64(nil, uint64(n)))); err != nil {
			txn.Discard()
			return err
		}
	}
	txn.CommitWith(done)
	return nil
}

// maintenance syncs under ASYNC_FLUSH, advances the bounds retention moved
// and collects the value log.
func (s *Store) maintenance() {
	defer s.wg.Done()
	flush := time.Duration(s.opts.FlushIntervalCommitLog) * time.Millisecond
	if flush <= 0 {
		flush = 500 * time.Millisecond
	}
	clean := time.Duration(s.opts.CleanResourceInterval) * time.Millisecond
	if clean <= 0 {
		clean = 10 * time.Second
	}
	ft, ct, gt := time.NewTicker(flush), time.NewTicker(clean), time.NewTicker(s.eng.GCInterval)
	defer ft.Stop()
	defer ct.Stop()
	defer gt.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ft.C:
			if !s.opts.IsSyncFlush() {
				if err := s.db.Sync(); err != nil {
					s.log.Error().Err(err).Msg("badger store: sync failed")
				}
			}
		case <-ct.C:
			s.refreshBounds()
		case <-gt.C:
			for s.db.RunValueLogGC(s.eng.GCDiscardRatio) == nil {
			}
		}
	}
}

// refreshBounds moves queue minimums and the log's start past what
// retention removed.
func (s *Store) refreshBounds() {
	_ = s.db.View(func(txn *badgerdb.Txn) error {
		s.queuesMu.RLock()
		keys := make([]queueKey, 0, len(s.queues))
		for k := range s.queues {
			keys = append(keys, k)
		}
		s.queuesMu.RUnlock()
		for _, k := range keys {
			s.queuesMu.RLock()
			q := s.queues[k]
			s.queuesMu.RUnlock()
			if q != nil {
				q.min.Store(max(q.min.Load(), s.firstOffset(txn, k.topic, k.id, q.next.Load())))
			}
		}
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		it.Rewind()
		if it.Valid() {
			s.minPhy.Store(int64(binary.BigEndian.Uint64(it.Item().Key()[1:])))
		} else {
			s.minPhy.Store(s.maxPhy.Load())
		}
		return nil
	})
}

// Stop refuses new puts, writes those accepted, syncs and closes.
func (s *Store) Stop(kernel.StopContext) error {
	if !s.running.Swap(false) {
		return nil
	}
	s.putMu.Lock() // puts in progress have queued their request
	close(s.stop)
	s.putMu.Unlock()
	s.wg.Wait()    // the committer wrote every accepted put
	s.relWG.Wait() // and answered it
	return errors.Join(s.db.Sync(), s.db.Close())
}

func (s *Store) queue(topic string, id int32) *queue {
	s.queuesMu.RLock()
	defer s.queuesMu.RUnlock()
	return s.queues[queueKey{topic, id}]
}

// MinOffset implements storage.Store.
func (s *Store) MinOffset(topic string, id int32) int64 {
	if q := s.queue(topic, id); q != nil {
		return min(q.min.Load(), q.next.Load())
	}
	return 0
}

// MaxOffset implements storage.Store.
func (s *Store) MaxOffset(topic string, id int32) int64 {
	if q := s.queue(topic, id); q != nil {
		return q.next.Load()
	}
	return 0
}

// readUnit reads one consume-queue unit.
func readUnit(txn *badgerdb.Txn, topic string, id int32, off int64) (phy int64, size int32, tags int64, ok bool) {
	item, err := txn.Get(unitKey(topic, id, off))
	if err != nil {
		return 0, 0, 0, false
	}
	_ = item.Value(func(v []byte) error {
		if len(v) == unitSize {
			phy, size, tags, ok = int64(binary.BigEndian.Uint64(v)), int32(binary.BigEndian.Uint32(v[8:])), int64(binary.BigEndian.Uint64(v[12:])), true
		}
		return nil
	})
	return
}

func readRecord(txn *badgerdb.Txn, phy int64) ([]byte, bool) {
	item, err := txn.Get(recordKey(phy))
	if err != nil {
		return nil, false
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil
}

// GetMessages implements storage.Store.
func (s *Store) GetMessages(topic string, id int32, offset int64, maxMsgs int, maxBytes int, filter storage.Filter) *storage.GetResult {
	res := &storage.GetResult{}
	q := s.queue(topic, id)
	if q == nil {
		res.Status = storage.GetNoMessageInQueue
		return res
	}
	minOff, maxOff := min(q.min.Load(), q.next.Load()), q.next.Load()
	if storage.OutOfRange(res, offset, minOff, maxOff) {
		return res
	}
	if maxMsgs <= 0 {
		maxMsgs = 1
	}
	res.Status = storage.GetNoMatchedMessage
	limitCount := max(s.opts.MaxTransferCountOnMessageInMemory, 1)
	limitBytes := max(s.opts.MaxTransferBytesOnMessageInMemory, 1)
	scan := int64(max(16000/unitSize, maxMsgs))
	next := offset
	_ = s.db.View(func(txn *badgerdb.Txn) error {
		p := queuePrefix(topic, id)
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		found := false
		for it.Seek(unitKey(topic, id, offset)); it.Valid(); it.Next() {
			qo := int64(binary.BigEndian.Uint64(it.Item().Key()[len(p):]))
			if !found && qo > offset {
				// A gap (units expired or never written): every unit below
				// maxOff was visible when the read began, so the queue goes
				// on at qo.
				next = min(qo, maxOff)
			}
			found = true
			if qo >= maxOff || qo-offset >= scan {
				break
			}
			var phy, tags int64
			var size int32
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == unitSize {
					phy, size, tags = int64(binary.BigEndian.Uint64(v)), int32(binary.BigEndian.Uint32(v[8:])), int64(binary.BigEndian.Uint64(v[12:]))
				}
				return nil
			}); err != nil || size == 0 {
				next = qo + 1
				continue
			}
			n := len(res.Records)
			if n > 0 && (n >= maxMsgs || n >= limitCount || (maxBytes > 0 && res.TotalBytes+int(size) > maxBytes) || res.TotalBytes+int(size) > limitBytes) {
				break
			}
			next = qo + 1
			if filter != nil && !filter.MatchTagsCode(tags) {
				continue
			}
			rec, ok := readRecord(txn, phy)
			if !ok {
				if res.TotalBytes == 0 {
					res.Status = storage.GetMessageWasRemoving
				}
				continue
			}
			if filter != nil && !filter.MatchRecord(rec) {
				continue
			}
			res.Records = append(res.Records, rec)
			res.TotalBytes += len(rec)
			res.Status = storage.GetFound
		}
		if !found {
			next = maxOff // no unit from offset on below the end
		}
		return nil
	})
	res.NextBeginOffset = next
	return res
}

// storeTimeAt is the store time of the record at a queue offset.
func (s *Store) storeTimeAt(txn *badgerdb.Txn, topic string, id int32, off int64) (int64, bool) {
	phy, _, _, ok := readUnit(txn, topic, id, off)
	if !ok {
		return 0, false
	}
	item, err := txn.Get(recordKey(phy))
	if err != nil {
		return 0, false
	}
	var ts int64
	err = item.Value(func(v []byte) error { ts = message.RecordStoreTimestamp(v); return nil })
	return ts, err == nil
}

// OffsetByTime implements storage.Store.
func (s *Store) OffsetByTime(topic string, id int32, ts int64) int64 {
	q := s.queue(topic, id)
	if q == nil {
		return 0
	}
	lo, hi := s.MinOffset(topic, id), q.next.Load()
	_ = s.db.View(func(txn *badgerdb.Txn) error {
		for lo < hi {
			mid := lo + (hi-lo)/2
			if t, ok := s.storeTimeAt(txn, topic, id, mid); !ok || t < ts {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return nil
	})
	return lo
}

// EarliestMessageTime implements storage.Store.
func (s *Store) EarliestMessageTime(topic string, id int32) (int64, error) {
	return s.MessageStoreTime(topic, id, s.MinOffset(topic, id))
}

// MessageStoreTime implements storage.Store.
func (s *Store) MessageStoreTime(topic string, id int32, off int64) (int64, error) {
	var ts int64
	var ok bool
	_ = s.db.View(func(txn *badgerdb.Txn) error {
		ts, ok = s.storeTimeAt(txn, topic, id, off)
		return nil
	})
	if !ok || off >= s.MaxOffset(topic, id) {
		return 0, storage.ErrNotFound
	}
	return ts, nil
}

// ReadMessage implements storage.Store.
func (s *Store) ReadMessage(phy int64) ([]byte, error) {
	if phy >= s.maxPhy.Load() {
		return nil, storage.ErrNotFound
	}
	var rec []byte
	var ok bool
	_ = s.db.View(func(txn *badgerdb.Txn) error {
		rec, ok = readRecord(txn, phy)
		return nil
	})
	if !ok {
		return nil, storage.ErrNotFound
	}
	return rec, nil
}

// MinPhyOffset implements storage.Store.
func (s *Store) MinPhyOffset() int64 { return s.minPhy.Load() }

// MaxPhyOffset implements storage.Store.
func (s *Store) MaxPhyOffset() int64 { return s.maxPhy.Load() }

// DeleteTopics implements storage.Store: the topics' queues go (units and
// next offsets, by prefix); their records stay until retention. Badger
// blocks writes while it drops a prefix, so the drop runs with puts held
// (putMu) and every accepted put written first (a barrier through the
// committer); a put to the topic accepted before the delete cannot bring a
// unit back after it.
func (s *Store) DeleteTopics(topics ...string) error {
	var prefixes [][]byte
	for _, t := range topics {
		// Names are key material here, not paths, but a name no engine
		// could hold is refused alike on every engine.
		if t == "" || t == "." || strings.Contains(t, "..") || strings.ContainsAny(t, "/\\\x00") {
			return fmt.Errorf("topic name %q is not a topic", t)
		}
		for _, prefix := range []byte{prefixQueue, prefixNext} {
			prefixes = append(prefixes, append(append([]byte{prefix}, t...), 0))
		}
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if !s.running.Load() {
		return errNotRunning
	}
	barrier := &putReq{done: make(chan struct{}), endPhy: s.nextPhy}
	s.reqs <- barrier
	<-barrier.done
	var err error
	for range 50 { // value-log GC may hold the write block for a moment
		if err = s.db.DropPrefix(prefixes...); !errors.Is(err, badgerdb.ErrBlockedWrites) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.queuesMu.Lock()
	for k := range s.queues {
		if slices.Contains(topics, k.topic) {
			delete(s.queues, k)
		}
	}
	s.queuesMu.Unlock()
	return nil
}

// QueueIDs implements storage.Store.
func (s *Store) QueueIDs(topic string) []int32 {
	s.queuesMu.RLock()
	var ids []int32
	for k := range s.queues {
		if k.topic == topic {
			ids = append(ids, k.id)
		}
	}
	s.queuesMu.RUnlock()
	slices.Sort(ids)
	return ids
}

// Topics implements storage.Store.
func (s *Store) Topics() []string {
	s.queuesMu.RLock()
	seen := map[string]bool{}
	for k := range s.queues {
		seen[k.topic] = true
	}
	s.queuesMu.RUnlock()
	return slices.Sorted(maps.Keys(seen))
}

// QueryMessages implements storage.Store: the index is written with the
// records, so a message is found as soon as its put is answered.
func (s *Store) QueryMessages(topic, key string, maxNum int, begin, end int64, uniqKey bool) (storage.QueryResult, error) {
	var res storage.QueryResult
	if !s.opts.MessageIndexEnable {
		return res, errors.New("the message index is disabled (messageIndexEnable=false)")
	}
	if uniqKey {
		maxNum = s.opts.DefaultQueryMaxNum
	}
	maxNum = min(maxNum, s.opts.MaxMsgsNumBatch)
	res.IndexLastUpdateTimestamp, res.IndexLastUpdatePhyOffset = s.lastIndexTs.Load(), s.lastIndexPhy.Load()
	if maxNum <= 0 || topic == "" || key == "" {
		return res, nil
	}
	if end <= 0 {
		end = math.MaxInt64
	}
	limit := s.maxPhy.Load()                  // index keys of puts not answered yet are not answers
	prefixes := []byte{prefixUniq, prefixKey} // a key may be a KEYS token or the UNIQ_KEY
	if uniqKey {
		prefixes = prefixes[:1]
	}
	err := s.db.View(func(txn *badgerdb.Txn) error {
		for _, prefix := range prefixes {
			p := append(append(append(append([]byte{prefix}, topic...), 0), key...), 0)
			it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: p, Reverse: true, PrefetchValues: true})
			seek := append(append([]byte(nil), p...), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
			for it.Seek(seek); it.Valid() && len(res.Offsets) < maxNum; it.Next() {
				k := it.Item().Key()
				if len(k) != len(p)+8 {
					continue
				}
				var ts int64
				_ = it.Item().Value(func(v []byte) error {
					if len(v) == 8 {
						ts = int64(binary.BigEndian.Uint64(v))
					}
					return nil
				})
				phy := int64(binary.BigEndian.Uint64(k[len(p):]))
				if ts < begin || ts > end || phy >= limit || slices.Contains(res.Offsets, phy) {
					continue
				}
				res.Offsets = append(res.Offsets, phy)
			}
			it.Close()
		}
		return nil
	})
	// Newest first, whichever key matched.
	slices.SortFunc(res.Offsets, func(a, b int64) int { return cmp.Compare(b, a) })
	return res, err
}

// SetArrivalListener implements storage.Store.
func (s *Store) SetArrivalListener(l storage.ArrivalListener) {
	if l == nil {
		s.listener.Store(nil)
		return
	}
	s.listener.Store(&l)
}

// ReadQueueEntries implements storage.Store.
func (s *Store) ReadQueueEntries(topic string, id int32, offset int64, limit int, dst []storage.QueueEntry) ([]storage.QueueEntry, int64) {
	q := s.queue(topic, id)
	if q == nil || limit <= 0 {
		return dst, offset
	}
	maxOff := q.next.Load()
	offset = max(min(offset, maxOff), s.MinOffset(topic, id))
	next := offset
	_ = s.db.View(func(txn *badgerdb.Txn) error {
		p := queuePrefix(topic, id)
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: p, PrefetchValues: true})
		defer it.Close()
		n := 0
		for it.Seek(unitKey(topic, id, offset)); it.Valid() && n < limit; it.Next() {
			qo := int64(binary.BigEndian.Uint64(it.Item().Key()[len(p):]))
			if qo >= maxOff {
				break
			}
			_ = it.Item().Value(func(v []byte) error {
				if len(v) == unitSize {
					dst = append(dst, storage.QueueEntry{Offset: qo, CommitLogOffset: int64(binary.BigEndian.Uint64(v)),
						Size: int32(binary.BigEndian.Uint32(v[8:])), TagsCode: int64(binary.BigEndian.Uint64(v[12:]))})
				}
				return nil
			})
			next = qo + 1
			n++
		}
		return nil
	})
	return dst, next
}

// SetDeliveryTimer implements storage.Store.
func (s *Store) SetDeliveryTimer(t storage.DeliveryTimer) {
	if t == nil {
		s.timer.Store(nil)
		return
	}
	s.timer.Store(&t)
}

var _ storage.Store = (*Store)(nil)
