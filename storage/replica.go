package storage

import "errors"

// Replicable is the optional part of a Store that master/slave replication
// (package ha) needs: the commit log as raw bytes. A master reads ranges of its
// log for its slaves; a slave appends what its master sent at exactly the same
// offsets, so both logs are byte-identical and the slave's consume queues are
// rebuilt from the records. An engine opts in by implementing it.
type Replicable interface {
	// ReadRaw returns up to max bytes of the commit log from offset on, never
	// crossing a file boundary. The bytes alias the store's memory and stay
	// valid until release is called (exactly once). At the end of the log it
	// returns no bytes and a nil release. ErrOffsetOutOfRange reports an offset
	// below the oldest retained byte or beyond the end.
	ReadRaw(offset int64, max int) (data []byte, release func(), err error)
	// AppendRaw writes bytes replicated from a master at offset, which must be
	// MaxPhyOffset (an empty log also accepts a file-aligned offset, where the
	// master's retained log starts). Whole records are checked (magic, size,
	// their own physical offset, body CRC) and dispatched to the consume queues
	// as on the master; a trailing partial record waits for the next append.
	// A record that fails the checks is cut off again and ErrDiverged returned.
	AppendRaw(offset int64, data []byte) error
	// MaxPhyOffset is the end of the log; FlushedPhyOffset the end of what is
	// fsynced; MinPhyOffset the oldest retained byte.
	MaxPhyOffset() int64
	MinPhyOffset() int64
	FlushedPhyOffset() int64
	// RecordBoundary reports whether a record starts at offset (or offset is
	// the end of the log, or the start of a file): a slave may resume there.
	RecordBoundary(offset int64) bool
	// TruncateRaw cuts the log at offset, a record boundary, and drops the
	// consume-queue entries beyond it (repair of a diverged slave).
	TruncateRaw(offset int64) error
}

// Replication errors.
var (
	// ErrOffsetMismatch: AppendRaw at an offset other than the end of the log.
	ErrOffsetMismatch = errors.New("storage: replicated bytes do not start at the end of the log")
	// ErrDiverged: replicated bytes are not valid records at their offsets, so
	// this log and the master's have different histories.
	ErrDiverged = errors.New("storage: replicated bytes are not records at their offsets (logs diverged)")
	// ErrOffsetOutOfRange: ReadRaw outside the retained log.
	ErrOffsetOutOfRange = errors.New("storage: commit-log offset out of range")
)
