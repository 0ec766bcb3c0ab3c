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
// queue, and the end time of the last full index file.
type checkpoint struct {
	mu     sync.Mutex
	f      *os.File
	physic int64
	logics int64
	index  int64
}

func openCheckpoint(path string) (*checkpoint, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	cp := &checkpoint{f: f}
	var b [24]byte
	if n, _ := f.ReadAt(b[:], 0); n == len(b) {
		cp.physic = int64(binary.BigEndian.Uint64(b[0:]))
		cp.logics = int64(binary.BigEndian.Uint64(b[8:]))
		cp.index = int64(binary.BigEndian.Uint64(b[16:]))
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

func (c *checkpoint) indexTimestamp() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index
}

// flush writes the three timestamps and fsyncs the file.
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
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync checkpoint: %w", err)
	}
	return nil
}

func (c *checkpoint) close() error { return c.f.Close() }
