package broker

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
)

// Named statistics per topic and per topic@group, as RocketMQ's
// BrokerStatsManager keeps them (TOPIC_PUT_NUMS, GROUP_GET_NUMS, ...) for
// VIEW_BROKER_STATS_DATA (mqadmin statsAll), the exporter metrics and the
// consume TPS of GET_CONSUME_STATS. The send and pull paths find their items in
// copy-on-write maps (a lock-free, allocation-free lookup; only a topic's or a
// group's first message takes the lock and copies the map) and add to atomic
// counters. The sampler snapshots every item every 10 s; the minute, hour and
// day windows are kept as Java's StatsItem keeps them (7 samples 10 s apart, 7
// samples 10 min apart, 25 samples 1 h apart).

// Stats set names (BrokerStatsManager).
const (
	StatsTopicPutNums = "TOPIC_PUT_NUMS"
	StatsTopicPutSize = "TOPIC_PUT_SIZE"
	StatsGroupGetNums = "GROUP_GET_NUMS"
	StatsGroupGetSize = "GROUP_GET_SIZE"
	StatsBrokerPut    = "BROKER_PUT_NUMS"
	StatsBrokerGet    = "BROKER_GET_NUMS"
)

// statsItem is one counter pair (value, calls) with sampled windows.
type statsItem struct {
	value atomic.Int64 // messages or bytes
	times atomic.Int64 // calls

	mu                sync.Mutex
	minute, hour, day []callSnapshot
	lastHour, lastDay int64 // ms of the last hour / day window sample
}

type callSnapshot struct {
	at, times, value int64
}

// init seeds each window with a zero sample one interval back, as Java does,
// so that the first rates are computed over a sensible span.
func (it *statsItem) init(now int64) {
	it.mu.Lock()
	it.minute = append(it.minute[:0], callSnapshot{at: now - 10_000})
	it.hour = append(it.hour[:0], callSnapshot{at: now - 600_000})
	it.day = append(it.day[:0], callSnapshot{at: now - 3_600_000})
	it.lastHour, it.lastDay = now, now
	it.mu.Unlock()
}

func (it *statsItem) add(value int64) {
	it.value.Add(value)
	it.times.Add(1)
}

func pushSnapshot(list []callSnapshot, s callSnapshot, max int) []callSnapshot {
	if len(list) == max {
		copy(list, list[1:])
		list = list[:max-1]
	}
	return append(list, s)
}

func (it *statsItem) sample(now int64) {
	s := callSnapshot{at: now, times: it.times.Load(), value: it.value.Load()}
	it.mu.Lock()
	it.minute = pushSnapshot(it.minute, s, 7)
	if now-it.lastHour >= 600_000 {
		it.hour = pushSnapshot(it.hour, s, 7)
		it.lastHour = now
	}
	if now-it.lastDay >= 3_600_000 {
		it.day = pushSnapshot(it.day, s, 25)
		it.lastDay = now
	}
	it.mu.Unlock()
}

// StatsSnapshot is one window: the sum over it, the rate per second and the
// average value per call (avgpt).
type StatsSnapshot struct {
	Avgpt float64 `json:"avgpt"`
	Sum   int64   `json:"sum"`
	Tps   float64 `json:"tps"`
}

// window computes a snapshot from the oldest sample of list to now (Java
// StatsItem.computeStatsData, with the current counters as the newest point).
func (it *statsItem) window(list []callSnapshot, now int64) StatsSnapshot {
	if len(list) == 0 {
		return StatsSnapshot{}
	}
	first := list[0]
	last := callSnapshot{at: now, times: it.times.Load(), value: it.value.Load()}
	var s StatsSnapshot
	s.Sum = last.value - first.value
	if dt := last.at - first.at; dt > 0 {
		s.Tps = float64(s.Sum) * 1000 / float64(dt)
	}
	if dn := last.times - first.times; dn > 0 {
		s.Avgpt = float64(s.Sum) / float64(dn)
	}
	return s
}

// Snapshots returns the minute, hour and day windows.
func (it *statsItem) Snapshots(now int64) (minute, hour, day StatsSnapshot) {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.window(it.minute, now), it.window(it.hour, now), it.window(it.day, now)
}

// statsMap maps names to counters that are created once and never removed:
// lock-free reads, and an insert that costs the same with 10,000 topics as
// with 10 (a copy-on-write map copied the whole table on every new topic).
type statsMap[V any] struct {
	m sync.Map // string -> V
}

func (c *statsMap[V]) Get(key string) (V, bool) {
	if v, ok := c.m.Load(key); ok {
		return v.(V), true
	}
	var zero V
	return zero, false
}

func (c *statsMap[V]) GetOrCreate(key string, mk func() V) V {
	if v, ok := c.m.Load(key); ok {
		return v.(V)
	}
	v, _ := c.m.LoadOrStore(key, mk())
	return v.(V)
}

// Range calls fn for every entry, in key order.
func (c *statsMap[V]) Range(fn func(key string, v V)) {
	type entry struct {
		key string
		v   V
	}
	var all []entry
	c.m.Range(func(k, v any) bool {
		all = append(all, entry{k.(string), v.(V)})
		return true
	})
	slices.SortFunc(all, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	for _, e := range all {
		fn(e.key, e.v)
	}
}

// topicStats holds a topic's put counters and its groups' get counters.
type topicStats struct {
	putNums, putSize statsItem
	groups           statsMap[*groupStats]
}

type groupStats struct {
	getNums, getSize statsItem
}

// keyedStats is the broker's named statistics.
type keyedStats struct {
	topics               statsMap[*topicStats]
	brokerPut, brokerGet statsItem
	once                 sync.Once
}

func (k *keyedStats) init() {
	k.once.Do(func() {
		now := time.Now().UnixMilli()
		k.brokerPut.init(now)
		k.brokerGet.init(now)
	})
}

func (k *keyedStats) topic(topic string) *topicStats {
	return k.topics.GetOrCreate(topic, func() *topicStats {
		now := time.Now().UnixMilli()
		ts := &topicStats{}
		ts.putNums.init(now)
		ts.putSize.init(now)
		return ts
	})
}

// recordPut counts msgs stored to topic (bytes of body).
func (k *keyedStats) recordPut(topic string, msgs, bytes int) {
	ts := k.topic(topic)
	ts.putNums.add(int64(msgs))
	ts.putSize.add(int64(bytes))
	k.brokerPut.add(int64(msgs))
}

// recordGet counts msgs of topic delivered to group.
func (k *keyedStats) recordGet(topic, group string, msgs, bytes int) {
	if msgs <= 0 {
		return
	}
	gs := k.topic(topic).groups.GetOrCreate(group, func() *groupStats {
		now := time.Now().UnixMilli()
		g := &groupStats{}
		g.getNums.init(now)
		g.getSize.init(now)
		return g
	})
	gs.getNums.add(int64(msgs))
	gs.getSize.add(int64(bytes))
	k.brokerGet.add(int64(msgs))
}

func (k *keyedStats) sample(now time.Time) {
	k.init()
	ms := now.UnixMilli()
	k.brokerPut.sample(ms)
	k.brokerGet.sample(ms)
	k.topics.Range(func(_ string, ts *topicStats) {
		ts.putNums.sample(ms)
		ts.putSize.sample(ms)
		ts.groups.Range(func(_ string, gs *groupStats) {
			gs.getNums.sample(ms)
			gs.getSize.sample(ms)
		})
	})
}

// item finds a named item; key is a topic, topic@group or the cluster name.
func (k *keyedStats) item(name, key, cluster string) *statsItem {
	topicOf := func(key string) (string, string, bool) {
		for i := len(key) - 1; i >= 0; i-- {
			if key[i] == '@' {
				return key[:i], key[i+1:], true
			}
		}
		return "", "", false
	}
	switch name {
	case StatsTopicPutNums, StatsTopicPutSize:
		ts, ok := k.topics.Get(key)
		if !ok {
			return nil
		}
		if name == StatsTopicPutNums {
			return &ts.putNums
		}
		return &ts.putSize
	case StatsGroupGetNums, StatsGroupGetSize:
		// Java keys these topic@group; a group name has no '@' but a topic
		// may (none of RocketMQ's do), so split at the last '@'.
		topic, group, ok := topicOf(key)
		if !ok {
			return nil
		}
		ts, ok := k.topics.Get(topic)
		if !ok {
			return nil
		}
		gs, ok := ts.groups.Get(group)
		if !ok {
			return nil
		}
		if name == StatsGroupGetNums {
			return &gs.getNums
		}
		return &gs.getSize
	case StatsBrokerPut:
		if key == cluster {
			return &k.brokerPut
		}
	case StatsBrokerGet:
		if key == cluster {
			return &k.brokerGet
		}
	}
	return nil
}

// brokerStatsData is the body of a VIEW_BROKER_STATS_DATA response (keys in
// fastjson's sorted order).
type brokerStatsData struct {
	StatsDay    StatsSnapshot `json:"statsDay"`
	StatsHour   StatsSnapshot `json:"statsHour"`
	StatsMinute StatsSnapshot `json:"statsMinute"`
}

// handleViewBrokerStatsData serves VIEW_BROKER_STATS_DATA (315): ext statsName
// and statsKey.
func (b *Broker) handleViewBrokerStatsData(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	name, key := req.Ext("statsName"), req.Ext("statsKey")
	it := b.stats.keyed.item(name, key, b.cfg.BrokerClusterName)
	if it == nil {
		return remoting.NewResponse(remoting.SystemError, fmt.Sprintf("The stats <%s> <%s> not exist", name, key))
	}
	var d brokerStatsData
	d.StatsMinute, d.StatsHour, d.StatsDay = it.Snapshots(time.Now().UnixMilli())
	data, err := json.Marshal(d)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = data
	return resp
}

// recordTopicPut counts a stored put in the topic's statistics.
func (b *Broker) recordTopicPut(res *storage.PutResult, topic string, bodyBytes int) {
	if !res.Status.Stored() {
		return
	}
	n := res.MsgCount
	if n == 0 {
		n = 1
	}
	b.stats.keyed.recordPut(topic, n, bodyBytes)
}
