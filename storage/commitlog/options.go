package commitlog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
)

// Options are the native engine's settings: the options every engine shares
// (storage.Options) and this engine's own (RocketMQ MessageStoreConfig keys
// under "store.": file layout, flush tuning, file deletion, disk
// watermarks, the index files), registered here.
type Options struct {
	storage.Options `koanf:",squash"`

	// Empty paths default to a directory or file under StorePathRootDir.
	StorePathCommitLog    string `koanf:"storePathCommitLog"`
	StorePathConsumeQueue string `koanf:"storePathConsumeQueue"`
	StorePathIndex        string `koanf:"storePathIndex"`
	StoreCheckpoint       string `koanf:"storeCheckpoint"`
	AbortFile             string `koanf:"abortFile"`

	MappedFileSizeConsumeQueue int64 `koanf:"mappedFileSizeConsumeQueue"`

	FlushCommitLogLeastPages          int   `koanf:"flushCommitLogLeastPages"`
	FlushCommitLogThoroughInterval    int64 `koanf:"flushCommitLogThoroughInterval"` // ms
	FlushIntervalConsumeQueue         int64 `koanf:"flushIntervalConsumeQueue"`      // ms
	FlushConsumeQueueLeastPages       int   `koanf:"flushConsumeQueueLeastPages"`
	FlushConsumeQueueThoroughInterval int64 `koanf:"flushConsumeQueueThoroughInterval"` // ms

	DeleteWhen                       string `koanf:"deleteWhen"`
	DiskMaxUsedSpaceRatio            int    `koanf:"diskMaxUsedSpaceRatio"`
	DestroyMapedFileIntervalForcibly int64  `koanf:"destroyMapedFileIntervalForcibly"` // ms
	RedeleteHangedFileInterval       int64  `koanf:"redeleteHangedFileInterval"`       // ms

	MaxTransferBytesOnMessageInDisk int   `koanf:"maxTransferBytesOnMessageInDisk"`
	MaxTransferCountOnMessageInDisk int   `koanf:"maxTransferCountOnMessageInDisk"`
	AccessMessageInMemoryMaxRatio   int   `koanf:"accessMessageInMemoryMaxRatio"`
	OSPageCacheBusyTimeOutMills     int64 `koanf:"osPageCacheBusyTimeOutMills"`

	MaxHashSlotNum int `koanf:"maxHashSlotNum"`
	MaxIndexNum    int `koanf:"maxIndexNum"`

	// Disk watermarks (RocketMQ JVM properties rocketmq.broker.*, fractions).
	DiskSpaceWarningLevelRatio  float64 `koanf:"diskSpaceWarningLevelRatio"`
	DiskSpaceCleanForciblyRatio float64 `koanf:"diskSpaceCleanForciblyRatio"`
	CleanFileForciblyEnable     bool    `koanf:"cleanFileForciblyEnable"`
	CheckCRCOnRecover           bool    `koanf:"checkCRCOnRecover"`
}

// DefaultOptions returns RocketMQ 4.9.8's defaults.
func DefaultOptions() Options {
	return Options{
		Options:                           storage.DefaultOptions(),
		MappedFileSizeConsumeQueue:        300000 * cqUnit,
		FlushCommitLogLeastPages:          4,
		FlushCommitLogThoroughInterval:    10000,
		FlushIntervalConsumeQueue:         1000,
		FlushConsumeQueueLeastPages:       2,
		FlushConsumeQueueThoroughInterval: 60000,
		DeleteWhen:                        "04",
		DiskMaxUsedSpaceRatio:             75,
		DestroyMapedFileIntervalForcibly:  120000,
		RedeleteHangedFileInterval:        120000,
		MaxTransferBytesOnMessageInDisk:   64 * 1024,
		MaxTransferCountOnMessageInDisk:   8,
		AccessMessageInMemoryMaxRatio:     40,
		OSPageCacheBusyTimeOutMills:       1000,
		MaxHashSlotNum:                    5000000,
		MaxIndexNum:                       5000000 * 4,
		DiskSpaceWarningLevelRatio:        0.90,
		DiskSpaceCleanForciblyRatio:       0.85,
		CleanFileForciblyEnable:           true,
		CheckCRCOnRecover:                 true,
	}
}

func init() {
	d := DefaultOptions()
	k := func(name string, def any, doc string, old ...string) config.Key {
		return config.Key{Path: "store." + name, Role: "broker", RocketMQ: append([]string{name}, old...), Default: def, Doc: "commitlog engine: " + doc}
	}
	config.Register(
		k("storePathCommitLog", "", "commit log directory (empty: <storePathRootDir>/commitlog)"),
		k("storePathConsumeQueue", "", "consume queue directory (empty: <storePathRootDir>/consumequeue; a 3.x key honoured by mqd)"),
		k("storePathIndex", "", "index directory (empty: <storePathRootDir>/index; a 3.x key honoured by mqd)"),
		k("storeCheckpoint", "", "checkpoint file (empty: <storePathRootDir>/checkpoint; a 3.x key honoured by mqd)"),
		k("abortFile", "", "abort marker file (empty: <storePathRootDir>/abort; a 3.x key honoured by mqd)"),
		k("mappedFileSizeConsumeQueue", d.MappedFileSizeConsumeQueue, "size of each consume queue file in bytes (rounded up to a multiple of 20)", "mapedFileSizeConsumeQueue"),
		k("flushCommitLogLeastPages", d.FlushCommitLogLeastPages, "ASYNC_FLUSH: least dirty 4 KiB pages to flush"),
		k("flushCommitLogThoroughInterval", d.FlushCommitLogThoroughInterval, "ASYNC_FLUSH: interval of a flush regardless of dirty pages (ms)"),
		k("flushIntervalConsumeQueue", d.FlushIntervalConsumeQueue, "consume queue flush interval (ms)"),
		k("flushConsumeQueueLeastPages", d.FlushConsumeQueueLeastPages, "least dirty pages to flush a consume queue"),
		k("flushConsumeQueueThoroughInterval", d.FlushConsumeQueueThoroughInterval, "interval of a full consume queue and checkpoint flush (ms)"),
		k("deleteWhen", d.DeleteWhen, "hours of the day (;-separated) when expired files are deleted"),
		k("diskMaxUsedSpaceRatio", d.DiskMaxUsedSpaceRatio, "disk usage percentage above which files are deleted early"),
		k("destroyMapedFileIntervalForcibly", d.DestroyMapedFileIntervalForcibly, "ms after which a file still read is deleted anyway"),
		k("redeleteHangedFileInterval", d.RedeleteHangedFileInterval, "interval of retrying a hung file deletion (ms)"),
		k("maxTransferBytesOnMessageInDisk", d.MaxTransferBytesOnMessageInDisk, "pull batch byte cap when the data is on disk"),
		k("maxTransferCountOnMessageInDisk", d.MaxTransferCountOnMessageInDisk, "pull batch count cap when the data is on disk"),
		k("accessMessageInMemoryMaxRatio", d.AccessMessageInMemoryMaxRatio, "percentage of RAM behind the newest data that still counts as in memory"),
		k("osPageCacheBusyTimeOutMills", d.OSPageCacheBusyTimeOutMills, "put lock hold time (ms) after which puts fail with OS_PAGECACHE_BUSY"),
		k("maxHashSlotNum", d.MaxHashSlotNum, "hash slots per index file"),
		k("maxIndexNum", d.MaxIndexNum, "entries per index file (file size = 40 + 4*maxHashSlotNum + 20*maxIndexNum)"),
		k("diskSpaceWarningLevelRatio", d.DiskSpaceWarningLevelRatio, "disk usage fraction above which puts are refused (disk full; RocketMQ JVM property rocketmq.broker.diskSpaceWarningLevelRatio)"),
		k("diskSpaceCleanForciblyRatio", d.DiskSpaceCleanForciblyRatio, "disk usage fraction above which commit log files are deleted regardless of age (rocketmq.broker.diskSpaceCleanForciblyRatio)"),
		k("cleanFileForciblyEnable", d.CleanFileForciblyEnable, "delete files regardless of age when the disk is nearly full"),
		k("checkCRCOnRecover", d.CheckCRCOnRecover, "verify body CRCs during recovery"),
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

// Normalize trims string values, upper-cases the enums (RocketMQ files often
// carry stray spaces) and rounds the consume-queue file size to whole units.
func (o *Options) Normalize() {
	o.Options.Normalize()
	for _, s := range []*string{&o.StorePathCommitLog, &o.StorePathConsumeQueue, &o.StorePathIndex, &o.StoreCheckpoint, &o.AbortFile, &o.DeleteWhen} {
		*s = strings.TrimSpace(*s)
	}
	if o.MappedFileSizeConsumeQueue > 0 && o.MappedFileSizeConsumeQueue%cqUnit != 0 {
		o.MappedFileSizeConsumeQueue += cqUnit - o.MappedFileSizeConsumeQueue%cqUnit
	}
}

// Validate checks the options (after Normalize).
func (o *Options) Validate() error {
	errs := []error{o.Options.Validate()}
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("store."+format, a...)) }
	if strings.Contains(o.StorePathCommitLog, ",") {
		bad("storePathCommitLog: several commit log directories (%q) are not supported; give one directory", o.StorePathCommitLog)
	}
	if o.MappedFileSizeConsumeQueue < cqUnit*16 || o.MappedFileSizeConsumeQueue > 1<<32 {
		bad("mappedFileSizeConsumeQueue: %d out of range [320, 4 GiB]", o.MappedFileSizeConsumeQueue)
	}
	positive := map[string]int64{
		"flushIntervalConsumeQueue":       o.FlushIntervalConsumeQueue,
		"maxTransferBytesOnMessageInDisk": int64(o.MaxTransferBytesOnMessageInDisk),
		"maxTransferCountOnMessageInDisk": int64(o.MaxTransferCountOnMessageInDisk),
	}
	for name, v := range positive {
		if v <= 0 {
			bad("%s: must be positive, got %d", name, v)
		}
	}
	nonNegative := map[string]int64{
		"flushCommitLogLeastPages": int64(o.FlushCommitLogLeastPages), "flushConsumeQueueLeastPages": int64(o.FlushConsumeQueueLeastPages),
		"flushCommitLogThoroughInterval": o.FlushCommitLogThoroughInterval, "flushConsumeQueueThoroughInterval": o.FlushConsumeQueueThoroughInterval,
		"destroyMapedFileIntervalForcibly": o.DestroyMapedFileIntervalForcibly,
		"redeleteHangedFileInterval":       o.RedeleteHangedFileInterval, "osPageCacheBusyTimeOutMills": o.OSPageCacheBusyTimeOutMills,
	}
	for name, v := range nonNegative {
		if v < 0 {
			bad("%s: must not be negative, got %d", name, v)
		}
	}
	if o.MaxHashSlotNum <= 0 || o.MaxIndexNum <= 1 || 40+4*int64(o.MaxHashSlotNum)+20*int64(o.MaxIndexNum) > 1<<34 {
		bad("maxHashSlotNum/maxIndexNum: %d/%d give no valid index file (both positive, file at most 16 GiB)", o.MaxHashSlotNum, o.MaxIndexNum)
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

// CommitLogDir is where commit log files live.
func (o *Options) CommitLogDir() string { return o.Under(o.StorePathCommitLog, "commitlog") }

// ConsumeQueueDir is where consume queues live (one directory per topic).
func (o *Options) ConsumeQueueDir() string { return o.Under(o.StorePathConsumeQueue, "consumequeue") }

// IndexDir is where index files live.
func (o *Options) IndexDir() string { return o.Under(o.StorePathIndex, "index") }

// CheckpointPath is the checkpoint file.
func (o *Options) CheckpointPath() string { return o.Under(o.StoreCheckpoint, "checkpoint") }

// AbortPath is the abort marker (present while the store runs).
func (o *Options) AbortPath() string { return o.Under(o.AbortFile, "abort") }

// UsesWriteBuffer reports whether a master's appends are staged in a write
// buffer and committed to the file before each fsync (SYNC_FLUSH). A slave
// writes replicated bytes straight through the mapping.
func (o *Options) UsesWriteBuffer() bool { return !o.IsSlave() && o.IsSyncFlush() }
