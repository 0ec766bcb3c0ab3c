package controller

import (
	"sort"
	"sync"
	"time"
)

// liveness is a controller's knowledge of which brokers are alive: the last
// heartbeat of each, with the timeout the broker asked for. It is not
// replicated: brokers beat to every controller, as in RocketMQ. For a grace
// period from the start of its leadership a new leader counts every broker
// as alive, so that it never elects over a master whose lease the old
// leader may have renewed (docs/controller.md, "Fencing").
type liveness struct {
	mu         sync.Mutex
	since      time.Time // start of the grace period
	grace      time.Duration
	beats      map[string]map[int64]*beat // brokerName -> brokerId
	maxTimeout time.Duration              // the longest heartbeat timeout seen
	// revoked masters get no lease confirmation: a manual switch away
	// from them waits until their lease has ended (Controller.elect).
	revoked map[string]int64
}

// beat is one broker's last heartbeat.
type beat struct {
	at        time.Time
	timeout   time.Duration
	addr      string
	epoch     int32
	maxOffset int64
	priority  int64 // brokerElectionPriority: smaller wins
	// confirmed is when the leader last confirmed this master's lease.
	confirmed time.Time
}

func newLiveness(grace time.Duration) *liveness {
	return &liveness{grace: grace, since: time.Now(), beats: map[string]map[int64]*beat{}, revoked: map[string]int64{}}
}

// lead starts a grace period for brokers never heard from (a new leader).
func (l *liveness) lead(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = now
}

// record stores a heartbeat. confirm says whether the beat renews a
// master's lease (the leader answering its group's current master); it
// does unless the lease is revoked. It reports whether it did.
func (l *liveness) record(brokerName string, id int64, b beat, confirm bool) bool {
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
	l.maxTimeout = max(l.maxTimeout, b.timeout)
	if old := m[id]; old != nil {
		b.confirmed = old.confirmed
	}
	if r, ok := l.revoked[brokerName]; ok && r == id {
		confirm = false
	}
	if confirm {
		b.confirmed = b.at
	}
	m[id] = &b
	return confirm
}

// revoke stops confirming the lease of master id of brokerName and returns
// when the last lease it was granted ends (the zero time if none).
func (l *liveness) revoke(brokerName string, id int64) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked[brokerName] = id
	b := l.beats[brokerName][id]
	if b == nil || b.confirmed.IsZero() {
		return time.Time{}
	}
	return b.confirmed.Add(b.timeout/2 + max(b.timeout/5, 200*time.Millisecond))
}

// unrevoke confirms leases of brokerName's master again.
func (l *liveness) unrevoke(brokerName string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.revoked, brokerName)
}

// alive reports whether broker id of brokerName counts as alive at now.
func (l *liveness) alive(brokerName string, id int64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.aliveLocked(brokerName, id, now)
}

func (l *liveness) aliveLocked(brokerName string, id int64, now time.Time) bool {
	if l.inGraceLocked(now) {
		return true
	}
	b := l.beats[brokerName][id]
	return b != nil && now.Sub(b.at) < b.timeout
}

// inGraceLocked: a leader's first grace period, during which every broker
// counts as alive and no lease as ended: heartbeats that went to the old
// leader only may have renewed leases this controller knows nothing of. The
// period is the longer of controllerBrokerTimeout and the longest timeout
// any broker asked for.
func (l *liveness) inGraceLocked(now time.Time) bool {
	return now.Sub(l.since) < max(l.grace, l.maxTimeout)
}

// leaseEnded reports whether a master's lease has surely ended at now, so
// that another replica may be elected: a master refuses writes once half its
// timeout has passed since it sent the last heartbeat the leader confirmed,
// and that heartbeat arrived here no later than the last one recorded; a
// fifth of the timeout more covers writes admitted just before and timer
// granularity. A master never heard from has the grace period.
func (l *liveness) leaseEnded(brokerName string, id int64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inGraceLocked(now) {
		return false
	}
	if b := l.beats[brokerName][id]; b != nil {
		return now.Sub(b.at) > b.timeout/2+max(b.timeout/5, 200*time.Millisecond)
	}
	return true
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
