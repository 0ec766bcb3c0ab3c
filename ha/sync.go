package ha

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
)

// Sync is SYNC_MASTER: a write counts as replicated once a slave has confirmed
// holding its last byte (RocketMQ GroupTransferService). With no slave
// connected, or the best one further behind than haSlaveFallbehindMax, the
// answer is SLAVE_NOT_AVAILABLE at once; without a confirmation within
// store.syncFlushTimeout it is FLUSH_SLAVE_TIMEOUT. Either way the message is
// stored on the master.
type Sync struct {
	src          Source
	timeout      time.Duration
	fallbehind   int64
	provisioned  bool
	syncFlushMax int64
	waiters      *Waiters
}

// MQDModule implements kernel.Module.
func (*Sync) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: SyncID, New: func() kernel.Module { return new(Sync) }}
}

// Provision reads ha.haSlaveFallbehindMax and store.syncFlushTimeout.
func (s *Sync) Provision(ctx kernel.Context) error {
	o := DefaultOptions()
	if err := ctx.Config.Unmarshal("ha", &o); err != nil {
		return fmt.Errorf("ha options: %w", err)
	}
	s.fallbehind = o.SlaveFallbehindMax
	s.syncFlushMax = ctx.Config.Int64("store.syncFlushTimeout")
	s.provisioned = true
	return nil
}

// Validate checks the settings.
func (s *Sync) Validate() error {
	if !s.provisioned {
		s.fallbehind = DefaultOptions().SlaveFallbehindMax
		s.syncFlushMax = 5000
	}
	if s.syncFlushMax <= 0 {
		return fmt.Errorf("store.syncFlushTimeout must be positive, got %d", s.syncFlushMax)
	}
	if s.fallbehind <= 0 {
		return fmt.Errorf("ha.haSlaveFallbehindMax must be positive, got %d", s.fallbehind)
	}
	s.timeout = time.Duration(s.syncFlushMax) * time.Millisecond
	s.waiters = NewWaiters(func() int64 { return s.src.AckedOffset() },
		func() [3]<-chan struct{} { return [3]<-chan struct{}{s.src.AckChanged()} }, s.timeout)
	return nil
}

// Stop ends the waits in progress: they answer FLUSH_SLAVE_TIMEOUT (the
// broker is going down; the slave may or may not have the bytes).
func (s *Sync) Stop(kernel.StopContext) error {
	if s.waiters != nil {
		s.waiters.Stop()
	}
	return nil
}

// Role implements Replicator.
func (*Sync) Role() string { return storage.RoleSyncMaster }

// Attach implements Replicator.
func (s *Sync) Attach(src Source) { s.src = src }

var errNoSlave = errors.New("no slave connected")

// Ready implements Replicator: a slave is connected and has confirmed end.
func (s *Sync) Ready(end int64) error {
	if s.src == nil || s.src.SlaveCount() == 0 {
		return errNoSlave
	}
	if acked := s.src.AckedOffset(); acked < end {
		return fmt.Errorf("the slave has confirmed offset %d, %d bytes short of %d", acked, end-acked, end)
	}
	return nil
}

// Await implements Replicator: SLAVE_NOT_AVAILABLE at once without a slave
// or with the best one further behind than haSlaveFallbehindMax, else the
// wait for a confirmation (Waiters).
func (s *Sync) Await(end int64) storage.PutStatus {
	src := s.src
	if src == nil {
		return storage.PutSlaveNotAvailable
	}
	acked := src.AckedOffset()
	if acked >= end {
		return storage.PutOK
	}
	if src.SlaveCount() == 0 || end-acked > s.fallbehind {
		return storage.PutSlaveNotAvailable
	}
	src.Notify()
	return s.waiters.Wait(end)
}

var _ Replicator = (*Sync)(nil)
