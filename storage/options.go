package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
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

// cqUnitSize is the size of one consume-queue entry.
const cqUnitSize = 20

// Options are the store settings (RocketMQ MessageStoreConfig). The koanf tags
// are the RocketMQ property names; the keys live under "store.".
type Options struct {
	// Engine is the store module ID (mqd only).
	Engine string `koanf:"engine"`

	StorePathRootDir string `koanf:"storePathRootDir"`
	// Empty path options default to a directory or file under StorePathRootDir.
	StorePathCommitLog    string `koanf:"storePathCommitLog"`
	StorePathConsumeQueue string `koanf:"storePathConsumeQueue"`
	StorePathIndex        string `koanf:"storePathIndex"`
	StoreCheckpoint       string `koanf:"storeCheckpoint"`
	AbortFile             string `koanf:"abortFile"`

	MappedFileSizeCommitLog    int64 `koanf:"mappedFileSizeCommitLog"`
	MappedFileSizeConsumeQueue int64 `koanf:"mappedFileSizeConsumeQueue"`

	FlushDiskType                     string `koanf:"flushDiskType"`
	FlushIntervalCommitLog            int64  `koanf:"flushIntervalCommitLog"` // ms
	FlushCommitLogLeastPages          int    `koanf:"flushCommitLogLeastPages"`
	FlushCommitLogThoroughInterval    int64  `koanf:"flushCommitLogThoroughInterval"` // ms
	FlushIntervalConsumeQueue         int64  `koanf:"flushIntervalConsumeQueue"`      // ms
	FlushConsumeQueueLeastPages       int    `koanf:"flushConsumeQueueLeastPages"`
	FlushConsumeQueueThoroughInterval int64  `koanf:"flushConsumeQueueThoroughInterval"` // ms
	SyncFlushTimeout                  int64  `koanf:"syncFlushTimeout"`                  // ms

	FileReservedTime                 int    `koanf:"fileReservedTime"` // hours
	DeleteWhen                       string `koanf:"deleteWhen"`
	DiskMaxUsedSpaceRatio            int    `koanf:"diskMaxUsedSpaceRatio"`
	DestroyMapedFileIntervalForcibly int64  `koanf:"destroyMapedFileIntervalForcibly"` // ms
	RedeleteHangedFileInterval       int64  `koanf:"redeleteHangedFileInterval"`       // ms
	CleanResourceInterval            int64  `koanf:"cleanResourceInterval"`            // ms

	MaxTransferBytesOnMessageInMemory int   `koanf:"maxTransferBytesOnMessageInMemory"`
	MaxTransferCountOnMessageInMemory int   `koanf:"maxTransferCountOnMessageInMemory"`
	MaxTransferBytesOnMessageInDisk   int   `koanf:"maxTransferBytesOnMessageInDisk"`
	MaxTransferCountOnMessageInDisk   int   `koanf:"maxTransferCountOnMessageInDisk"`
	AccessMessageInMemoryMaxRatio     int   `koanf:"accessMessageInMemoryMaxRatio"`
	OSPageCacheBusyTimeOutMills       int64 `koanf:"osPageCacheBusyTimeOutMills"`

	MessageIndexEnable bool `koanf:"messageIndexEnable"`
	MaxHashSlotNum     int  `koanf:"maxHashSlotNum"`
	MaxIndexNum        int  `koanf:"maxIndexNum"`
	MaxMsgsNumBatch    int  `koanf:"maxMsgsNumBatch"`
	DefaultQueryMaxNum int  `koanf:"defaultQueryMaxNum"`

	// Disk watermarks (RocketMQ JVM properties rocketmq.broker.*, fractions).
	DiskSpaceWarningLevelRatio  float64 `koanf:"diskSpaceWarningLevelRatio"`
	DiskSpaceCleanForciblyRatio float64 `koanf:"diskSpaceCleanForciblyRatio"`
	CleanFileForciblyEnable     bool    `koanf:"cleanFileForciblyEnable"`
	CheckCRCOnRecover           bool    `koanf:"checkCRCOnRecover"`

	// BrokerRole matters to the store: a SLAVE refuses puts.
	BrokerRole string `koanf:"brokerRole"`
}

// DefaultOptions returns RocketMQ 4.9.8's defaults (with mqd's data directory).
func DefaultOptions() Options {
	return Options{
		Engine:                            DefaultEngine,
		StorePathRootDir:                  "./data/store",
		MappedFileSizeCommitLog:           1 << 30,
		MappedFileSizeConsumeQueue:        300000 * cqUnitSize,
		FlushDiskType:                     AsyncFlush,
		FlushIntervalCommitLog:            500,
		FlushCommitLogLeastPages:          4,
		FlushCommitLogThoroughInterval:    10000,
		FlushIntervalConsumeQueue:         1000,
		FlushConsumeQueueLeastPages:       2,
		FlushConsumeQueueThoroughInterval: 60000,
		SyncFlushTimeout:                  5000,
		FileReservedTime:                  72,
		DeleteWhen:                        "04",
		DiskMaxUsedSpaceRatio:             75,
		DestroyMapedFileIntervalForcibly:  120000,
		RedeleteHangedFileInterval:        120000,
		CleanResourceInterval:             10000,
		MaxTransferBytesOnMessageInMemory: 256 * 1024,
		MaxTransferCountOnMessageInMemory: 32,
		MaxTransferBytesOnMessageInDisk:   64 * 1024,
		MaxTransferCountOnMessageInDisk:   8,
		AccessMessageInMemoryMaxRatio:     40,
		OSPageCacheBusyTimeOutMills:       1000,
		MessageIndexEnable:                true,
		MaxHashSlotNum:                    5000000,
		MaxIndexNum:                       5000000 * 4,
		MaxMsgsNumBatch:                   64,
		DefaultQueryMaxNum:                32,
		DiskSpaceWarningLevelRatio:        0.90,
		DiskSpaceCleanForciblyRatio:       0.85,
		CleanFileForciblyEnable:           true,
		CheckCRCOnRecover:                 true,
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
		k("storePathCommitLog", "", "commit log directory (empty: <storePathRootDir>/commitlog)"),
		k("storePathConsumeQueue", "", "consume queue directory (empty: <storePathRootDir>/consumequeue; a 3.x key honoured by mqd)"),
		k("storePathIndex", "", "index directory (empty: <storePathRootDir>/index; a 3.x key honoured by mqd)"),
		k("storeCheckpoint", "", "checkpoint file (empty: <storePathRootDir>/checkpoint; a 3.x key honoured by mqd)"),
		k("abortFile", "", "abort marker file (empty: <storePathRootDir>/abort; a 3.x key honoured by mqd)"),
		k("mappedFileSizeCommitLog", d.MappedFileSizeCommitLog, "size of each commit log file in bytes", "mapedFileSizeCommitLog"),
		k("mappedFileSizeConsumeQueue", d.MappedFileSizeConsumeQueue, "size of each consume queue file in bytes (rounded up to a multiple of 20)", "mapedFileSizeConsumeQueue"),
		k("flushDiskType", d.FlushDiskType, "ASYNC_FLUSH or SYNC_FLUSH (group commit: a put returns once fsynced)"),
		k("flushIntervalCommitLog", d.FlushIntervalCommitLog, "ASYNC_FLUSH: commit log flush interval (ms)"),
		k("flushCommitLogLeastPages", d.FlushCommitLogLeastPages, "ASYNC_FLUSH: least dirty 4 KiB pages to flush"),
		k("flushCommitLogThoroughInterval", d.FlushCommitLogThoroughInterval, "ASYNC_FLUSH: interval of a flush regardless of dirty pages (ms)"),
		k("flushIntervalConsumeQueue", d.FlushIntervalConsumeQueue, "consume queue flush interval (ms)"),
		k("flushConsumeQueueLeastPages", d.FlushConsumeQueueLeastPages, "least dirty pages to flush a consume queue"),
		k("flushConsumeQueueThoroughInterval", d.FlushConsumeQueueThoroughInterval, "interval of a full consume queue and checkpoint flush (ms)"),
		k("syncFlushTimeout", d.SyncFlushTimeout, "SYNC_FLUSH: wait for the flush before answering FLUSH_DISK_TIMEOUT (ms)"),
		k("fileReservedTime", d.FileReservedTime, "hours to keep commit log files"),
		k("deleteWhen", d.DeleteWhen, "hours of the day (;-separated) when expired files are deleted"),
		k("diskMaxUsedSpaceRatio", d.DiskMaxUsedSpaceRatio, "disk usage percentage above which files are deleted early"),
		k("destroyMapedFileIntervalForcibly", d.DestroyMapedFileIntervalForcibly, "ms after which a file still read is deleted anyway"),
		k("redeleteHangedFileInterval", d.RedeleteHangedFileInterval, "interval of retrying a hung file deletion (ms)"),
		k("cleanResourceInterval", d.CleanResourceInterval, "interval of the file cleanup task (ms)"),
		k("maxTransferBytesOnMessageInMemory", d.MaxTransferBytesOnMessageInMemory, "pull batch byte cap when the data is in memory"),
		k("maxTransferCountOnMessageInMemory", d.MaxTransferCountOnMessageInMemory, "pull batch count cap when the data is in memory"),
		k("maxTransferBytesOnMessageInDisk", d.MaxTransferBytesOnMessageInDisk, "pull batch byte cap when the data is on disk"),
		k("maxTransferCountOnMessageInDisk", d.MaxTransferCountOnMessageInDisk, "pull batch count cap when the data is on disk"),
		k("accessMessageInMemoryMaxRatio", d.AccessMessageInMemoryMaxRatio, "percentage of RAM behind the newest data that still counts as in memory"),
		k("osPageCacheBusyTimeOutMills", d.OSPageCacheBusyTimeOutMills, "put lock hold time (ms) after which puts fail with OS_PAGECACHE_BUSY"),
		k("messageIndexEnable", d.MessageIndexEnable, "build the message key index"),
		k("maxHashSlotNum", d.MaxHashSlotNum, "hash slots per index file"),
		k("maxIndexNum", d.MaxIndexNum, "entries per index file (file size = 40 + 4*maxHashSlotNum + 20*maxIndexNum)"),
		k("maxMsgsNumBatch", d.MaxMsgsNumBatch, "most messages one QUERY_MESSAGE returns"),
		k("defaultQueryMaxNum", d.DefaultQueryMaxNum, "messages a unique-key QUERY_MESSAGE returns"),
		k("diskSpaceWarningLevelRatio", d.DiskSpaceWarningLevelRatio, "disk usage fraction above which puts are refused (disk full; RocketMQ JVM property rocketmq.broker.diskSpaceWarningLevelRatio)"),
		k("diskSpaceCleanForciblyRatio", d.DiskSpaceCleanForciblyRatio, "disk usage fraction above which commit log files are deleted regardless of age (rocketmq.broker.diskSpaceCleanForciblyRatio)"),
		k("cleanFileForciblyEnable", d.CleanFileForciblyEnable, "delete files regardless of age when the disk is nearly full"),
		k("checkCRCOnRecover", d.CheckCRCOnRecover, "verify body CRCs during recovery"),
		live(k("brokerRole", d.BrokerRole, "ASYNC_MASTER, SYNC_MASTER or SLAVE (a slave store refuses puts); ASYNC_MASTER <-> SYNC_MASTER is live (replication mode swap)")),
	)
	// MessageStoreConfig keys mqd accepts without acting on them.
	config.RegisterUnimplemented("broker",
		// RocketMQ's transient store pool (a write buffer committed to the
		// file, then flushed) is what mqd always does under SYNC_FLUSH, where
		// it makes fsync several times faster; RocketMQ allows it only under
		// ASYNC_FLUSH, where mqd measured no gain over writing through the
		// mapping and it would delay consumers by the commit interval. See
		// storage/commitlog/writebuffer.go.
		"transientStorePoolEnable", "transientStorePoolSize", "fastFailIfNoBufferInStorePool",
		"commitIntervalCommitLog", "commitCommitLogLeastPages", "commitCommitLogThoroughInterval",
		"warmMapedFileEnable", "flushLeastPagesWhenWarmMapedFile", "useReentrantLockWhenPutMessage",
		"flushCommitLogTimed", "enableConsumeQueueExt", "mappedFileSizeConsumeQueueExt",
		"bitMapLengthConsumeQueueExt", "deleteCommitLogFilesInterval", "deleteConsumeQueueFilesInterval",
		"duplicationEnable", "diskFallRecorded", "enableCalcFilterBitMap",
	)
}

// Normalize trims string values and upper-cases the enums, as RocketMQ files
// often carry stray spaces.
func (o *Options) Normalize() {
	for _, s := range []*string{&o.Engine, &o.StorePathRootDir, &o.StorePathCommitLog, &o.StorePathConsumeQueue,
		&o.StorePathIndex, &o.StoreCheckpoint, &o.AbortFile, &o.FlushDiskType, &o.DeleteWhen, &o.BrokerRole} {
		*s = strings.TrimSpace(*s)
	}
	o.FlushDiskType = strings.ToUpper(o.FlushDiskType)
	o.BrokerRole = strings.ToUpper(o.BrokerRole)
	if o.Engine == "" {
		o.Engine = DefaultEngine
	}
	if o.MappedFileSizeConsumeQueue > 0 && o.MappedFileSizeConsumeQueue%cqUnitSize != 0 {
		o.MappedFileSizeConsumeQueue += cqUnitSize - o.MappedFileSizeConsumeQueue%cqUnitSize
	}
}

// Validate checks the options (after Normalize).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("store."+format, a...)) }
	if o.StorePathRootDir == "" {
		bad("storePathRootDir: must not be empty")
	}
	if strings.Contains(o.StorePathCommitLog, ",") {
		bad("storePathCommitLog: several commit log directories (%q) are not supported; give one directory", o.StorePathCommitLog)
	}
	if o.MappedFileSizeCommitLog < 64*1024 || o.MappedFileSizeCommitLog > 1<<40 {
		bad("mappedFileSizeCommitLog: %d out of range [64 KiB, 1 TiB]", o.MappedFileSizeCommitLog)
	}
	if o.MappedFileSizeConsumeQueue < cqUnitSize*16 || o.MappedFileSizeConsumeQueue > 1<<32 {
		bad("mappedFileSizeConsumeQueue: %d out of range [320, 4 GiB]", o.MappedFileSizeConsumeQueue)
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
		"flushIntervalCommitLog": o.FlushIntervalCommitLog, "flushIntervalConsumeQueue": o.FlushIntervalConsumeQueue,
		"syncFlushTimeout": o.SyncFlushTimeout, "maxTransferBytesOnMessageInMemory": int64(o.MaxTransferBytesOnMessageInMemory),
		"maxTransferCountOnMessageInMemory": int64(o.MaxTransferCountOnMessageInMemory),
		"maxTransferBytesOnMessageInDisk":   int64(o.MaxTransferBytesOnMessageInDisk),
		"maxTransferCountOnMessageInDisk":   int64(o.MaxTransferCountOnMessageInDisk),
		"cleanResourceInterval":             o.CleanResourceInterval,
	}
	for name, v := range positive {
		if v <= 0 {
			bad("%s: must be positive, got %d", name, v)
		}
	}
	nonNegative := map[string]int64{
		"flushCommitLogLeastPages": int64(o.FlushCommitLogLeastPages), "flushConsumeQueueLeastPages": int64(o.FlushConsumeQueueLeastPages),
		"flushCommitLogThoroughInterval": o.FlushCommitLogThoroughInterval, "flushConsumeQueueThoroughInterval": o.FlushConsumeQueueThoroughInterval,
		"fileReservedTime": int64(o.FileReservedTime), "destroyMapedFileIntervalForcibly": o.DestroyMapedFileIntervalForcibly,
		"redeleteHangedFileInterval": o.RedeleteHangedFileInterval, "osPageCacheBusyTimeOutMills": o.OSPageCacheBusyTimeOutMills,
	}
	for name, v := range nonNegative {
		if v < 0 {
			bad("%s: must not be negative, got %d", name, v)
		}
	}
	if o.MaxHashSlotNum <= 0 || o.MaxIndexNum <= 1 || 40+4*int64(o.MaxHashSlotNum)+20*int64(o.MaxIndexNum) > 1<<34 {
		bad("maxHashSlotNum/maxIndexNum: %d/%d give no valid index file (both positive, file at most 16 GiB)", o.MaxHashSlotNum, o.MaxIndexNum)
	}
	if o.MaxMsgsNumBatch <= 0 || o.DefaultQueryMaxNum <= 0 {
		bad("maxMsgsNumBatch/defaultQueryMaxNum: must be positive, got %d/%d", o.MaxMsgsNumBatch, o.DefaultQueryMaxNum)
	}
	if o.DiskSpaceWarningLevelRatio <= 0 || o.DiskSpaceWarningLevelRatio > 1 || o.DiskSpaceCleanForciblyRatio <= 0 || o.DiskSpaceCleanForciblyRatio > 1 {
		bad("diskSpaceWarningLevelRatio/diskSpaceCleanForciblyRatio: %v/%v are not fractions in (0, 1]", o.DiskSpaceWarningLevelRatio, o.DiskSpaceCleanForciblyRatio)
	}
	if o.DiskMaxUsedSpaceRatio < 0 || o.DiskMaxUsedSpaceRatio > 100 {
		bad("diskMaxUsedSpaceRatio: %d is not a percentage", o.DiskMaxUsedSpaceRatio)
	}
	if o.AccessMessageInMemoryMaxRatio < 0 || o.AccessMessageInMemoryMaxRatio > 100 {
		bad("accessMessageInMemoryMaxRatio: %d is not a percentage", o.AccessMessageInMemoryMaxRatio)
	}
	for _, h := range strings.Split(o.DeleteWhen, ";") {
		if n, err := strconv.Atoi(strings.TrimSpace(h)); err != nil || n < 0 || n > 23 {
			bad("deleteWhen: %q is not a ;-separated list of hours 00-23", o.DeleteWhen)
			break
		}
	}
	return errors.Join(errs...)
}

func (o *Options) under(p, name string) string {
	if p != "" {
		return p
	}
	return filepath.Join(o.StorePathRootDir, name)
}

// CommitLogDir is where commit log files live.
func (o *Options) CommitLogDir() string { return o.under(o.StorePathCommitLog, "commitlog") }

// ConsumeQueueDir is where consume queues live (one directory per topic).
func (o *Options) ConsumeQueueDir() string { return o.under(o.StorePathConsumeQueue, "consumequeue") }

// IndexDir is where index files live.
func (o *Options) IndexDir() string { return o.under(o.StorePathIndex, "index") }

// CheckpointPath is the checkpoint file.
func (o *Options) CheckpointPath() string { return o.under(o.StoreCheckpoint, "checkpoint") }

// AbortPath is the abort marker (present while the store runs).
func (o *Options) AbortPath() string { return o.under(o.AbortFile, "abort") }

// LockPath is the file locked so two processes cannot share the store.
func (o *Options) LockPath() string { return filepath.Join(o.StorePathRootDir, "lock") }

// ConfigDir is where the broker keeps its JSON metadata (topics.json, ...).
func (o *Options) ConfigDir() string { return filepath.Join(o.StorePathRootDir, "config") }

// IsSyncFlush reports whether puts wait for fsync.
func (o *Options) IsSyncFlush() bool { return o.FlushDiskType == SyncFlush }

// UsesWriteBuffer reports whether a master's appends are staged in a write
// buffer and committed to the file before each fsync (SYNC_FLUSH). A slave
// writes replicated bytes straight through the mapping.
func (o *Options) UsesWriteBuffer() bool { return !o.IsSlave() && o.IsSyncFlush() }

// IsSlave reports whether the store is a replica that refuses puts.
func (o *Options) IsSlave() bool { return o.BrokerRole == RoleSlave }
