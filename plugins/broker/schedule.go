package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Delay levels (RocketMQ's ScheduleMessageService). A message sent with
// DELAY=<level> is stored in SCHEDULE_TOPIC_XXXX, queue level-1, with its real
// topic and queue in REAL_TOPIC / REAL_QID; the store indexes it with its
// delivery time (store time + the level's delay) as the consume-queue tags
// code. One goroutine per level walks its queue from the level's delay offset:
// a due entry is re-stored to the real topic (DELAY removed, born time, born
// host and reconsume times kept) and only then the offset advances, so a
// crash re-delivers at most what was stored since the last persisted offset
// and loses nothing. A level sleeps until its next entry is due, or until the
// store reports a new entry in its queue (the arrival listener); there is no
// polling. Offsets are persisted to config/delayOffset.json in Java's form.

const (
	delayOffsetFile    = "delayOffset.json"
	defaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
	// scheduleRetryDelay is how long a level waits after a failed put (Java: 100 ms
	// for a full store, here longer so a broken disk does not spin).
	scheduleRetryDelay = 500 * time.Millisecond
	scheduleBatch      = 64
)

func init() {
	b := func(name string, def any, doc string) config.Key {
		return config.Key{Path: "broker." + name, Role: "broker", RocketMQ: []string{name}, Default: def, Doc: doc}
	}
	config.Register(
		b("messageDelayLevel", defaultDelayLevels, "delay of each DELAY level, space separated, units s m h d"),
		b("flushDelayOffsetInterval", int64(10000), "period of persisting delay offsets (config/delayOffset.json), ms"),
		b("timerWheelEnable", true, "accept messages with a delivery time (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS)"),
		b("timerMaxDelaySec", int64(259200), "latest delivery time accepted for a timer message, seconds from now"),
		b("timerFlushIntervalMs", int64(1000), "period of persisting the timer progress (config/timerProgress.json), ms"),
	)
}

// parseDelayLevels parses messageDelayLevel the way Java does: tokens of a
// number and a one-letter unit (s, m, h, d); level N is the Nth token.
func parseDelayLevels(s string) ([]time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("messageDelayLevel is empty")
	}
	out := make([]time.Duration, 0, len(fields))
	for i, f := range fields {
		unit, ok := units[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if !ok || err != nil || n < 0 || n > int64(365*24*time.Hour/unit) {
			return nil, fmt.Errorf("messageDelayLevel: level %d %q is not a number followed by s, m, h or d", i+1, f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	return out, nil
}

// delayOffsetKey matches a bare integer object key, as fastjson writes them.
var delayOffsetKey = regexp.MustCompile(`([{,]\s*)(-?\d+)(\s*:)`)

// decodeDelayOffsets reads delayOffset.json: {"offsetTable":{1:0,2:5}} with
// bare (Java) or quoted integer keys.
func decodeDelayOffsets(data []byte) (map[int]int64, error) {
	quoted := delayOffsetKey.ReplaceAll(data, []byte(`$1"$2"$3`))
	var w struct {
		OffsetTable map[string]int64 `json:"offsetTable"`
	}
	if err := json.Unmarshal(quoted, &w); err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(w.OffsetTable))
	for k, v := range w.OffsetTable {
		level, err := strconv.Atoi(k)
		if err != nil || level <= 0 {
			return nil, fmt.Errorf("delay offset table: bad level %q", k)
		}
		if v < 0 {
			return nil, fmt.Errorf("delay offset table: level %d has negative offset %d", level, v)
		}
		out[level] = v
	}
	return out, nil
}

// encodeDelayOffsets writes the table in Java's form, levels in order.
func encodeDelayOffsets(t map[int]int64) []byte {
	levels := make([]int, 0, len(t))
	for l := range t {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	b := []byte(`{"offsetTable":{`)
	for i, l := range levels {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(l), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, t[l], 10)
	}
	return append(b, "}}"...)
}

// scheduleService delivers delay-level messages when due.
type scheduleService struct {
	b      *Broker
	reader storage.Store
	levels []time.Duration
	path   string

	offsets []atomic.Int64  // per level (index level-1): next schedule-queue offset
	wake    []chan struct{} // per level, buffered 1
	failing []bool          // per level: the last put failed (logged once per streak; level goroutine only)
	extra   map[int]int64   // levels in the file beyond messageDelayLevel, kept as Java keeps them
	saveMu  sync.Mutex      // orders snapshot+write pairs
	saved   map[int]int64   // last table written
	loaded  bool            // the file was read
	wg      sync.WaitGroup
}

// provisionSchedule parses the delay levels and gives the store the rule for
// the delivery times of schedule- and timer-topic entries (deliveryTimer),
// which it applies on every dispatch, recovery included: so this runs before
// the store starts.
func (b *Broker) provisionSchedule() error {
	levels, err := parseDelayLevels(b.cfg.MessageDelayLevel)
	if err != nil {
		return err
	}
	reader := b.store
	b.store.SetDeliveryTimer(deliveryTimer(levels))
	if b.cfg.FlushDelayOffsetInterval <= 0 {
		return fmt.Errorf("broker.flushDelayOffsetInterval must be positive")
	}
	if b.cfg.TimerMaxDelaySec <= 0 || b.cfg.TimerFlushIntervalMs <= 0 {
		return fmt.Errorf("broker.timerMaxDelaySec and broker.timerFlushIntervalMs must be positive")
	}
	s := &scheduleService{
		b:       b,
		reader:  reader,
		levels:  levels,
		path:    filepath.Join(b.configDir, delayOffsetFile),
		offsets: make([]atomic.Int64, len(levels)),
		wake:    make([]chan struct{}, len(levels)),
		failing: make([]bool, len(levels)),
		extra:   map[int]int64{},
	}
	for i := range s.wake {
		s.wake[i] = make(chan struct{}, 1)
	}
	b.schedule = s
	b.timers = newTimerService(b, reader)
	return nil
}

// maxLevel is the highest delay level.
func (s *scheduleService) maxLevel() int { return len(s.levels) }

// load reads delayOffset.json and clamps every offset into its queue's
// bounds (Java correctDelayOffset).
func (s *scheduleService) load() error {
	var table map[int]int64
	if _, err := s.b.loadMeta(s.path, "delay offsets", func(data []byte) error {
		t, err := decodeDelayOffsets(data)
		table = t
		return err
	}); err != nil {
		return err
	}
	for level, off := range table {
		if level > len(s.levels) {
			s.extra[level] = off
			continue
		}
		qid := int32(level - 1)
		lo, hi := s.b.store.MinOffset(topicSchedule, qid), s.b.store.MaxOffset(topicSchedule, qid)
		if c := min(max(off, lo), hi); c != off {
			s.b.log.Warn().Int("level", level).Int64("offset", off).Int64("corrected", c).
				Int64("min", lo).Int64("max", hi).Msg("delay offset outside its schedule queue, corrected")
			off = c
		}
		s.offsets[level-1].Store(off)
	}
	s.saved = table // as read: corrections and missing levels are written at the next persist
	s.loaded = true
	return nil
}

// table snapshots the offsets as delayOffset.json holds them.
func (s *scheduleService) table() map[int]int64 {
	t := make(map[int]int64, len(s.levels)+len(s.extra))
	for l, off := range s.extra {
		t[l] = off
	}
	for i := range s.offsets {
		t[i+1] = s.offsets[i].Load()
	}
	return t
}

// persist writes delayOffset.json if the offsets changed since the last write.
func (s *scheduleService) persist() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if !s.loaded {
		return nil // never overwrite the file with offsets it was not read into
	}
	t := s.table()
	if mapsEqual(t, s.saved) {
		return nil
	}
	if err := writeFileSafe(s.path, encodeDelayOffsets(t)); err != nil {
		return err
	}
	s.saved = t
	return nil
}

func mapsEqual(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// startSchedule loads the delay offsets and the timer progress and, on a
// master, starts delivering.
func (b *Broker) startSchedule() error {
	s := b.schedule
	if b.storeCfg.IsSlave() {
		// A slave stores what its master replicates; its delayOffset.json is
		// the master's copy (slave.go), never rewritten here.
		return nil
	}
	if err := s.load(); err != nil {
		return err
	}
	if err := b.timers.load(); err != nil {
		return err
	}
	for level := 1; level <= len(s.levels); level++ {
		s.wg.Add(1)
		go s.runLevel(level)
	}
	s.wg.Add(1)
	go s.persistLoop()
	b.timers.start()
	return nil
}

// stopSchedule waits for the deliveries in progress (b.stop is closed) and
// persists the delay offsets and the timer progress.
func (b *Broker) stopSchedule() {
	if b.schedule == nil {
		return
	}
	b.schedule.wg.Wait()
	if err := b.schedule.persist(); err != nil {
		b.log.Error().Err(err).Msg("persist delay offsets")
	}
	b.timers.stop()
}

func (s *scheduleService) persistLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Duration(s.b.cfg.FlushDelayOffsetInterval) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.b.stop:
			return
		case <-t.C:
			if err := s.persist(); err != nil {
				s.b.log.Error().Err(err).Msg("persist delay offsets")
			}
		}
	}
}

// notifyArrival is the store's arrival listener: it wakes the schedule level
// or the timer that owns a new internal entry, then parked pulls.
func (b *Broker) notifyArrival(topic string, queueID int32, maxOffset int64) {
	switch topic {
	case topicSchedule:
		if s := b.schedule; s != nil && queueID >= 0 && int(queueID) < len(s.wake) {
			select {
			case s.wake[queueID] <- struct{}{}:
			default:
			}
		}
	case timerTopic:
		if t := b.timers; t != nil {
			t.kick()
		}
	}
	b.pullHold.NotifyArrival(topic, queueID, maxOffset)
	if s := b.ha.slaveSyncer(); s != nil {
		s.replicated(topic)
	}
	// Under SYNC_FLUSH bytes become readable, and so sendable to slaves,
	// only at the group commit, after the put that notified the HA senders
	// may have returned (WAIT=false): wake them again now. (Under
	// ASYNC_FLUSH the put's own notification already found the bytes.)
	if b.storeSyncFlush {
		b.notifyReplica()
	}
}

// runLevel delivers one level's messages as they fall due.
func (s *scheduleService) runLevel(level int) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Second) // Java's first run is after 1 s
	defer timer.Stop()
	var buf []storage.QueueEntry
	for {
		select {
		case <-s.b.stop:
			return
		case <-s.wake[level-1]:
		case <-timer.C:
		}
		var wait time.Duration
		wait, buf = s.deliverLevel(level, buf)
		timer.Stop()
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// deliverLevel delivers the due entries of a level and returns how long to
// wait before the next attempt (0: until a new entry arrives).
func (s *scheduleService) deliverLevel(level int, buf []storage.QueueEntry) (time.Duration, []storage.QueueEntry) {
	qid := int32(level - 1)
	delay := s.levels[level-1].Milliseconds()
	for {
		off := s.offsets[level-1].Load()
		var next int64
		buf, next = s.reader.ReadQueueEntries(topicSchedule, qid, off, scheduleBatch, buf[:0])
		if len(buf) == 0 {
			if next > off { // only placeholders or a removed file: skip them
				s.offsets[level-1].Store(next)
				continue
			}
			return 0, buf
		}
		for _, e := range buf {
			select {
			case <-s.b.stop:
				return 0, buf
			default:
			}
			now := time.Now().UnixMilli()
			at := e.TagsCode
			if at > now+delay {
				at = now // the clock went back, or the level got shorter: deliver now (Java)
			}
			if at > now {
				s.offsets[level-1].Store(e.Offset)
				return time.Duration(at-now) * time.Millisecond, buf
			}
			if !s.b.deliverScheduled(e.CommitLogOffset, level, !s.failing[level-1]) {
				s.failing[level-1] = true
				s.offsets[level-1].Store(e.Offset)
				return scheduleRetryDelay, buf
			}
			s.failing[level-1] = false
			s.offsets[level-1].Store(e.Offset + 1)
		}
		s.offsets[level-1].Store(next)
	}
}

// deliverScheduled re-stores the message at commitLogOffset (a schedule or
// timer entry) to its real topic and queue. It returns false when the put
// failed and must be retried; a message that cannot be delivered at all
// (record gone, no REAL_TOPIC) is logged and counts as done.
// level is the delay level, 0 for a timer message.
func (b *Broker) deliverScheduled(commitLogOffset int64, level int, logFailure bool) bool {
	rec, err := b.store.ReadMessage(commitLogOffset)
	if err != nil {
		b.log.Error().Err(err).Int("level", level).Int64("commitLogOffset", commitLogOffset).
			Msg("delayed message lost: its record is no longer in the commit log")
		return true
	}
	ext, err := message.Decode(rec)
	if err != nil {
		b.log.Error().Err(err).Int("level", level).Int64("commitLogOffset", commitLogOffset).Msg("delayed message undecodable, skipped")
		return true
	}
	m, ok := realMessage(ext)
	if !ok {
		b.log.Error().Int("level", level).Int64("commitLogOffset", commitLogOffset).Str("realTopic", m.Topic).
			Msg("delayed message has no deliverable real topic, skipped")
		return true
	}
	start := time.Now()
	res := b.internalPut(&m)
	b.notifyReplica() // no client waits on a delivery (replicaputs.go)
	b.recordPut(&res, len(m.Body), start)
	if !res.Status.Stored() {
		if logFailure {
			b.log.Warn().Int("level", level).Str("topic", m.Topic).Str("status", res.Status.String()).AnErr("err", res.Err).
				Msg("delivering a delayed message failed, will retry")
		}
		return false
	}
	return true
}

// realMessage rebuilds the message a schedule or timer entry stands for
// (Java messageTimeup): topic and queue from REAL_TOPIC / REAL_QID, DELAY
// removed, everything else as stored.
func realMessage(ext *message.Ext) (message.Message, bool) {
	props := ext.Properties
	topic := message.Property(props, message.PropertyRealTopic)
	qid, err := strconv.Atoi(message.Property(props, message.PropertyRealQueueID))
	if topic == "" || err != nil || qid < 0 || topic == topicTransHalf || topic == topicSchedule || topic == timerTopic {
		return message.Message{Topic: topic}, false
	}
	props = message.RemoveProperty(props, message.PropertyDelayLevel)
	m := ext.Message
	m.Topic = topic
	m.QueueID = int32(qid)
	m.Properties = props
	m.TagsCode = 0
	if tags := message.Property(props, message.PropertyTags); tags != "" {
		m.TagsCode = message.TagsHashCode(tags)
	}
	return m, true
}

// applySchedule diverts a message that asks for a later delivery, on the put
// path of SEND_MESSAGE and CONSUMER_SEND_MSG_BACK (Java's CommitLog put and
// HookUtils.handleScheduleMessage): DELAY=<level> goes to the schedule topic,
// a RocketMQ 5 delivery time (TIMER_DELIVER_MS, TIMER_DELAY_SEC,
// TIMER_DELAY_MS) to the timer topic; DELAY wins when both are set. Half and
// rollback messages are left alone. A bad delivery time is the message's
// fault: MESSAGE_ILLEGAL.
func (b *Broker) applySchedule(m *message.Message) *remoting.Command {
	if t := message.TranType(m.SysFlag); t != message.SysFlagTranNotType && t != message.SysFlagTranCommit {
		return nil
	}
	if m.Topic == topicSchedule || m.Topic == timerTopic {
		return nil
	}
	if level := delayLevel(m.Properties); level > 0 {
		m.Properties = removeTimerProperties(m.Properties)
		if maxLevel := b.schedule.maxLevel(); level > maxLevel {
			level = maxLevel
			m.Properties = message.AppendProperty(m.Properties, message.PropertyDelayLevel, strconv.Itoa(level))
		}
		m.Properties = message.AppendProperty(m.Properties, message.PropertyRealTopic, m.Topic)
		m.Properties = message.AppendProperty(m.Properties, message.PropertyRealQueueID, strconv.Itoa(int(m.QueueID)))
		m.Topic = topicSchedule
		m.QueueID = int32(level - 1)
		return b.checkRewrittenProps(m)
	}
	if !hasTimerProperty(m.Properties) || message.HasProperty(m.Properties, message.PropertyTimerOutMS) {
		return nil
	}
	if !b.cfg.TimerWheelEnable {
		return remoting.NewResponse(remoting.MessageIllegal,
			"timer messages are disabled on this broker (timerWheelEnable=false)")
	}
	now := time.Now().UnixMilli()
	at, err := timerDeliverTime(m.Properties, now)
	if err != nil {
		return remoting.NewResponse(remoting.MessageIllegal, "illegal timer message: "+err.Error())
	}
	if at <= now {
		return nil // already due: an ordinary message
	}
	if at-now > b.cfg.TimerMaxDelaySec*1000 {
		return remoting.NewResponse(remoting.MessageIllegal, "illegal timer message: delivery time "+
			strconv.FormatInt(at, 10)+" is more than timerMaxDelaySec "+strconv.FormatInt(b.cfg.TimerMaxDelaySec, 10)+" s away")
	}
	m.Properties = message.AppendProperty(m.Properties, message.PropertyTimerOutMS, strconv.FormatInt(at, 10))
	m.Properties = message.AppendProperty(m.Properties, message.PropertyRealTopic, m.Topic)
	m.Properties = message.AppendProperty(m.Properties, message.PropertyRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.Topic = timerTopic
	m.QueueID = 0
	return b.checkRewrittenProps(m)
}

func (b *Broker) checkRewrittenProps(m *message.Message) *remoting.Command {
	if len(m.Properties) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal, "the message properties are over max value "+
			strconv.Itoa(message.MaxPropertiesLength)+" with the delayed-delivery properties added")
	}
	return nil
}

// timerDeliverTime computes the delivery time of a timer message: a relative
// TIMER_DELAY_SEC or TIMER_DELAY_MS first, else TIMER_DELIVER_MS (RocketMQ 5's order).
func timerDeliverTime(props string, now int64) (int64, error) {
	parse := func(key string) (int64, bool, error) {
		v := message.Property(props, key)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, true, fmt.Errorf("%s=%q is not a number", key, v)
		}
		return n, true, nil
	}
	const maxMs = int64(1) << 50 // far beyond any accepted delay; keeps the sums from overflowing
	if n, ok, err := parse(message.PropertyTimerDelaySec); ok || err != nil {
		if err != nil || n > maxMs/1000 || n < -maxMs/1000 {
			return 0, errOr(err, message.PropertyTimerDelaySec+" out of range")
		}
		return now + n*1000, nil
	}
	if n, ok, err := parse(message.PropertyTimerDelayMS); ok || err != nil {
		if err != nil || n > maxMs || n < -maxMs {
			return 0, errOr(err, message.PropertyTimerDelayMS+" out of range")
		}
		return now + n, nil
	}
	n, _, err := parse(message.PropertyTimerDeliverMS)
	return n, err
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func hasTimerProperty(props string) bool {
	return message.HasProperty(props, message.PropertyTimerDeliverMS) ||
		message.HasProperty(props, message.PropertyTimerDelaySec) ||
		message.HasProperty(props, message.PropertyTimerDelayMS)
}

func removeTimerProperties(props string) string {
	props = message.RemoveProperty(props, message.PropertyTimerDeliverMS)
	props = message.RemoveProperty(props, message.PropertyTimerDelaySec)
	return message.RemoveProperty(props, message.PropertyTimerDelayMS)
}

// scheduleRuntimeInfo adds scheduleMessageOffset_<level> = "delivered,max"
// to GET_BROKER_RUNTIME_INFO, as Java does.
func (b *Broker) scheduleRuntimeInfo(t map[string]string) {
	s := b.schedule
	if s == nil {
		return
	}
	var synced map[int]int64
	if !s.loaded {
		// A slave delivers nothing: it shows the offsets its master's
		// delayOffset.json, copied by slave.go, holds.
		if data, err := os.ReadFile(s.path); err == nil {
			synced, _ = decodeDelayOffsets(data)
		}
	}
	for i := range s.offsets {
		maxOff := b.store.MaxOffset(topicSchedule, int32(i))
		off := s.offsets[i].Load()
		if synced != nil {
			off = synced[i+1]
		}
		t["scheduleMessageOffset_"+strconv.Itoa(i+1)] = strconv.FormatInt(off, 10) + "," + strconv.FormatInt(maxOff, 10)
	}
}

// handleGetAllDelayOffset serves GET_ALL_DELAY_OFFSET (45), which a slave's
// SlaveSynchronize calls: the delayOffset.json text.
// A master answers from memory (fresher than the file), a slave with its
// file, as Java does.
func (b *Broker) handleGetAllDelayOffset(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	resp := remoting.NewResponse(remoting.Success, "")
	if !b.schedule.loaded {
		data, err := os.ReadFile(b.schedule.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return remoting.NewResponse(remoting.SystemError, "read "+delayOffsetFile+": "+err.Error())
		}
		resp.Body = data
		return resp
	}
	resp.Body = encodeDelayOffsets(b.schedule.table())
	return resp
}

// deliveryTimer is the broker's rule for consume-queue tags codes that are
// delivery times (storage.DeliveryTimer): a schedule-topic entry is due its
// store time plus the delay of its level (a level beyond the table takes the
// last, a bad or missing one 1 s); a timer-topic entry at its TIMER_OUT_MS
// (its store time when unreadable). Every other topic keeps its tags hash.
func deliveryTimer(levels []time.Duration) storage.DeliveryTimer {
	return func(topic string, props []byte, storeTs int64) (int64, bool) {
		switch topic {
		case topicSchedule:
			level, ok := atoiBytes(message.PropertyBytes(props, message.PropertyDelayLevel))
			if !ok || level <= 0 || len(levels) == 0 {
				return storeTs + 1000, true
			}
			return storeTs + levels[min(level, int64(len(levels)))-1].Milliseconds(), true
		case timerTopic:
			at, ok := atoiBytes(message.PropertyBytes(props, message.PropertyTimerOutMS))
			if !ok {
				return storeTs, true
			}
			return at, true
		}
		return 0, false
	}
}

// atoiBytes parses a decimal integer as strconv.ParseInt does (a sign, no
// overflow), without copying b.
func atoiBytes(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(b), len(b)), 10, 64)
	return n, err == nil
}
