package ha

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
)

// InSyncID is the replication mode of a controller-mode master with
// allAckInSyncStateSet=true.
const InSyncID kernel.ModuleID = "ha.insync"

func init() {
	kernel.RegisterModule(new(InSync))
	config.Register(
		config.Key{Path: "ha.minInSyncReplicas", Role: "broker", RocketMQ: []string{"minInSyncReplicas"}, Default: 1,
			Doc: "controller mode: with fewer replicas (master included) in the SyncStateSet, sends are refused with IN_SYNC_REPLICAS_NOT_ENOUGH"},
	)
}

// SyncStateSetter is a mode that acknowledges against the SyncStateSet the
// controller confirmed (controller mode). The broker hands it every change.
type SyncStateSetter interface {
	// SetSyncStateSet sets the slaves (broker ids, the master excluded)
	// that must hold a write before it counts as replicated.
	SetSyncStateSet(slaves []int64)
}

// Admitter is a mode that can refuse a write before it is appended.
type Admitter interface {
	// Admit returns PutOK, or the status that refuses the write.
	Admit() storage.PutStatus
}

// InSync is allAckInSyncStateSet: a write counts as replicated once every
// slave in the SyncStateSet has confirmed its last byte (the slaves are
// known by the broker id of their HA hello). With the master alone in the
// set a write counts at once; with fewer members (master included) than
// minInSyncReplicas, writes are refused before they are appended
// (IN_SYNC_REPLICAS_NOT_ENOUGH); so are they until the set is known
// (SERVICE_NOT_AVAILABLE), so that no write counts as replicated on an
// assumption. Without every confirmation within
// store.syncFlushTimeout the answer is FLUSH_SLAVE_TIMEOUT; the message is
// stored on the master, and on the members that did confirm.
type InSync struct {
	src       Source
	minInSync int
	timeout   time.Duration
	waiters   *Waiters

	set   atomic.Pointer[[]int64]
	setCh atomic.Pointer[chan struct{}]
}

// MQDModule implements kernel.Module.
func (*InSync) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: InSyncID, New: func() kernel.Module { return new(InSync) }}
}

// Provision reads ha.minInSyncReplicas and store.syncFlushTimeout.
func (s *InSync) Provision(ctx kernel.Context) error {
	s.minInSync = ctx.Config.Int("ha.minInSyncReplicas")
	s.timeout = time.Duration(ctx.Config.Int64("store.syncFlushTimeout")) * time.Millisecond
	return nil
}

// Validate checks the settings and builds the waiters.
func (s *InSync) Validate() error {
	if s.timeout == 0 && s.minInSync == 0 {
		s.timeout, s.minInSync = 5*time.Second, 1 // built without a config (tests)
	}
	if s.minInSync < 1 {
		return fmt.Errorf("ha.minInSyncReplicas must be at least 1, got %d", s.minInSync)
	}
	if s.timeout <= 0 {
		return fmt.Errorf("store.syncFlushTimeout must be positive")
	}
	ch := make(chan struct{}) // the set stays nil (unknown) until SetSyncStateSet
	s.setCh.Store(&ch)
	s.waiters = NewWaiters(s.watermark, func() [3]<-chan struct{} {
		return [3]<-chan struct{}{s.src.ConfirmChanged(), s.src.MembersChanged(), *s.setCh.Load()}
	}, s.timeout)
	return nil
}

// Stop ends the waits in progress with FLUSH_SLAVE_TIMEOUT.
func (s *InSync) Stop(kernel.StopContext) error {
	if s.waiters != nil {
		s.waiters.Stop()
	}
	return nil
}

// Role implements Replicator: it waits for slaves.
func (*InSync) Role() string { return storage.RoleSyncMaster }

// Attach implements Replicator.
func (s *InSync) Attach(src Source) { s.src = src }

// SetSyncStateSet implements SyncStateSetter.
func (s *InSync) SetSyncStateSet(slaves []int64) {
	c := slices.Clone(slaves)
	s.set.Store(&c)
	ch := make(chan struct{})
	old := s.setCh.Swap(&ch)
	close(*old)
}

// SyncStateSet returns the slaves writes wait for.
func (s *InSync) SyncStateSet() []int64 {
	if p := s.set.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// watermark is the lowest confirmation among the set's slaves: -1 when one
// is not connected, everything when the set has none.
func (s *InSync) watermark() int64 {
	p := s.set.Load()
	if p == nil {
		return -1 // not told yet: nothing counts as replicated
	}
	set := *p
	if len(set) == 0 {
		return math.MaxInt64
	}
	low := int64(math.MaxInt64)
	for _, id := range set {
		low = min(low, s.src.ConfirmedBy(id))
	}
	return low
}

// Admit implements Admitter.
func (s *InSync) Admit() storage.PutStatus {
	p := s.set.Load()
	if p == nil {
		return storage.PutServiceNotAvailable // the SyncStateSet is not known yet
	}
	if len(*p)+1 < s.minInSync {
		return storage.PutInSyncReplicasNotEnough
	}
	return storage.PutOK
}

// Ready implements Replicator: every slave of the set has confirmed end.
func (s *InSync) Ready(end int64) error {
	if w := s.watermark(); w < end {
		return fmt.Errorf("the SyncStateSet %v has confirmed offset %d, short of %d", s.SyncStateSet(), w, end)
	}
	return nil
}

// Await implements Replicator.
func (s *InSync) Await(end int64) storage.PutStatus {
	if s.src == nil {
		return storage.PutSlaveNotAvailable
	}
	if s.watermark() >= end {
		return storage.PutOK
	}
	s.src.Notify()
	return s.waiters.Wait(end)
}

var (
	_ Replicator      = (*InSync)(nil)
	_ SyncStateSetter = (*InSync)(nil)
	_ Admitter        = (*InSync)(nil)
)
