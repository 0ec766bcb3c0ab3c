package commitlog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

// S12 of docs/faults.md with a really full file system: a small tmpfs,
// mounted in a mount namespace the test re-executes itself in (with a user
// namespace too when not root; skipped where neither is allowed). The store's own files fill it through Put.

// userNSEnv marks the re-executed test process; MQD_TEST_USERNS=1 makes a
// root run take the unprivileged (user namespace) route too, to exercise it.
const userNSEnv = "MQD_TEST_IN_USERNS"

// smallFS returns an empty tmpfs of the given size, or "" when the test has
// already run in a re-executed child (the caller returns). The tmpfs is always
// mounted in a child process with a mount namespace of its own, so that it
// goes away with the child even when the test is killed.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Getenv(userNSEnv) != "" {
		if os.Geteuid() != 0 {
			t.Skip("no root in the user namespace")
		}
		// Keep the mount out of the parent's namespace even where / is a
		// shared mount.
		_ = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
		dir := t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
			t.Skipf("cannot mount a tmpfs: %v", err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dir, 0); err != nil {
				_ = unix.Unmount(dir, unix.MNT_DETACH)
			}
		})
		return dir
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+strings.ReplaceAll(t.Name(), "/", "$/^")+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), userNSEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if os.Geteuid() != 0 || os.Getenv("MQD_TEST_USERNS") != "" {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		t.Skipf("cannot run in a mount namespace of its own (needed to mount a tmpfs): %v", err)
	case err != nil:
		t.Fatalf("in a mount namespace of its own: %v\n%s", err, out)
	case strings.Contains(string(out), "--- SKIP"):
		t.Skipf("skipped in the child:\n%s", out)
	case !strings.Contains(string(out), "--- PASS"):
		t.Fatalf("the re-executed test did not run:\n%s", out)
	}
	t.Logf("ran in a mount namespace of its own:\n%s", out)
	return ""
}

// fillUp writes path until the file system has no block left.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestS12DiskFull: a put needing a new file on a full disk gets DISK_FULL
// with the ENOSPC (commit-log files and consume-queue files are reserved
// with fallocate before any write through their mapping, so nothing faults),
// the store is not fenced, nothing partial is visible, reads go on, and puts
// resume when space returns. Then a restart and a full disk again: recovery
// zeroes the tail of the newest files and must leave it reserved, since
// appends write there through the mapping (a hole would raise SIGBUS).
func TestS12DiskFull(t *testing.T) {
	for _, flush := range []string{storage.AsyncFlush, storage.SyncFlush} {
		t.Run(flush, func(t *testing.T) { diskFull(t, flush) })
	}
}

func diskFull(t *testing.T, flush string) {
	mnt := smallFS(t, "2m")
	if mnt == "" {
		return
	}
	// The filler is the space that returns later. It must cover what the
	// store may need then: index files for every message (the indexer trails
	// the put loop by any amount, more so on a busy machine, cannot create
	// files while the disk is full, and takes the freed space as it catches
	// up), a commit-log file and its preallocated successor, and
	// consume-queue files. Checked below once the message count is known.
	const fillerSize = 768 << 10
	filler := filepath.Join(mnt, "filler")
	writeFile(t, filler, make([]byte, fillerSize))
	opts := testOptions(mnt)
	opts.FlushDiskType = flush
	opts.MaxIndexNum = 1000
	opts.DiskSpaceWarningLevelRatio = 1 // only ENOSPC itself says full
	opts.CleanFileForciblyEnable = false
	opts.CleanResourceInterval = 20
	s := openT(t, opts)
	defer func() { _ = s.Close() }()

	const topic = "S12"
	put := func(topic string, i int) storage.PutResult {
		return s.Put(storetest.Msg(topic, 0, fmt.Sprintf("%s-%d", topic, i), "t"))
	}
	acked := 0
	var full storage.PutResult
	for ; acked < 100000; acked++ {
		if full = put(topic, acked); full.Status != storage.PutOK {
			break
		}
	}
	if full.Status != storage.PutDiskFull || !errors.Is(full.Err, unix.ENOSPC) {
		t.Fatalf("put %d on a full disk: %v %v; want DISK_FULL with ENOSPC", acked, full.Status, full.Err)
	}
	t.Logf("%d messages filled the file system: %v", acked, full.Err)
	// Space returning must be enough for the index of the acked messages and
	// the 102 put after (101 in S12, one in S12new), two commit-log files and
	// three consume-queue files, rounded to pages as the file system counts.
	page := int64(os.Getpagesize())
	pages := func(n int64) int64 { return (n + page - 1) / page * page }
	indexFiles := int64(acked+102)/int64(opts.MaxIndexNum-1) + 1
	need := indexFiles*pages(indexFileSize(opts.MaxHashSlotNum, opts.MaxIndexNum)) +
		2*pages(opts.MappedFileSizeCommitLog) + 3*pages(opts.MappedFileSizeConsumeQueue)
	if need > fillerSize {
		t.Fatalf("the filler (%d bytes) is smaller than what %d messages may need once space returns (%d)", fillerSize, acked, need)
	}
	// Take the last free blocks too: now no store file at all can be created.
	// Not while a commit-log preallocation or an index reservation is under
	// way: fallocate holds the blocks it got until it fails, then gives them
	// back, and those would be free again after the fill.
	func() {
		s.putMu.Lock()
		defer s.putMu.Unlock()
		if p := s.cl.next; p != nil {
			<-p.done
		}
		s.idx.mu.Lock()
		defer s.idx.mu.Unlock()
		fillUp(t, filepath.Join(mnt, "filler2"))
	}()
	for i := range 20 {
		if r := put(topic, acked+i); r.Status != storage.PutDiskFull {
			t.Fatalf("put on a full disk: %v %v; want DISK_FULL", r.Status, r.Err)
		}
	}
	// A new queue needs a consume-queue file first: refused the same way,
	// before anything reaches the log (once the disk check has cleared the
	// flag the last failure raised, the put gets as far as creating it).
	maxPhy := s.MaxPhyOffset()
	waitT(t, func() bool {
		r := put("S12new", 0)
		if r.Status != storage.PutDiskFull {
			t.Fatalf("put to a new queue on a full disk: %v %v; want DISK_FULL", r.Status, r.Err)
		}
		return strings.Contains(r.Err.Error(), "consume queue") && errors.Is(r.Err, unix.ENOSPC)
	}, "no put to a new queue failed on its consume-queue file")
	if s.MaxPhyOffset() != maxPhy {
		t.Fatalf("a refused put moved the log end from %d to %d", maxPhy, s.MaxPhyOffset())
	}
	if p := s.fenceErr.Load(); p != nil {
		t.Fatalf("a full disk fenced the store: %v", *p)
	}
	checkQueue := func(s *Store, topic string, n int) {
		t.Helper()
		waitT(t, func() bool { return s.MaxOffset(topic, 0) >= int64(n) }, "%s: %d messages not visible", topic, n)
		got := readQueue(t, s, topic, 0)
		if len(got) != n {
			t.Fatalf("%s: read %d messages, want %d", topic, len(got), n)
		}
		for i, e := range got {
			if want := fmt.Sprintf("%s-%d", topic, i); string(e.Body) != want {
				t.Fatalf("%s: message %d is %q, want %q", topic, i, e.Body, want)
			}
		}
	}
	checkQueue(s, topic, acked)

	// Space returns: puts resume once the disk check has seen it.
	for _, f := range []string{filler, filepath.Join(mnt, "filler2")} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	waitT(t, func() bool {
		r := put(topic, acked)
		if r.Status == storage.PutOK {
			acked++
		}
		return r.Status == storage.PutOK
	}, "puts did not resume after space was freed")
	for range 100 {
		if r := put(topic, acked); r.Status != storage.PutOK {
			t.Fatalf("put after space returned: %v %v", r.Status, r.Err)
		}
		acked++
	}
	if r := put("S12new", 0); r.Status != storage.PutOK {
		t.Fatalf("put to a new queue after space returned: %v %v", r.Status, r.Err)
	}
	checkQueue(s, topic, acked)
	checkQueue(s, "S12new", 1)

	// Restart, fill the disk, then append into the tail recovery zeroed.
	closeT(t, s)
	s = openT(t, opts)
	fillUp(t, filepath.Join(mnt, "filler3"))
	checkQueue(s, topic, acked)
	for i := 0; ; i++ {
		r := put(topic, acked)
		if r.Status == storage.PutDiskFull {
			break
		}
		if r.Status != storage.PutOK || i > 100000 {
			t.Fatalf("put after a restart on a full disk: %v %v", r.Status, r.Err)
		}
		acked++
	}
	checkQueue(s, topic, acked)
	if p := s.fenceErr.Load(); p != nil {
		t.Fatalf("the store was fenced: %v", *p)
	}
	closeT(t, s)
	s = openT(t, opts)
	checkQueue(s, topic, acked)
}
