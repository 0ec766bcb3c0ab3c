package broker

import (
	"sync"
	"time"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// broker.rebalanceLockMaxLiveTime is how long a queue lock survives without
// renewal (Java's JVM property rocketmq.broker.rebalance.lockMaxLiveTime).
// Clients renew every 20 s and consider their own lock expired after 30 s.
func init() {
	config.Register(config.Key{
		Path: "broker.rebalanceLockMaxLiveTime", Role: "broker", RocketMQ: []string{"rebalanceLockMaxLiveTime"},
		Default: int64(60000), Doc: "orderly-consumption queue lock lifetime without renewal, ms",
	})
}

type lockKey struct {
	group string
	mq    body.MessageQueue
}

type lockEntry struct {
	clientID   string
	lastUpdate time.Time
}

// QueueLockManager holds the orderly-consumption queue locks (RocketMQ's
// RebalanceLockManager): per group and queue one owning client ID, granted when
// free, already owned by the caller, or expired. Locks live in memory only.
type QueueLockManager struct {
	mu      sync.Mutex
	locks   map[lockKey]*lockEntry
	maxLive time.Duration
	now     func() time.Time // injectable for tests
}

func newQueueLockManager(b *Broker) *QueueLockManager {
	maxLive := 60 * time.Second
	if b != nil && b.cfg.RebalanceLockMaxLiveTime > 0 {
		maxLive = time.Duration(b.cfg.RebalanceLockMaxLiveTime) * time.Millisecond
	}
	return &QueueLockManager{locks: make(map[lockKey]*lockEntry), maxLive: maxLive, now: time.Now}
}

// TryLockBatch grants the caller every queue it may hold and returns those.
func (m *QueueLockManager) TryLockBatch(group, clientID string, mqs []body.MessageQueue) []body.MessageQueue {
	now := m.now()
	granted := make([]body.MessageQueue, 0, len(mqs))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mq := range mqs {
		k := lockKey{group, mq}
		e := m.locks[k]
		switch {
		case e == nil:
			m.locks[k] = &lockEntry{clientID: clientID, lastUpdate: now}
		case e.clientID == clientID:
			e.lastUpdate = now
		case now.Sub(e.lastUpdate) > m.maxLive:
			e.clientID, e.lastUpdate = clientID, now
		default:
			continue
		}
		granted = append(granted, mq)
	}
	return granted
}

// UnlockBatch releases the queues the caller owns; others' locks stay.
func (m *QueueLockManager) UnlockBatch(group, clientID string, mqs []body.MessageQueue) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mq := range mqs {
		k := lockKey{group, mq}
		if e := m.locks[k]; e != nil && e.clientID == clientID {
			delete(m.locks, k)
		}
	}
}

// IsLocked reports whether clientID holds an unexpired lock on a queue.
func (m *QueueLockManager) IsLocked(group, clientID string, mq body.MessageQueue) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.locks[lockKey{group, mq}]
	return e != nil && e.clientID == clientID && now.Sub(e.lastUpdate) <= m.maxLive
}

// pruneExpired drops expired locks so departed groups do not accumulate.
func (m *QueueLockManager) pruneExpired() {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.locks {
		if now.Sub(e.lastUpdate) > m.maxLive {
			delete(m.locks, k)
		}
	}
}

// handleLockBatch serves LOCK_BATCH_MQ (41): the response lists the queues the
// caller now holds.
func (b *Broker) handleLockBatch(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var r body.LockBatchRequestBody
	if err := body.Unmarshal(req.Body, &r); err != nil {
		return remoting.NewResponse(remoting.SystemError, "bad lock request body: "+err.Error())
	}
	if r.ConsumerGroup == "" || r.ClientID == "" {
		return remoting.NewResponse(remoting.SystemError, "lock request without consumerGroup or clientId")
	}
	return jsonResponse(&body.LockBatchResponseBody{LockOKMQSet: b.locks.TryLockBatch(r.ConsumerGroup, r.ClientID, r.MQSet)})
}

// handleUnlockBatch serves UNLOCK_BATCH_MQ (42).
func (b *Broker) handleUnlockBatch(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var r body.LockBatchRequestBody
	if err := body.Unmarshal(req.Body, &r); err != nil {
		return remoting.NewResponse(remoting.SystemError, "bad unlock request body: "+err.Error())
	}
	b.locks.UnlockBatch(r.ConsumerGroup, r.ClientID, r.MQSet)
	return remoting.NewResponse(remoting.Success, "")
}
