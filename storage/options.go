package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mqd/mqd/kernel/config"
)

// Flush disk types and broker roles, spelled as in RocketMQ.
const (
	AsyncFlush = "ASYNC_FLUSH"
	SyncFlush  = "SYNC_FLUSH"

	RoleAsyncMaster = "ASYNC_MASTER"
	RoleSyncMaster  = "SYNC_MASTER"
	RoleSlave       = "SLAVE"
)

// EngineModule is the module of a store.engine value: a module ID, or a
// short name ("badger" is storage.badger).
func EngineModule(engine string) string {
	engine = strings.TrimSpace(engine)
	if engine != "" && !strings.Contains(engine, ".") {
		return "storage." + engine
	}
	return engine
}

// DefaultEngine is the store module used unless store.engine says otherwise.
const DefaultEngine = "storage.commitlog"

// Options are the store settings every engine shares (RocketMQ
// MessageStoreConfig keys under "store."): where the store lives, its role,
// how puts are made durable, retention, read batch limits and the message
// index. The koanf tags are the RocketMQ property names. An engine's own
// settings live in its package (commitlog.Options, badger.Options) and
// register their keys there.
type Options struct {
	// Engine is the store module (mqd only): a module ID or a short name.
	Engine string `koanf:"engine"`

	StorePathRootDir string `koanf:"storePathRootDir"`
	// MappedFileSizeCommitLog is the size of a commit-log file; every engine
	// places records so that none crosses such a boundary, which keeps
	// commit-log offsets RocketMQ's.
	MappedFileSizeCommitLog int64 `koanf:"mappedFileSizeCommitLog"`

	FlushDiskType          string `koanf:"flushDiskType"`
	FlushIntervalCommitLog int64  `koanf:"flushIntervalCommitLog"` // ms
	SyncFlushTimeout       int64  `koanf:"syncFlushTimeout"`       // ms

	FileReservedTime      int   `koanf:"fileReservedTime"`      // hours
	CleanResourceInterval int64 `koanf:"cleanResourceInterval"` // ms

	MaxTransferBytesOnMessageInMemory int `koanf:"maxTransferBytesOnMessageInMemory"`
	MaxTransferCountOnMessageInMemory int `koanf:"maxTransferCountOnMessageInMemory"`

	MessageIndexEnable bool `koanf:"messageIndexEnable"`
	MaxMsgsNumBatch    int  `koanf:"maxMsgsNumBatch"`
	DefaultQueryMaxNum int  `koanf:"defaultQueryMaxNum"`

	// BrokerRole matters to the store: a SLAVE refuses puts.
	BrokerRole string `koanf:"brokerRole"`
}

// DefaultOptions returns RocketMQ 4.9.8's defaults (with mqd's data directory).
func DefaultOptions() Options {
	return Options{
		Engine:                            DefaultEngine,
		StorePathRootDir:                  "./data/store",
		MappedFileSizeCommitLog:           1 << 30,
		FlushDiskType:                     AsyncFlush,
		FlushIntervalCommitLog:            500,
		SyncFlushTimeout:                  5000,
		FileReservedTime:                  72,
		CleanResourceInterval:             10000,
		MaxTransferBytesOnMessageInMemory: 256 * 1024,
		MaxTransferCountOnMessageInMemory: 32,
		MessageIndexEnable:                true,
		MaxMsgsNumBatch:                   64,
		DefaultQueryMaxNum:                32,
		BrokerRole:                        RoleAsyncMaster,
	}
}

// live marks a key changeable on a running process.
func live(k config.Key) config.Key { k.Live = true; return k }

func init() {
	d := DefaultOptions()
	k := func(name string, def any, doc string, old ...string) config.Key {
		return config.Key{Path: "store." + name, Role: "broker", RocketMQ: append([]string{name}, old...), Default: def, Doc: doc}
	}
	config.Register(
		config.Key{Path: "store.engine", Default: d.Engine, Doc: "store engine: commitlog (storage.commitlog, RocketMQ's on-disk layout) or badger (storage.badger, a Badger key-value store)"},
		k("storePathRootDir", d.StorePathRootDir, "root directory of the store"),
		k("mappedFileSizeCommitLog", d.MappedFileSizeCommitLog, "size of each commit log file in bytes", "mapedFileSizeCommitLog"),
		k("flushDiskType", d.FlushDiskType, "ASYNC_FLUSH or SYNC_FLUSH (group commit: a put returns once fsynced)"),
		k("flushIntervalCommitLog", d.FlushIntervalCommitLog, "ASYNC_FLUSH: commit log flush interval (ms)"),
		k("syncFlushTimeout", d.SyncFlushTimeout, "SYNC_FLUSH: wait for the flush before answering FLUSH_DISK_TIMEOUT (ms)"),
		k("fileReservedTime", d.FileReservedTime, "hours to keep commit log files"),
		k("cleanResourceInterval", d.CleanResourceInterval, "interval of the file cleanup task (ms)"),
		k("maxTransferBytesOnMessageInMemory", d.MaxTransferBytesOnMessageInMemory, "pull batch byte cap when the data is in memory"),
		k("maxTransferCountOnMessageInMemory", d.MaxTransferCountOnMessageInMemory, "pull batch count cap when the data is in memory"),
		k("messageIndexEnable", d.MessageIndexEnable, "build the message key index"),
		k("maxMsgsNumBatch", d.MaxMsgsNumBatch, "most messages one QUERY_MESSAGE returns"),
		k("defaultQueryMaxNum", d.DefaultQueryMaxNum, "messages a unique-key QUERY_MESSAGE returns"),
		live(k("brokerRole", d.BrokerRole, "ASYNC_MASTER, SYNC_MASTER or SLAVE (a slave store refuses puts); ASYNC_MASTER <-> SYNC_MASTER is live (replication mode swap)")),
	)
}

// Normalize trims string values and upper-cases the enums, as RocketMQ files
// often carry stray spaces.
func (o *Options) Normalize() {
	for _, s := range []*string{&o.Engine, &o.StorePathRootDir, &o.FlushDiskType, &o.BrokerRole} {
		*s = strings.TrimSpace(*s)
	}
	o.FlushDiskType = strings.ToUpper(o.FlushDiskType)
	o.BrokerRole = strings.ToUpper(o.BrokerRole)
	if o.Engine == "" {
		o.Engine = DefaultEngine
	}
}

// Validate checks the options (after Normalize).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("store."+format, a...)) }
	if o.StorePathRootDir == "" {
		bad("storePathRootDir: must not be empty")
	}
	if o.MappedFileSizeCommitLog < 64*1024 || o.MappedFileSizeCommitLog > 1<<40 {
		bad("mappedFileSizeCommitLog: %d out of range [64 KiB, 1 TiB]", o.MappedFileSizeCommitLog)
	}
	switch o.FlushDiskType {
	case AsyncFlush, SyncFlush:
	default:
		bad("flushDiskType: %q is neither ASYNC_FLUSH nor SYNC_FLUSH", o.FlushDiskType)
	}
	switch o.BrokerRole {
	case RoleAsyncMaster, RoleSyncMaster, RoleSlave:
	default:
		bad("brokerRole: %q is not ASYNC_MASTER, SYNC_MASTER or SLAVE", o.BrokerRole)
	}
	positive := map[string]int64{
		"flushIntervalCommitLog": o.FlushIntervalCommitLog, "syncFlushTimeout": o.SyncFlushTimeout,
		"maxTransferBytesOnMessageInMemory": int64(o.MaxTransferBytesOnMessageInMemory),
		"maxTransferCountOnMessageInMemory": int64(o.MaxTransferCountOnMessageInMemory),
		"cleanResourceInterval":             o.CleanResourceInterval,
	}
	for name, v := range positive {
		if v <= 0 {
			bad("%s: must be positive, got %d", name, v)
		}
	}
	if o.FileReservedTime < 0 {
		bad("fileReservedTime: must not be negative, got %d", o.FileReservedTime)
	}
	if o.MaxMsgsNumBatch <= 0 || o.DefaultQueryMaxNum <= 0 {
		bad("maxMsgsNumBatch/defaultQueryMaxNum: must be positive, got %d/%d", o.MaxMsgsNumBatch, o.DefaultQueryMaxNum)
	}
	return errors.Join(errs...)
}

// Under is p, or name under the store's root directory when p is empty.
func (o *Options) Under(p, name string) string {
	if p != "" {
		return p
	}
	return filepath.Join(o.StorePathRootDir, name)
}

// LockPath is the file locked so two processes cannot share the store.
func (o *Options) LockPath() string { return filepath.Join(o.StorePathRootDir, "lock") }

// ConfigDir is where the broker keeps its JSON metadata (topics.json, ...).
func (o *Options) ConfigDir() string { return filepath.Join(o.StorePathRootDir, "config") }

// IsSyncFlush reports whether puts wait for fsync.
func (o *Options) IsSyncFlush() bool { return o.FlushDiskType == SyncFlush }

// IsSlave reports whether the store is a replica that refuses puts.
func (o *Options) IsSlave() bool { return o.BrokerRole == RoleSlave }
