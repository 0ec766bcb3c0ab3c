package ha

import (
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
)

func init() {
	kernel.RegisterModule(new(Async))
	kernel.RegisterModule(new(Sync))
}

// Async is ASYNC_MASTER: a write counts as replicated as soon as it is stored;
// the transport streams it to the slaves in the background.
type Async struct{ src Source }

// MQDModule implements kernel.Module.
func (*Async) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: AsyncID, New: func() kernel.Module { return new(Async) }}
}

// Role implements Replicator.
func (*Async) Role() string { return storage.RoleAsyncMaster }

// Attach implements Replicator.
func (a *Async) Attach(src Source) { a.src = src }

// Await implements Replicator: at once.
func (a *Async) Await(int64) storage.PutStatus { return storage.PutOK }

// Ready implements Replicator: always.
func (a *Async) Ready(int64) error { return nil }

var _ Replicator = (*Async)(nil)
