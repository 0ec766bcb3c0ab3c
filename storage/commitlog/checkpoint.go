package commitlog

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// checkpointSize is the size of the checkpoint file (RocketMQ maps one page).
const checkpointSize = 4096

// checkpoint is the StoreCheckpoint file: longs at 0/8/16 hold the store time of
// the last flushed commit-log message, of the last message written to a consume
// queue, and the end time of the last full index file. mqd adds, after a magic
// long at 40 (past the longs RocketMQ 4.x and 5.x use), the commit-log offsets
// of the last record known flushed (48) and of the last record whose
// consume-queue entry is known flushed (56): crash recovery can start at the
// smaller one instead of the start of a 1 GiB file. After a second magic at
// 64, a clean stop records the end of the log at 72 (-1 at any other time):
// a clean restart verifies the log from the record at 48 to that end and
// trusts the rest. Files without these fields (RocketMQ's, earlier mqd's)
// recover as before.
type checkpoint struct {
	mu        sync.Mutex
	f         *os.File
	physic    int64
	logics    int64
	index     int64
	physicRec int64 // -1: unknown
	logicsRec int64 // -1: unknown
	cleanEnd  int64 // written: log end of a clean stop in progress, else -1
	stopEnd   int64 // read at open: log end the last clean stop recorded, or -1
}

// checkpointMagic marks the mqd offsets ("mqdckpt1"), cleanMagic the clean
// stop's end ("mqdclen1").
const (
	checkpointMagic = 0x6d7164636b707431
	cleanMagic      = 0x6d7164636c656e31
)

func openCheckpoint(path string) (*checkpoint, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	cp := &checkpoint{f: f, physicRec: -1, logicsRec: -1, cleanEnd: -1, stopEnd: -1}
	var b [80]byte
	if n, _ := f.ReadAt(b[:], 0); n >= 24 {
		cp.physic = int64(binary.BigEndian.Uint64(b[0:]))
		cp.logics = int64(binary.BigEndian.Uint64(b[8:]))
		cp.index = int64(binary.BigEndian.Uint64(b[16:]))
		if n == len(b) && binary.BigEndian.Uint64(b[40:]) == checkpointMagic {
			cp.physicRec = int64(binary.BigEndian.Uint64(b[48:]))
			cp.logicsRec = int64(binary.BigEndian.Uint64(b[56:]))
			if binary.BigEndian.Uint64(b[64:]) == cleanMagic {
				cp.stopEnd = int64(binary.BigEndian.Uint64(b[72:]))
			}
		}
	}
	if st, err := f.Stat(); err == nil && st.Size() < checkpointSize {
		if err := f.Truncate(checkpointSize); err != nil {
			f.Close()
			return nil, err
		}
	}
	return cp, nil
}

// minTimestamp is RocketMQ's getMinTimestamp: min(physic, logics) - 3 s, ≥ 0.
func (c *checkpoint) minTimestamp() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := min(c.physic, c.logics) - 3000
	return max(m, 0)
}

func (c *checkpoint) setPhysic(ts int64) {
	c.mu.Lock()
	if ts > c.physic {
		c.physic = ts
	}
	c.mu.Unlock()
}

func (c *checkpoint) setLogics(ts int64) {
	c.mu.Lock()
	if ts > c.logics {
		c.logics = ts
	}
	c.mu.Unlock()
}

// setIndex records the end time of the newest flushed index data.
func (c *checkpoint) setIndex(ts int64) {
	c.mu.Lock()
	if ts > c.index {
		c.index = ts
	}
	c.mu.Unlock()
}

// setPhysicRec records the start of a record known flushed.
func (c *checkpoint) setPhysicRec(off int64) {
	c.mu.Lock()
	c.physicRec = max(c.physicRec, off)
	c.mu.Unlock()
}

// setLogicsRec records the start of a record whose consume-queue entry, and
// every earlier one, is known flushed.
func (c *checkpoint) setLogicsRec(off int64) {
	c.mu.Lock()
	c.logicsRec = max(c.logicsRec, off)
	c.mu.Unlock()
}

// recoveryStart is the commit-log offset crash recovery may start at (a
// record start below which log and consume queues are durable), or -1.
func (c *checkpoint) recoveryStart() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.physicRec < 0 || c.logicsRec < 0 {
		return -1
	}
	return min(c.physicRec, c.logicsRec)
}

// cleanStop returns where the last clean stop said the log ends and the
// record it verified last (the flushed record offset), or ok false.
func (c *checkpoint) cleanStop() (lastRec, end int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.physicRec, c.stopEnd, c.stopEnd >= 0 && c.physicRec >= 0 && c.physicRec < c.stopEnd
}

// setCleanEnd records the end of the log of a clean stop (written by the
// next flush; every checkpoint flush after a start writes -1 instead).
func (c *checkpoint) setCleanEnd(end int64) {
	c.mu.Lock()
	c.cleanEnd = end
	c.mu.Unlock()
}

// forgetOffsetsFrom drops recorded offsets at or past end (recovery cut the
// log there; new records will reuse those offsets) and persists that at once,
// so a crash before the next checkpoint cannot trust them.
func (c *checkpoint) forgetOffsetsFrom(end int64) error {
	c.mu.Lock()
	changed := c.physicRec >= end || c.logicsRec >= end
	if changed {
		c.physicRec, c.logicsRec = -1, -1
	}
	c.mu.Unlock()
	if !changed {
		return nil
	}
	return c.flush()
}

// resetLogicsRec forgets the consume-queue offset: recovery has rewritten
// entries below it that are not flushed yet.
func (c *checkpoint) resetLogicsRec() {
	c.mu.Lock()
	c.logicsRec = -1
	c.mu.Unlock()
}

func (c *checkpoint) indexTimestamp() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index
}

// flush writes the timestamps and mqd's offsets and fsyncs the file.
func (c *checkpoint) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], uint64(c.physic))
	binary.BigEndian.PutUint64(b[8:], uint64(c.logics))
	binary.BigEndian.PutUint64(b[16:], uint64(c.index))
	if _, err := c.f.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	// Same page as the timestamps: one fsync covers both.
	var o [40]byte
	binary.BigEndian.PutUint64(o[0:], checkpointMagic)
	binary.BigEndian.PutUint64(o[8:], uint64(c.physicRec))
	binary.BigEndian.PutUint64(o[16:], uint64(c.logicsRec))
	binary.BigEndian.PutUint64(o[24:], cleanMagic)
	binary.BigEndian.PutUint64(o[32:], uint64(c.cleanEnd))
	if _, err := c.f.WriteAt(o[:], 40); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync checkpoint: %w", err)
	}
	return nil
}

func (c *checkpoint) close() error { return c.f.Close() }
