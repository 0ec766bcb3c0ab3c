package controller

import (
	"sort"
	"sync"
	"time"
)

// liveness is a controller's knowledge of which brokers are alive: the last
// heartbeat of each, with the timeout the broker asked for. It is not
// replicated: brokers beat to every controller, as in RocketMQ. A broker a
// new leader never heard from counts as alive for one default timeout from
// the start of its leadership (grace), so that it never elects over a
// master whose lease may still run (docs/controller.md, "Fencing").
type liveness struct {
	mu    sync.Mutex
	since time.Time // start of the grace period
	grace time.Duration
	beats map[string]map[int64]*beat // brokerName -> brokerId
}

// beat is one broker's last heartbeat.
type beat struct {
	at        time.Time
	timeout   time.Duration
	addr      string
	epoch     int32
	maxOffset int64
	priority  int64 // brokerElectionPriority: smaller wins
}

func newLiveness(grace time.Duration) *liveness {
	return &liveness{grace: grace, since: time.Now(), beats: map[string]map[int64]*beat{}}
}

// lead starts a grace period for brokers never heard from (a new leader).
func (l *liveness) lead(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = now
}

// record stores a heartbeat.
func (l *liveness) record(brokerName string, id int64, b beat) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.beats[brokerName]
	if m == nil {
		m = map[int64]*beat{}
		l.beats[brokerName] = m
	}
	if b.timeout <= 0 {
		b.timeout = l.grace
	}
	m[id] = &b
}

// alive reports whether broker id of brokerName counts as alive at now.
func (l *liveness) alive(brokerName string, id int64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.aliveLocked(brokerName, id, now)
}

func (l *liveness) aliveLocked(brokerName string, id int64, now time.Time) bool {
	if b := l.beats[brokerName][id]; b != nil {
		return now.Sub(b.at) < b.timeout
	}
	return now.Sub(l.since) < l.grace
}

// choose picks the master among candidates that are alive: the highest
// epoch, then the largest log, then the smallest election priority, then
// the smallest id. ok is false when none is alive.
func (l *liveness) choose(brokerName string, candidates []int64, now time.Time) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	type cand struct {
		id int64
		b  beat
	}
	var cs []cand
	for _, id := range candidates {
		if !l.aliveLocked(brokerName, id, now) {
			continue
		}
		c := cand{id: id}
		if b := l.beats[brokerName][id]; b != nil {
			c.b = *b
		} else {
			c.b.priority = 1<<63 - 1
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return 0, false
	}
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		switch {
		case a.b.epoch != b.b.epoch:
			return a.b.epoch > b.b.epoch
		case a.b.maxOffset != b.b.maxOffset:
			return a.b.maxOffset > b.b.maxOffset
		case a.b.priority != b.b.priority:
			return a.b.priority < b.b.priority
		}
		return a.id < b.id
	})
	return cs[0].id, true
}
