package broker

// The transaction check-back service: it tracks which half messages are still
// unresolved and asks their producers (CHECK_TRANSACTION_STATE, 39) about
// them.
//
// Design. Half messages are read in queue order by a scan cursor S (the next
// half queue offset to look at). State, all under txService.mu:
//   - pending: half messages below S without an op record, each with its
//     commit-log offset, the number of check-backs sent and the time of the next;
//   - done: half messages at or above S that already ended (END_TRANSACTION came
//     before the scan), with the op queue offset of their op record;
//   - busy: half messages whose END_TRANSACTION is being processed.
// The scan runs every second (at most every transactionCheckInterval), so done
// only holds the last second's transactions and pending only those unresolved
// since the last scan: memory is proportional to unresolved transactions, not
// to throughput, and a message stuck unknown for 15 minutes does not make the
// service re-read everything stored after it (the reason Java re-appends half
// messages on every check).
//
// Durability. config/transactionCheck.json holds S, the pending list (with
// check counts, so transactionCheckMax holds across restarts) and the op queue
// offset O from which op records must be replayed: O is below the op record of
// every done entry and below every op record whose END_TRANSACTION has not been
// applied yet. It is written atomically every flushConsumerOffsetInterval and
// at stop. At start the file is loaded, clamped to what the store holds after
// recovery, and the op records from O on are replayed (idempotently). After a
// crash the state is that of the last write, and replaying the op and half
// queues brings it forward: nothing committed is lost, nothing rolled back
// resurfaces. The group CID_RMQ_SYS_TRANS in consumerOffset.json mirrors the
// progress for tools: on the half queue the first unresolved message, on the
// op queue O. Without the file (first start, or a store written by RocketMQ)
// those offsets are the starting point, with Java's meaning.
//
// A check-back that cannot be sent (no live producer of the group) is not
// counted: the message is checked again next round, so producers that are down
// for a while do not get their transactions discarded. Discarded messages
// (transactionCheckMax reached) are copied to TRANS_CHECK_MAX_TIME_TOPIC and
// logged at warn, as Java does.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// transactionCheckFile is the check service's state under <storePathRootDir>/config.
const transactionCheckFile = "transactionCheck.json"

// txScanBatch is how many half (or op) records one read takes.
const txScanBatch = 64

// pendingHalf is an unresolved half message below the scan cursor.
type pendingHalf struct {
	commitLogOffset int64
	nextCheck       int64 // ms: not checked back before
	checks          int32 // check-backs sent
}

// txService is the transaction bookkeeping and check-back service.
type txService struct {
	b    *Broker
	path string

	mu      sync.Mutex
	scan    int64
	pending map[int64]*pendingHalf
	done    map[int64]int64
	busy    map[int64]struct{}
	// opNext is the op-record watermark: every op record below it has been
	// applied; opSeen holds applied op offsets above it (END_TRANSACTIONs
	// finish out of order).
	opNext  int64
	opSeen  map[int64]struct{}
	changes uint64

	persistMu sync.Mutex
	persisted uint64
	// lastMirror is the progress last committed to the consumer offsets.
	lastMirror [2]int64
	// fullLogged rate-limits the transactionMaxPending warning (scanHalf
	// runs on one goroutine); scanPauses counts the scans it stopped.
	fullLogged time.Time
	scanPauses atomic.Int64
}

// txCheckState is transactionCheck.json.
type txCheckState struct {
	HalfOffset int64           `json:"halfOffset"`
	OpOffset   int64           `json:"opOffset"`
	Pending    []txPendingJSON `json:"pending"`
}

type txPendingJSON struct {
	QueueOffset     int64 `json:"queueOffset"`
	CommitLogOffset int64 `json:"commitLogOffset"`
	CheckTimes      int32 `json:"checkTimes"`
	NextCheck       int64 `json:"nextCheck"`
}

// startTransactionService loads the check state (replaying op records written
// since it was saved) and starts the scan and check-back loop. It runs before
// the broker serves requests.
func (b *Broker) startTransactionService() error {
	c := &b.cfg.TransactionConfig
	if c.TransactionCheckInterval <= 0 {
		return fmt.Errorf("broker.transactionCheckInterval must be positive, got %d", c.TransactionCheckInterval)
	}
	if c.TransactionTimeOut < 0 {
		return fmt.Errorf("broker.transactionTimeOut must not be negative, got %d", c.TransactionTimeOut)
	}
	if c.TransactionCheckMax < 0 {
		return fmt.Errorf("broker.transactionCheckMax must not be negative, got %d", c.TransactionCheckMax)
	}
	t := &txService{
		b:          b,
		path:       filepath.Join(b.configDir, transactionCheckFile),
		pending:    make(map[int64]*pendingHalf),
		done:       make(map[int64]int64),
		busy:       make(map[int64]struct{}),
		opSeen:     make(map[int64]struct{}),
		lastMirror: [2]int64{-1, -1},
	}
	b.tx = t
	if b.storeCfg.IsSlave() {
		// A slave ends no transaction and checks none back (END_TRANSACTION
		// is refused there); the master's progress reaches it as the
		// CID_RMQ_SYS_TRANS offsets (slave.go), from which load starts if
		// it is restarted as a master.
		return nil
	}
	if err := t.load(); err != nil {
		return err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t.run()
	}()
	return nil
}

// stopTransactionService saves the state; the loop has ended with b.stop.
func (b *Broker) stopTransactionService() {
	if b.tx == nil {
		return
	}
	if err := b.tx.persist(); err != nil {
		b.log.Error().Err(err).Msg("persist transaction check state")
	}
}

// run scans every second (or every transactionCheckInterval if shorter),
// checks back every transactionCheckInterval and saves the state every
// flushConsumerOffsetInterval.
func (t *txService) run() {
	cfg := &t.b.cfg
	interval := time.Duration(cfg.TransactionCheckInterval) * time.Millisecond
	tick := min(time.Second, interval)
	flush := time.Duration(cfg.FlushConsumerOffsetInterval) * time.Millisecond
	if flush <= 0 {
		flush = defaultOffsetFlush
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	nextRound := time.Now().Add(interval)
	nextFlush := time.Now().Add(flush)
	for {
		select {
		case <-t.b.stop:
			return
		case now := <-ticker.C:
			t.scanHalf()
			if !now.Before(nextRound) {
				t.round(now)
				nextRound = now.Add(interval)
			}
			if !now.Before(nextFlush) {
				if err := t.persist(); err != nil {
					t.b.log.Error().Err(err).Msg("persist transaction check state")
				}
				nextFlush = now.Add(flush)
			}
		}
	}
}

// load restores the state from transactionCheck.json (or, without it, from
// the CID_RMQ_SYS_TRANS consumer offsets) and replays the op records since.
func (t *txService) load() error {
	st := t.b.store
	var saved txCheckState
	found, err := t.b.loadMeta(t.path, "transaction check state", func(data []byte) error {
		saved = txCheckState{}
		return json.Unmarshal(data, &saved)
	})
	if err != nil {
		return err
	}
	halfMin, halfMax := st.MinOffset(topicTransHalf, 0), st.MaxOffset(topicTransHalf, 0)
	opMin, opMax := st.MinOffset(topicTransOpHalf, 0), st.MaxOffset(topicTransOpHalf, 0)
	if !found {
		saved.HalfOffset = halfMin
		if off, ok := t.b.offsets.Query(transCheckGroup, topicTransHalf, 0); ok {
			saved.HalfOffset = off
		}
		saved.OpOffset = opMin
		if off, ok := t.b.offsets.Query(transCheckGroup, topicTransOpHalf, 0); ok {
			saved.OpOffset = off
		}
	}
	// After a crash the store may hold less than the state saw (an unflushed
	// tail): rescan from what is there rather than skip new messages.
	if saved.HalfOffset > halfMax {
		t.b.log.Warn().Int64("saved", saved.HalfOffset).Int64("max", halfMax).
			Msg("transaction check state is ahead of the half queue; rescanning from its end")
		saved.HalfOffset = halfMax
	}
	t.scan = max(saved.HalfOffset, halfMin)
	for _, p := range saved.Pending {
		if p.QueueOffset < t.scan && p.QueueOffset >= halfMin {
			t.pending[p.QueueOffset] = &pendingHalf{commitLogOffset: p.CommitLogOffset, nextCheck: p.NextCheck, checks: p.CheckTimes}
		}
	}
	from := min(max(saved.OpOffset, opMin), opMax)
	replayed := 0
	for off := from; off < opMax; {
		res := st.GetMessages(topicTransOpHalf, 0, off, txScanBatch, 1<<20, nil)
		next := res.NextBeginOffset
		for _, rec := range res.Records {
			for _, h := range opRecordHalfOffsets(rec) {
				t.applyOpLocked(h, message.RecordQueueOffset(rec))
				replayed++
			}
			next = max(next, message.RecordQueueOffset(rec)+1)
		}
		res.Release()
		if next <= off {
			break
		}
		off = next
	}
	t.opNext = opMax
	clear(t.opSeen)
	t.b.log.Info().Int64("halfOffset", t.scan).Int("pending", len(t.pending)).Int("opReplayed", replayed).
		Bool("checkEnabled", t.b.cfg.CheckTransactionMessageEnable).Msg("transaction check state loaded")
	return nil
}

// opRecordHalfOffsets decodes an op record: tag "d", body the half queue
// offset it ends, or several joined by "," (RocketMQ 5 batches them), so a
// store written by either is replayed. Malformed parts are skipped.
func opRecordHalfOffsets(rec []byte) []int64 {
	l, err := message.Decode(rec)
	if err != nil || message.Property(l.Properties, message.PropertyTags) != opRemoveTag {
		return nil
	}
	var out []int64
	for part := range strings.SplitSeq(string(l.Body), ",") {
		if h, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64); err == nil && h >= 0 {
			out = append(out, h)
		}
	}
	return out
}

// applyOpLocked records that half message h ended with op record opOffset (-1:
// none could be written).
func (t *txService) applyOpLocked(h, opOffset int64) {
	if h < t.scan {
		delete(t.pending, h)
	} else {
		t.done[h] = opOffset
	}
	t.changes++
}

// markOpLocked advances the op watermark past opOffset once every op record
// below it has been applied.
func (t *txService) markOpLocked(opOffset int64) {
	if opOffset < t.opNext {
		return
	}
	t.opSeen[opOffset] = struct{}{}
	for {
		if _, ok := t.opSeen[t.opNext]; !ok {
			return
		}
		delete(t.opSeen, t.opNext)
		t.opNext++
	}
}

// begin claims half message h for an END_TRANSACTION. ok is false when it has
// already ended (or is being ended: busy).
func (t *txService) begin(h int64) (ok, busy bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, b := t.busy[h]; b {
		return false, true
	}
	if h < t.scan {
		if t.pending[h] == nil {
			return false, false
		}
	} else if _, d := t.done[h]; d {
		return false, false
	}
	t.busy[h] = struct{}{}
	return true, false
}

// abort releases a claim whose END_TRANSACTION failed before anything was stored.
func (t *txService) abort(h int64) {
	t.mu.Lock()
	delete(t.busy, h)
	t.mu.Unlock()
}

// end records a finished END_TRANSACTION of half message h.
func (t *txService) end(h, opOffset int64) {
	t.mu.Lock()
	delete(t.busy, h)
	t.applyOpLocked(h, opOffset)
	if opOffset >= 0 {
		t.markOpLocked(opOffset)
	}
	t.mu.Unlock()
}

// halfEntry is what the scan needs of a half record.
type halfEntry struct {
	queueOffset     int64
	commitLogOffset int64
	firstCheck      int64
	checks          int32
}

// scanHalf moves the scan cursor to the end of the half queue: half messages
// that already ended are forgotten, the others become pending.
func (t *txService) scanHalf() {
	st := t.b.store
	timeout := t.b.cfg.TransactionTimeOut
	entries := make([]halfEntry, 0, txScanBatch)
	for {
		t.mu.Lock()
		from, full := t.scan, t.b.cfg.TransactionMaxPending > 0 && len(t.pending) >= t.b.cfg.TransactionMaxPending
		t.mu.Unlock()
		if full {
			t.scanPauses.Add(1)
			// Bounded memory: later half messages wait on disk, below no
			// cursor, until earlier ones resolve (docs/security.md).
			if now := time.Now(); now.Sub(t.fullLogged) >= time.Minute {
				t.fullLogged = now
				t.b.log.Warn().Int("pending", t.b.cfg.TransactionMaxPending).Int64("halfOffset", from).
					Msg("transaction check-back: transactionMaxPending unresolved half messages tracked; the half-queue scan waits for some to resolve")
			}
			return
		}
		if from >= st.MaxOffset(topicTransHalf, 0) {
			return
		}
		res := st.GetMessages(topicTransHalf, 0, from, txScanBatch, 1<<20, nil)
		next := res.NextBeginOffset
		entries = entries[:0]
		for _, rec := range res.Records {
			e := halfEntry{
				queueOffset:     message.RecordQueueOffset(rec),
				commitLogOffset: message.RecordPhysicalOffset(rec),
			}
			props := message.RecordPropertiesBytes(rec)
			e.firstCheck = message.RecordStoreTimestamp(rec) + immunityMillis(props, timeout)
			if n, err := strconv.Atoi(string(message.PropertyBytes(props, message.PropertyTransactionCheckTimes))); err == nil && n > 0 {
				e.checks = int32(n) // a copy Java re-appended while checking
			}
			entries = append(entries, e)
			next = max(next, e.queueOffset+1)
		}
		res.Release()
		if next <= from {
			return // nothing readable yet (or a gap the store has not filled)
		}
		t.mu.Lock()
		for _, e := range entries {
			if e.queueOffset < from || e.queueOffset >= next {
				continue
			}
			if _, ok := t.done[e.queueOffset]; ok {
				delete(t.done, e.queueOffset)
				continue
			}
			t.pending[e.queueOffset] = &pendingHalf{commitLogOffset: e.commitLogOffset, nextCheck: e.firstCheck, checks: e.checks}
		}
		if len(entries) < int(next-from) {
			// Records skipped (deleted with their commit-log file): forget
			// what ended among them.
			for h := range t.done {
				if h < next {
					delete(t.done, h)
				}
			}
		}
		t.scan = next
		t.changes++
		t.mu.Unlock()
	}
}

// immunityMillis is how long after being stored a half message is first
// checked: CHECK_IMMUNITY_TIME_IN_SECONDS (-1 or malformed: the timeout), else
// transactionTimeOut.
func immunityMillis(props []byte, timeout int64) int64 {
	v := message.PropertyBytes(props, message.PropertyCheckImmunityTimeInSeconds)
	if len(v) == 0 {
		return timeout
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 || n > 1<<31 {
		return timeout
	}
	return n * 1000
}

// round is one check-back round: pending messages that are due are checked
// back with a live producer of their group, or discarded after
// transactionCheckMax checks; messages whose commit-log file is gone are
// forgotten. With checkTransactionMessageEnable false only the latter happens.
func (t *txService) round(now time.Time) {
	b := t.b
	cfg := &b.cfg.TransactionConfig
	checking := cfg.CheckTransactionMessageEnable && b.storeCfg.BrokerRole != storage.RoleSlave
	nowMs := now.UnixMilli()
	minPhy := b.store.MinPhyOffset()
	t.mu.Lock()
	var due []int64
	for h, p := range t.pending {
		if p.commitLogOffset < minPhy || (checking && p.nextCheck <= nowMs) {
			if _, busy := t.busy[h]; !busy {
				due = append(due, h)
			}
		}
	}
	t.mu.Unlock()
	slices.Sort(due)
	if n := cfg.TransactionMaxChecksPerRound; n > 0 && len(due) > n {
		due = due[:n] // oldest first; the rest next round
	}
	var noProducer map[string]int
	for _, h := range due {
		t.mu.Lock()
		p := t.pending[h]
		var clo int64
		var checks int32
		if p != nil {
			clo, checks = p.commitLogOffset, p.checks
		}
		t.mu.Unlock()
		if p == nil {
			continue
		}
		var half *message.Ext
		rec, err := b.store.ReadMessage(clo)
		if err == nil {
			half, err = message.Decode(rec)
		}
		if clo < minPhy {
			if t.remove(h) {
				b.log.Warn().Int64("halfOffset", h).Int64("commitLogOffset", clo).
					Msg("transaction half message no longer in the commit log; forgetting it")
			}
			continue
		}
		if err != nil {
			// Still inside the log but unreadable (a damaged record): keep it
			// pending and say so every round rather than lose the transaction
			// without a trace.
			b.log.Error().Err(err).Int64("halfOffset", h).Int64("commitLogOffset", clo).
				Msg("transaction half message cannot be read; it stays pending")
			continue
		}
		if !checking {
			continue
		}
		if int(checks) >= cfg.TransactionCheckMax {
			t.discard(h, half, checks)
			// Record the discard now: a crash before the periodic save would
			// reload the entry and copy it to the discard topic twice.
			if err := t.persist(); err != nil {
				b.log.Error().Err(err).Msg("saving the transaction check state after a discard failed")
			}
			continue
		}
		group := message.Property(half.Properties, message.PropertyProducerGroup)
		if !t.sendCheck(group, half, checks) {
			if noProducer == nil {
				noProducer = make(map[string]int)
			}
			noProducer[group]++
			continue
		}
		t.mu.Lock()
		if p := t.pending[h]; p != nil {
			p.checks++
			p.nextCheck = nowMs + cfg.TransactionTimeOut
			t.changes++
		}
		t.mu.Unlock()
	}
	for group, n := range noProducer {
		b.log.Warn().Str("producerGroup", group).Int("halfMessages", n).
			Msg("transaction check-back: no live producer of the group; checking again next round")
	}
}

// remove forgets pending half message h; false if it was not pending (or busy).
func (t *txService) remove(h int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, busy := t.busy[h]; busy || t.pending[h] == nil {
		return false
	}
	delete(t.pending, h)
	t.changes++
	return true
}

// sendCheck sends CHECK_TRANSACTION_STATE for half to one live producer of
// group, trying the others if a write fails. The body is the half message with
// its real topic and queue, as Java sends it.
func (t *txService) sendCheck(group string, half *message.Ext, checks int32) bool {
	b := t.b
	if group == "" {
		return false
	}
	conns := b.clients.ProducerConns(group)
	if len(conns) == 0 {
		return false
	}
	m := half.Message
	if topic := message.Property(m.Properties, message.PropertyRealTopic); topic != "" {
		m.Topic = topic
	}
	if q, err := strconv.ParseInt(message.Property(m.Properties, message.PropertyRealQueueID), 10, 32); err == nil {
		m.QueueID = int32(q)
	}
	if props := message.AppendProperty(m.Properties, message.PropertyTransactionCheckTimes,
		strconv.Itoa(int(checks)+1)); len(props) <= message.MaxPropertiesLength {
		m.Properties = props
	}
	if message.Check(&m) != nil {
		m.Topic, m.QueueID = half.Topic, half.QueueID
	}
	uniq := message.Property(m.Properties, message.PropertyUniqKey)
	ext := map[string]string{
		"tranStateTableOffset": strconv.FormatInt(half.QueueOffset, 10),
		"commitLogOffset":      strconv.FormatInt(half.CommitLogOffset, 10),
		"msgId":                uniq,
		"transactionId":        uniq,
		"offsetMsgId":          message.OffsetMsgID(half.StoreHost, half.CommitLogOffset),
	}
	req := remoting.NewRequest(remoting.CheckTransactionState, ext,
		message.Encode(nil, &m, half.QueueOffset, half.CommitLogOffset, half.StoreTimestamp))
	start := rand.IntN(len(conns))
	for i := range conns {
		if conns[(start+i)%len(conns)].InvokeOneway(req) == nil {
			return true
		}
	}
	return false
}

// discard gives up on a half message checked back transactionCheckMax times:
// it is copied to TRANS_CHECK_MAX_TIME_TOPIC (Java's
// DefaultTransactionalMessageCheckListener.resolveDiscardMsg) and forgotten.
func (t *txService) discard(h int64, half *message.Ext, checks int32) {
	if !t.remove(h) {
		return
	}
	b := t.b
	b.log.Warn().Str("producerGroup", message.Property(half.Properties, message.PropertyProducerGroup)).
		Str("topic", message.Property(half.Properties, message.PropertyRealTopic)).
		Str("msgId", message.Property(half.Properties, message.PropertyUniqKey)).
		Int64("halfOffset", h).Int32("checks", checks).
		Msg("transaction half message discarded after transactionCheckMax check-backs; copied to " + topicTransCheckMax)
	b.ensureTransTopic(topicTransCheckMax)
	m := half.Message
	m.Topic = topicTransCheckMax
	m.QueueID = 0
	if props := message.AppendProperty(m.Properties, message.PropertyTransactionCheckTimes,
		strconv.Itoa(int(checks))); len(props) <= message.MaxPropertiesLength {
		m.Properties = props
	}
	res := b.internalPut(&m)
	b.notifyReplica() // no client waits on a discard copy
	if !res.Status.Stored() {
		b.log.Error().Int64("halfOffset", h).Str("status", res.Status.String()).Err(res.Err).
			Msg("copying a discarded transaction half message to " + topicTransCheckMax + " failed")
	}
}

// persist saves the state (when it changed) and mirrors the progress into the
// CID_RMQ_SYS_TRANS consumer offsets.
func (t *txService) persist() error {
	t.persistMu.Lock()
	defer t.persistMu.Unlock()
	t.mu.Lock()
	changes := t.changes
	if changes == t.persisted {
		t.mu.Unlock()
		return nil
	}
	s := txCheckState{HalfOffset: t.scan, OpOffset: t.opNext, Pending: make([]txPendingJSON, 0, len(t.pending))}
	for _, op := range t.done {
		if op >= 0 {
			s.OpOffset = min(s.OpOffset, op)
		}
	}
	first := t.scan
	for h, p := range t.pending {
		s.Pending = append(s.Pending, txPendingJSON{QueueOffset: h, CommitLogOffset: p.commitLogOffset,
			CheckTimes: p.checks, NextCheck: p.nextCheck})
		first = min(first, h)
	}
	t.mu.Unlock()
	slices.SortFunc(s.Pending, func(a, b txPendingJSON) int { return cmp.Compare(a.QueueOffset, b.QueueOffset) })
	if first != t.lastMirror[0] || s.OpOffset != t.lastMirror[1] {
		t.b.offsets.Commit(transCheckGroup, topicTransHalf, 0, first)
		t.b.offsets.Commit(transCheckGroup, topicTransOpHalf, 0, s.OpOffset)
		t.lastMirror = [2]int64{first, s.OpOffset}
	}
	data, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		return err
	}
	if err := writeFileSafe(t.path, data); err != nil {
		return err
	}
	t.persisted = changes
	return nil
}
