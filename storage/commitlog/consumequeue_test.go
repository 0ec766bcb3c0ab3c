package commitlog

import (
	"math"
	"testing"
)

// testCQ is an empty consume queue of 10-entry files in a temporary directory.
func testCQ(t *testing.T) *consumeQueue {
	t.Helper()
	c := &consumeQueue{topic: "T", queueID: 0, q: &fileQueue{dir: t.TempDir(), fileSize: 10 * cqUnit, sparse: true}}
	t.Cleanup(c.q.close)
	return c
}

type cqEnt struct {
	phy  int64
	size int32
}

var ph = cqEnt{0, placeholderSize}

// fill writes entries at queue offsets from first on.
func (c *consumeQueue) fill(t *testing.T, first int64, ents ...cqEnt) {
	t.Helper()
	for i, e := range ents {
		if err := c.write(e.phy, e.size, 0, first+int64(i)); err != nil {
			t.Fatal(err)
		}
		if e.size != placeholderSize {
			c.maxPhy = e.phy + int64(e.size)
		}
	}
}

// TestTruncateByPhySkipsPlaceholders: truncating a consume queue to a
// commit-log end drops every entry whose record ends past it, also when
// placeholder entries (gap fills) sit among or after them; placeholders that
// start the queue stay, and a queue with nothing past the end is untouched.
func TestTruncateByPhySkipsPlaceholders(t *testing.T) {
	cases := []struct {
		name    string
		first   int64 // queue offset of the first entry written
		ents    []cqEnt
		clEnd   int64
		wantMax int64
		wantPhy int64 // maxPhy afterwards
	}{
		{"gapThenBeyond", 0, []cqEnt{{0, 100}, {100, 100}, ph, ph, {500, 100}}, 150, 1, 100},
		{"trailingPlaceholders", 0, []cqEnt{{0, 100}, {100, 100}, ph, ph}, 150, 1, 100},
		{"allBeyondAfterLeadingPlaceholders", 0, []cqEnt{ph, ph, ph, {1000, 100}, {1100, 100}}, 500, 3, 0},
		{"nothingBeyond", 0, []cqEnt{{0, 100}, ph, ph}, 1000, 3, 100},
		{"beyondAcrossFiles", 0, []cqEnt{{0, 100}, ph, ph, ph, ph, ph, ph, ph, ph, ph, ph, ph, {200, 100}, ph, {300, 100}}, 250, 1, 100},
		{"overflowingOffset", 0, []cqEnt{{0, 100}, {math.MaxInt64 - 10, 100}}, 150, 1, 100},
		{"midStreamFile", 10, []cqEnt{{0, 100}, {100, 100}, ph, {300, 100}}, 250, 12, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := testCQ(t)
			if c.first > 0 {
				if _, err := q.q.newFile(c.first * cqUnit); err != nil {
					t.Fatal(err)
				}
				q.max.Store(c.first)
			}
			q.fill(t, c.first, c.ents...)
			if err := q.truncateByPhy(c.clEnd); err != nil {
				t.Fatal(err)
			}
			if got := q.max.Load(); got != c.wantMax {
				t.Fatalf("max %d, want %d", got, c.wantMax)
			}
			if q.maxPhy != c.wantPhy {
				t.Fatalf("maxPhy %d, want %d", q.maxPhy, c.wantPhy)
			}
			for i := q.q.minOffset() / cqUnit; i < q.max.Load(); i++ {
				phy, size, _, ok := q.entry(i)
				if !ok {
					t.Fatalf("entry %d unreadable", i)
				}
				if size != placeholderSize && (phy+int64(size) > c.clEnd || phy+int64(size) < phy) {
					t.Fatalf("entry %d (%d+%d) survives past the log end %d", i, phy, size, c.clEnd)
				}
			}
			// The queue goes on at its new end.
			if err := q.put(c.clEnd, 10, 0, q.max.Load()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReserveAfterARefusedPutReachesItsFile: a put whose entries spanned the
// newest file A and a new file B reserved B, then was refused (B's blocks
// could not be reserved); the retry starts in A again. Reserving must find A,
// not create files past B forever looking for bytes that are in A.
func TestReserveAfterARefusedPutReachesItsFile(t *testing.T) {
	c := testCQ(t)
	for i := range int64(5) {
		c.fill(t, i, cqEnt{i * 100, 100})
	}
	b, err := c.q.create(10 * cqUnit)
	if err != nil {
		t.Fatal(err)
	}
	c.reserved = append(c.reserved, b) // as the refused put left it
	c.resEnd.Store(10 * cqUnit)
	if err := c.reserve(5*cqUnit, 12*cqUnit); err != nil {
		t.Fatal(err)
	}
	if n := len(c.reserved); n != 1 {
		t.Fatalf("%d files reserved, want B alone", n)
	}
	if got := c.resEnd.Load(); got < 12*cqUnit {
		t.Fatalf("reserved up to byte %d, want at least %d", got, 12*cqUnit)
	}
	// Entries 5..11 land in A and B.
	for i := int64(5); i < 12; i++ {
		c.fill(t, i, cqEnt{i * 100, 100})
	}
	if phy, _, _, ok := c.entry(11); !ok || phy != 1100 {
		t.Fatalf("entry 11: %d %v", phy, ok)
	}
}
