// Package ha is the replication mode plugin kind ("ha.*") of master/slave
// replication. The byte transport (package ha/transport, RocketMQ's 4.x HA
// protocol) streams the master's commit log to its slaves whatever the mode; a
// Replicator decides when a write counts as replicated: "ha.async"
// (ASYNC_MASTER) at once, "ha.sync" (SYNC_MASTER) once a slave has confirmed
// the message's end offset. Swapping the mode on a running master (kernel
// slot) therefore never touches the transport. ha/hatest is the conformance
// suite every Replicator passes. This file holds the interfaces and the ha.*
// configuration keys, shared by the modes and the transport. See
// docs/replication.md.
package ha

import (
	"fmt"
	"strings"
	"time"

	"github.com/mqd/mqd/ha/transport"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
)

// Module IDs of the built-in modes.
const (
	AsyncID kernel.ModuleID = "ha.async"
	SyncID  kernel.ModuleID = "ha.sync"
)

// ModuleForRole maps a master role to its replication mode module.
func ModuleForRole(role string) (kernel.ModuleID, error) {
	switch role {
	case storage.RoleAsyncMaster:
		return AsyncID, nil
	case storage.RoleSyncMaster:
		return SyncID, nil
	}
	return "", fmt.Errorf("broker role %q has no replication mode (want %s or %s)", role, storage.RoleAsyncMaster, storage.RoleSyncMaster)
}

// ModuleForMode maps a replication mode name (ha.mode, mqd swap ha NAME) to
// its module: "sync" and "async", or an installed plugin's name ("quorum"
// is ha.quorum); a module ID ("ha.quorum") is taken as it is. The module
// must be registered (installed plugins are registered at start).
func ModuleForMode(mode string) (kernel.ModuleID, error) {
	mode = strings.ToLower(strings.TrimSpace(mode))
	if mode == "" {
		return "", fmt.Errorf("no replication mode named")
	}
	id := kernel.ModuleID(mode)
	if !strings.HasPrefix(mode, "ha.") {
		id = kernel.ModuleID("ha." + mode)
	}
	if _, err := kernel.GetModule(id); err != nil {
		return "", fmt.Errorf("replication mode %q: %w", mode, err)
	}
	return id, nil
}

// Source is the master's view of its slaves, provided by the transport: the
// highest commit-log offset any slave has confirmed (RocketMQ's
// push2SlaveMaxOffset), how many slaves are connected, and a broadcast of
// confirmations.
type Source interface {
	// AckedOffset is the highest offset a slave has confirmed holding.
	AckedOffset() int64
	// SlaveCount is the number of connected slaves that have reported.
	SlaveCount() int
	// AckChanged returns a channel closed at the next confirmation.
	AckChanged() <-chan struct{}
	// Notify tells the transport that new bytes wait to be pushed.
	Notify()
	// ConfirmChanged returns a channel closed at the next confirmation of
	// any slave; MembersChanged one closed when a slave comes or goes.
	ConfirmChanged() <-chan struct{}
	MembersChanged() <-chan struct{}
	// Confirmed appends each connected slave's last confirmation to dst.
	Confirmed(dst []transport.SlaveAck) []transport.SlaveAck
	// ConfirmedBy is the confirmation of the slave with that broker id (its
	// HA hello), -1 when it is not connected.
	ConfirmedBy(id int64) int64
}

// Replicator is a replication mode. Implementations are kernel modules
// (Provision reads the ha.* keys; Start and Stop are optional) and safe for
// concurrent use: every send of a master calls Await.
type Replicator interface {
	kernel.Module
	// Role is the RocketMQ broker role the mode implements (ASYNC_MASTER,
	// SYNC_MASTER).
	Role() string
	// Attach binds the mode to the master's transport; called once, before
	// Start and before any Await.
	Attach(src Source)
	// Await returns once a write whose bytes end at end counts as replicated,
	// with the put status the producer gets: PutOK, PutFlushSlaveTimeout or
	// PutSlaveNotAvailable (the message is stored on the master in all three).
	Await(end int64) storage.PutStatus
	// Ready reports whether the mode can take over now for data up to end
	// (used by a swap before it switches): nil, or why not.
	Ready(end int64) error
}

// Options are the ha.* keys (RocketMQ MessageStoreConfig names).
type Options struct {
	ListenPort           int    `koanf:"haListenPort"`
	MasterAddress        string `koanf:"haMasterAddress"`
	HeartbeatInterval    int64  `koanf:"haSendHeartbeatInterval"` // ms
	HousekeepingInterval int64  `koanf:"haHousekeepingInterval"`  // ms
	TransferBatchSize    int    `koanf:"haTransferBatchSize"`
	SlaveFallbehindMax   int64  `koanf:"haSlaveFallbehindMax"`
	ReconnectInterval    int64  `koanf:"haReconnectInterval"` // ms, mqd only
	SwapCatchUpTimeout   int64  `koanf:"swapCatchUpTimeout"`  // ms, mqd only
}

// DefaultOptions are RocketMQ 4.9.8's values.
func DefaultOptions() Options {
	return Options{
		HeartbeatInterval:    5000,
		HousekeepingInterval: 20000,
		TransferBatchSize:    32 * 1024,
		SlaveFallbehindMax:   256 << 20,
		ReconnectInterval:    5000,
		SwapCatchUpTimeout:   10000,
	}
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.ListenPort < 0 || o.ListenPort > 65535:
		return fmt.Errorf("ha.haListenPort %d out of range", o.ListenPort)
	case o.HeartbeatInterval <= 0:
		return fmt.Errorf("ha.haSendHeartbeatInterval must be positive, got %d", o.HeartbeatInterval)
	case o.HousekeepingInterval <= o.HeartbeatInterval:
		return fmt.Errorf("ha.haHousekeepingInterval (%d ms) must exceed ha.haSendHeartbeatInterval (%d ms)", o.HousekeepingInterval, o.HeartbeatInterval)
	case o.TransferBatchSize < 1024 || o.TransferBatchSize > 64<<20:
		return fmt.Errorf("ha.haTransferBatchSize %d out of range [1 KiB, 64 MiB]", o.TransferBatchSize)
	case o.SlaveFallbehindMax <= 0:
		return fmt.Errorf("ha.haSlaveFallbehindMax must be positive, got %d", o.SlaveFallbehindMax)
	case o.ReconnectInterval <= 0:
		return fmt.Errorf("ha.haReconnectInterval must be positive, got %d", o.ReconnectInterval)
	case o.SwapCatchUpTimeout <= 0:
		return fmt.Errorf("ha.swapCatchUpTimeout must be positive, got %d", o.SwapCatchUpTimeout)
	}
	return nil
}

// Heartbeat, Housekeeping, Reconnect and CatchUp are the intervals as durations.
func (o *Options) Heartbeat() time.Duration {
	return time.Duration(o.HeartbeatInterval) * time.Millisecond
}

// Housekeeping is the idle limit of an HA connection.
func (o *Options) Housekeeping() time.Duration {
	return time.Duration(o.HousekeepingInterval) * time.Millisecond
}

// Reconnect is the pause before a slave reconnects.
func (o *Options) Reconnect() time.Duration {
	return time.Duration(o.ReconnectInterval) * time.Millisecond
}

// CatchUp bounds how long a swap waits for the new mode to be ready.
func (o *Options) CatchUp() time.Duration {
	return time.Duration(o.SwapCatchUpTimeout) * time.Millisecond
}

func init() {
	d := DefaultOptions()
	k := func(name string, def any, doc string) config.Key {
		return config.Key{Path: "ha." + name, Role: "broker", RocketMQ: []string{name}, Default: def, Doc: doc}
	}
	config.Register(
		k("haListenPort", 0, "replication port of a master (0: listenPort+1; any free port when listenPort is 0); unlike RocketMQ 4.x, a set value is honoured"),
		k("haMasterAddress", "", "slave: the master's replication address host:port (empty: learned from the name servers)"),
		config.Key{Path: "ha.mode", Default: "", Live: true, Doc: "master: replication mode, sync, async or an installed ha plugin's name (empty: from brokerRole); swappable at runtime"},
		k("haSendHeartbeatInterval", d.HeartbeatInterval, "slave offset report and master heartbeat interval, ms"),
		k("haHousekeepingInterval", d.HousekeepingInterval, "close a replication connection silent this long, ms"),
		k("haTransferBatchSize", d.TransferBatchSize, "largest commit-log chunk a master sends in one frame, bytes"),
		k("haSlaveFallbehindMax", d.SlaveFallbehindMax, "SYNC_MASTER: a slave further behind than this many bytes is not available"),
		config.Key{Path: "ha.haReconnectInterval", Default: d.ReconnectInterval, Doc: "slave: pause before reconnecting to the master, ms"},
		config.Key{Path: "ha.swapCatchUpTimeout", Default: d.SwapCatchUpTimeout, Doc: "replication mode swap: how long the new mode may take to catch up before the swap is abandoned, ms"},
	)
}
