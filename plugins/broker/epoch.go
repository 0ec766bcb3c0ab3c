package broker

import (
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/mqd/mqd/kernel/fsutil"
)

// The epoch file of controller mode (docs/controller.md, "Epochs and
// truncation"): the master epochs this broker's commit log went through and
// the offset at which each began. A broker that becomes master appends its
// epoch at its log's end; a slave copies its master's entries up to its own
// end. Two logs agree up to the end of the last epoch both have with the same
// start, so a broker that rejoins as slave cuts its log there, dropping what
// it wrote as master and no replica confirmed.

// epochFileName is RocketMQ's name for it, in storePathRootDir unless
// storePathEpochFile says otherwise.
const epochFileName = "epochFileCheckpoint"

// EpochEntry is one master epoch of a commit log. EndOffset is where the
// next epoch starts, or the log's end for the last one (filled on reading).
type EpochEntry struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"startOffset"`
	EndOffset   int64 `json:"endOffset"`
}

// epochFile is the epoch file, kept in memory and rewritten whole (it holds
// one line per change of master).
type epochFile struct {
	path    string
	mu      sync.Mutex
	entries []EpochEntry // by epoch, start offsets not decreasing
}

// openEpochFile reads path; a missing file is an empty history.
func openEpochFile(path string) (*epochFile, error) {
	f := &epochFile{path: path}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	// Format (RocketMQ's CheckpointFile): the entry count, a CRC32 of the
	// entry lines, then one "epoch-startOffset" line per entry.
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("epoch file %s: want a count and a checksum line", path)
	}
	n, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	sum, err2 := strconv.ParseUint(strings.TrimSpace(lines[1]), 10, 32)
	if err1 != nil || err2 != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("epoch file %s: header %q/%q does not describe %d entries", path, lines[0], lines[1], len(lines)-2)
	}
	var body strings.Builder
	for _, l := range lines[2:] {
		body.WriteString(l + "\n")
		es, os_, ok := strings.Cut(strings.TrimSpace(l), "-")
		e, err1 := strconv.ParseInt(es, 10, 32)
		o, err2 := strconv.ParseInt(os_, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("epoch file %s: bad entry %q", path, l)
		}
		f.entries = append(f.entries, EpochEntry{Epoch: int32(e), StartOffset: o})
	}
	if sum != 0 && uint32(sum) != crc32.ChecksumIEEE([]byte(body.String()))&0x7FFFFFFF {
		return nil, fmt.Errorf("epoch file %s: checksum mismatch", path)
	}
	sort.SliceStable(f.entries, func(i, j int) bool { return f.entries[i].Epoch < f.entries[j].Epoch })
	return f, nil
}

func (f *epochFile) persistLocked() error {
	var lines strings.Builder
	for _, e := range f.entries {
		fmt.Fprintf(&lines, "%d-%d\n", e.Epoch, e.StartOffset)
	}
	sum := crc32.ChecksumIEEE([]byte(lines.String())) & 0x7FFFFFFF
	return fsutil.WriteFile(f.path, fmt.Appendf(nil, "%d\n%d\n%s", len(f.entries), sum, lines.String()), 0o644)
}

// Entries returns the history with end offsets, the last one ending at
// maxOffset.
func (f *epochFile) Entries(maxOffset int64) []EpochEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return withEnds(f.entries, maxOffset)
}

func withEnds(es []EpochEntry, maxOffset int64) []EpochEntry {
	out := make([]EpochEntry, len(es))
	copy(out, es)
	for i := range out {
		if i+1 < len(out) {
			out[i].EndOffset = out[i+1].StartOffset
		} else {
			out[i].EndOffset = maxOffset
		}
	}
	return out
}

// LastEpoch is the newest epoch, 0 when there is none.
func (f *epochFile) LastEpoch() int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) == 0 {
		return 0
	}
	return f.entries[len(f.entries)-1].Epoch
}

// Begin records that epoch starts at offset (a broker becoming master). An
// epoch not newer than the last one is ignored: it is already recorded.
func (f *epochFile) Begin(epoch int32, offset int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.entries); n > 0 {
		last := f.entries[n-1]
		if epoch <= last.Epoch {
			return nil
		}
		if offset < last.StartOffset {
			return fmt.Errorf("epoch %d would start at %d, before epoch %d at %d", epoch, offset, last.Epoch, last.StartOffset)
		}
	}
	return f.replaceLocked(append(slices.Clone(f.entries), EpochEntry{Epoch: epoch, StartOffset: offset}))
}

// replaceLocked persists next and only then makes it the history, so that
// a failed write leaves memory as the disk is (and a retry writes again).
func (f *epochFile) replaceLocked(next []EpochEntry) error {
	old := f.entries
	f.entries = next
	if err := f.persistLocked(); err != nil {
		f.entries = old
		return err
	}
	return nil
}

// Follow makes the history the master's up to maxOffset, this slave's end:
// the slave's log is a prefix of the master's, so its epochs are the
// master's that start at or before its end (one starting exactly there is
// kept: the slave's next byte belongs to it).
func (f *epochFile) Follow(master []EpochEntry, maxOffset int64) error {
	var next []EpochEntry
	for _, e := range master {
		if e.StartOffset <= maxOffset {
			next = append(next, EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset})
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if equalEntries(f.entries, next) {
		return nil
	}
	return f.replaceLocked(next)
}

func equalEntries(a, b []EpochEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Epoch != b[i].Epoch || a[i].StartOffset != b[i].StartOffset {
			return false
		}
	}
	return true
}

// consistentPoint is where a log whose history is local (ends filled in)
// agrees with the master's: the end of the newest epoch both hold with the
// same start, the smaller of the two ends. ok is false when they share
// none.
func consistentPoint(local, master []EpochEntry) (int64, bool) {
	for i := len(local) - 1; i >= 0; i-- {
		l := local[i]
		for _, m := range master {
			if m.Epoch == l.Epoch && m.StartOffset == l.StartOffset {
				return min(l.EndOffset, m.EndOffset), true
			}
		}
	}
	return 0, false
}
