// Package storage defines the message store plugin kind ("storage.*"): the Store
// interface every engine implements (so far only the native commit log,
// storage/commitlog; docs/store.md), the put and get results the broker maps to
// RocketMQ response codes, and the store options shared by engines.
// storage/storetest holds the conformance suite every engine runs.
package storage

import (
	"errors"

	"github.com/mqd/mqd/storage/message"
)

// PutStatus is the outcome of an append (RocketMQ PutMessageStatus).
type PutStatus int

// Put statuses. The first four mean the message is stored.
const (
	PutOK PutStatus = iota
	PutFlushDiskTimeout
	PutFlushSlaveTimeout
	PutSlaveNotAvailable
	PutServiceNotAvailable
	PutCreateMappedFileFailed
	PutMessageIllegal
	PutPropertiesSizeExceeded
	PutOSPageCacheBusy
	PutDiskFull
	PutUnknownError
	// PutInSyncReplicasNotEnough: controller mode, the SyncStateSet holds
	// fewer replicas than minInSyncReplicas; nothing was appended.
	PutInSyncReplicasNotEnough
)

// Stored reports whether the message was appended (possibly with a degraded status).
func (s PutStatus) Stored() bool { return s <= PutSlaveNotAvailable }

func (s PutStatus) String() string {
	switch s {
	case PutOK:
		return "PUT_OK"
	case PutFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case PutFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case PutSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	case PutServiceNotAvailable:
		return "SERVICE_NOT_AVAILABLE"
	case PutCreateMappedFileFailed:
		return "CREATE_MAPPED_FILE_FAILED"
	case PutMessageIllegal:
		return "MESSAGE_ILLEGAL"
	case PutPropertiesSizeExceeded:
		return "PROPERTIES_SIZE_EXCEEDED"
	case PutOSPageCacheBusy:
		return "OS_PAGECACHE_BUSY"
	case PutDiskFull:
		return "DISK_FULL"
	case PutInSyncReplicasNotEnough:
		return "IN_SYNC_REPLICAS_NOT_ENOUGH"
	default:
		return "UNKNOWN_ERROR"
	}
}

// PutResult describes an append. For a batch, the offsets are those of the first
// message; Offsets lists the commit-log offset of every message in order.
type PutResult struct {
	Status          PutStatus
	CommitLogOffset int64 // physical offset of the (first) record
	WroteBytes      int32 // bytes of all records written
	QueueOffset     int64 // logical offset of the (first) message in its queue
	StoreTimestamp  int64
	MsgCount        int
	Offsets         []int64 // batch only: each record's commit-log offset
	Err             error   // detail for a failed status
}

// GetStatus is the outcome of a read (RocketMQ GetMessageStatus).
type GetStatus int

// Get statuses.
const (
	GetFound GetStatus = iota
	GetNoMatchedMessage
	GetMessageWasRemoving
	GetOffsetFoundNull
	GetOffsetOverflowBadly
	GetOffsetOverflowOne
	GetOffsetTooSmall
	GetNoMatchedLogicQueue
	GetNoMessageInQueue
)

// Filter selects messages during a read. MatchTagsCode sees the consume-queue tags
// hash; MatchRecord (when non-nil result needed) sees the stored record, for
// property (SQL92) filters. A nil Filter matches everything.
type Filter interface {
	MatchTagsCode(tagsCode int64) bool
	MatchRecord(record []byte) bool
}

// GetResult holds records read for a pull. Records alias the store's memory (mapped
// files) and stay valid until Release is called; callers must call Release once.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	Records         [][]byte
	TotalBytes      int
	// SuggestPullingFromSlave is set when the read was far behind the newest data
	// (more than accessMessageInMemoryMaxRatio of memory).
	SuggestPullingFromSlave bool
	ReleaseFunc             func()
}

// Release returns the mapped memory the records alias.
func (r *GetResult) Release() {
	if r != nil && r.ReleaseFunc != nil {
		r.ReleaseFunc()
		r.ReleaseFunc = nil
	}
}

// ArrivalListener is told when messages become readable in a queue (long-poll wake-up).
type ArrivalListener func(topic string, queueID int32, maxOffset int64)

// QueryResult is the answer of an index query: the commit-log offsets of the
// matching records, newest first, and how far the index has got.
type QueryResult struct {
	Offsets []int64
	// IndexLastUpdateTimestamp and IndexLastUpdatePhyOffset are the store time
	// and commit-log offset of the newest indexed message (QUERY_MESSAGE reply
	// fields indexLastUpdateTimestamp and indexLastUpdatePhyoffset).
	IndexLastUpdateTimestamp int64
	IndexLastUpdatePhyOffset int64
}

// ErrNotFound is returned when a record or queue does not exist.
var ErrNotFound = errors.New("storage: not found")

// Store is a message store. Implementations are safe for concurrent use. The
// lifecycle (open on Start, flush and close on Stop) follows the kernel's.
type Store interface {
	// Put appends one message. Under SYNC_FLUSH it returns once the bytes are
	// durable (or with PutFlushDiskTimeout).
	Put(m *message.Message) PutResult
	// PutBatch appends messages of one topic and queue contiguously, with
	// consecutive queue offsets.
	PutBatch(ms []message.Message) PutResult

	// GetMessages reads up to maxMsgs records (and about maxBytes) of a queue from
	// offset on, keeping those the filter matches.
	GetMessages(topic string, queueID int32, offset int64, maxMsgs int, maxBytes int, filter Filter) *GetResult

	// MinOffset and MaxOffset are a queue's logical bounds: MaxOffset is the next
	// offset to be written (0 for an unknown queue).
	MinOffset(topic string, queueID int32) int64
	MaxOffset(topic string, queueID int32) int64
	// OffsetByTime returns the queue offset of the first message stored at or after
	// ts (ms), or MaxOffset if none.
	OffsetByTime(topic string, queueID int32, ts int64) int64
	// EarliestMessageTime returns the store time of the oldest message in a queue.
	EarliestMessageTime(topic string, queueID int32) (int64, error)
	// MessageStoreTime returns the store time of the message at a queue offset.
	MessageStoreTime(topic string, queueID int32, offset int64) (int64, error)

	// ReadMessage returns a copy of the record at a commit-log offset.
	ReadMessage(commitLogOffset int64) ([]byte, error)
	// MinPhyOffset and MaxPhyOffset bound the commit log.
	MinPhyOffset() int64
	MaxPhyOffset() int64

	// DeleteTopics removes the consume queues of topics.
	DeleteTopics(topics ...string) error
	// QueueIDs lists the queues a topic has in the store.
	QueueIDs(topic string) []int32
	// Topics lists, sorted, every topic that has a queue in the store. A
	// broker starting as master compares it with its topic configs, so that
	// records whose config was never copied or was lost stay readable
	// (docs/replication.md, "Promoting a slave").
	Topics() []string

	// QueryMessages finds messages of a topic by key (a KEYS token or the
	// UNIQ_KEY) stored in [begin, end] (ms): at most maxNum offsets (capped by
	// maxMsgsNumBatch; defaultQueryMaxNum for a unique-key query). The index is
	// built in the background, so a message just stored may not be found yet.
	QueryMessages(topic, key string, maxNum int, begin, end int64, uniqKey bool) (QueryResult, error)

	// SetArrivalListener registers the long-poll wake-up (one listener).
	SetArrivalListener(l ArrivalListener)

	// ReadQueueEntries appends up to max entries of a queue from offset on
	// to dst (an offset below the queue's minimum starts at the minimum) and
	// returns them with the offset after the last entry scanned, without
	// reading the records: the schedule and timer services find due entries
	// by their tags codes (delivery times). Slots that hold no record
	// (placeholders) are skipped.
	ReadQueueEntries(topic string, queueID int32, offset int64, max int, dst []QueueEntry) ([]QueueEntry, int64)
	// SetDeliveryTimer sets the rule for tags codes that are delivery times;
	// the broker calls it before the store starts (recovery uses it).
	SetDeliveryTimer(t DeliveryTimer)
}

// QueueEntry is one consume-queue entry: where its record is and its tags code
// (the tags hash, or a delivery time for the schedule and timer topics).
type QueueEntry struct {
	Offset          int64 // logical offset in the queue
	CommitLogOffset int64
	Size            int32
	TagsCode        int64
}

// DeliveryTimer gives the consume-queue tags code of a dispatched record
// that is not its tags hash: for the broker's schedule and timer topics, its
// delivery time (ms). ok false keeps the record's own tags code. The broker
// owns the rule (its delay levels, the timer property); an engine calls it
// for every record it dispatches, at the put and when it dispatches again
// (crash recovery, a slave's replicated records). topic and props alias the
// engine's memory and are valid only during the call.
type DeliveryTimer func(topic string, props []byte, storeTs int64) (deliverAt int64, ok bool)
