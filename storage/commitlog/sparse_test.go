package commitlog

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// diskUsage is the bytes the file system gave the files under dir (blocks,
// not sizes: consume-queue files are sparse).
func diskUsage(t *testing.T, dir string) (used, size int64) {
	t.Helper()
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		used += fi.Sys().(*syscall.Stat_t).Blocks * 512
		size += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used, size
}

// Many queues with few messages each must not cost a whole 5.7 MiB
// consume-queue file apiece on disk (RocketMQ's default size, kept for the
// on-disk layout): files are sparse and get blocks as they fill.
func TestManyQueuesStaySmallOnDisk(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MappedFileSizeConsumeQueue = DefaultOptions().MappedFileSizeConsumeQueue
	s := openT(t, opts)
	const topics, queues = 100, 4
	for i := range topics {
		for q := range int32(queues) {
			putN(t, s, fmt.Sprintf("Many%d", i), q, 2)
		}
	}
	// A queue that fills several chunks keeps its blocks ahead of its writes.
	putN(t, s, "Busy", 0, 5000)
	waitT(t, func() bool { return s.MaxOffset("Busy", 0) == 5000 }, "Busy not dispatched")
	cq, _ := s.consumeQueue("Busy", 0, false)
	if last := cq.q.last(); last.allocated.Load() < last.wrote.Load() {
		t.Fatalf("Busy: %d bytes written, only %d allocated", last.wrote.Load(), last.allocated.Load())
	}

	used, size := diskUsage(t, opts.ConsumeQueueDir())
	t.Logf("consume queues: %d bytes on disk for %d bytes of files", used, size)
	if want := int64(topics*queues+1) * opts.MappedFileSizeConsumeQueue; size != want {
		t.Fatalf("consume-queue files are %d bytes, want %d (one full-size file per queue)", size, want)
	}
	// 2 entries per queue need a page; allow for file-system overhead.
	if limit := int64(topics*queues)*16<<10 + 1<<20; used > limit {
		t.Fatalf("consume queues use %d bytes on disk, want at most %d", used, limit)
	}

	// The sparse files survive a crash and a clean restart like any others.
	crash(t, s)
	s = openT(t, opts)
	for i := range topics {
		for q := range int32(queues) {
			topic := fmt.Sprintf("Many%d", i)
			if got := readQueue(t, s, topic, q); len(got) != 2 {
				t.Fatalf("%s/%d after a crash: %d messages, want 2", topic, q, len(got))
			}
		}
	}
	putN(t, s, "Busy", 0, 10)
	closeT(t, s)
	s = openT(t, opts)
	defer closeT(t, s)
	if got := readQueue(t, s, "Busy", 0); len(got) != 5010 {
		t.Fatalf("Busy after restarts: %d messages, want 5010", len(got))
	}
}
