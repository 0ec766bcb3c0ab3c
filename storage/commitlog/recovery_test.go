package commitlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
	"github.com/mqd/mqd/storage/storetest"
)

// crash simulates a process crash: flushers stop and files are closed, but
// nothing is flushed and the abort file stays. Written data stays in the page
// cache, as after kill -9.
func crash(t *testing.T, s *Store) {
	t.Helper()
	stopFlushers(s)
	s.stopped = true
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.opts.AbortPath()); err != nil {
		t.Fatalf("abort file missing after crash: %v", err)
	}
}

// stopFlushers refuses puts and stops the background loops (idempotent).
func stopFlushers(s *Store) {
	s.running.Store(false)
	select {
	case <-s.stopCh:
	default:
		close(s.stopCh)
	}
	s.wg.Wait()
}

func putN(t *testing.T, s *Store, topic string, qid int32, n int) []storage.PutResult {
	t.Helper()
	var out []storage.PutResult
	for i := 0; i < n; i++ {
		r := s.Put(storetest.Msg(topic, qid, fmt.Sprintf("%s-%d-%d", topic, qid, i), "tag"))
		if r.Status != storage.PutOK {
			t.Fatalf("put: %v %v", r.Status, r.Err)
		}
		out = append(out, r)
	}
	return out
}

func clFile(t *testing.T, s *Store, phy int64) string {
	return filepath.Join(s.opts.CommitLogDir(), fileName(phy-phy%s.opts.MappedFileSizeCommitLog))
}

func TestCrashRecoveryTornRecord(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	res := putN(t, s, "TR", 0, 50)
	putN(t, s, "TR2", 1, 5)
	last := res[49]
	crash(t, s)

	// Damage the body of the last TR message: its CRC no longer matches.
	f, err := os.OpenFile(clFile(t, s, last.CommitLogOffset), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := last.CommitLogOffset % opts.MappedFileSizeCommitLog
	// Inside the body (IPv4 hosts: the body starts at byte 88); the CRC covers only the body.
	if _, err := f.WriteAt([]byte("XXXX"), pos+89); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = openT(t, opts)
	defer closeT(t, s)
	if s.MaxPhyOffset() != last.CommitLogOffset {
		t.Fatalf("MaxPhyOffset %d, want the damaged record's offset %d", s.MaxPhyOffset(), last.CommitLogOffset)
	}
	if s.MaxOffset("TR", 0) != 49 || s.MaxOffset("TR2", 1) != 0 {
		t.Fatalf("queue max %d / %d after recovery, want 49 / 0", s.MaxOffset("TR", 0), s.MaxOffset("TR2", 1))
	}
	got := storetest.ReadAll(t, s, "TR", 0, 0)
	if len(got) != 49 {
		t.Fatalf("%d messages survive", len(got))
	}
	r := s.Put(storetest.Msg("TR", 0, "new", ""))
	if r.QueueOffset != 49 || r.CommitLogOffset != last.CommitLogOffset {
		t.Fatalf("put after recovery: %+v", r)
	}
	if got := storetest.ReadAll(t, s, "TR", 0, 49); len(got) != 1 || string(got[0].Body) != "new" {
		t.Fatalf("new message: %v", got)
	}
}

func TestCrashRecoveryTruncatedAndGarbageTail(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	res := putN(t, s, "G", 0, 30)
	last := res[29]
	end := last.CommitLogOffset + int64(last.WroteBytes)
	crash(t, s)

	// Tear the last record in half and put plausible garbage after it: a
	// copy of an earlier record (valid magic and CRC, wrong position).
	name := clFile(t, s, last.CommitLogOffset)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	base := last.CommitLogOffset - last.CommitLogOffset%opts.MappedFileSizeCommitLog
	first := res[0].CommitLogOffset - base
	half := last.CommitLogOffset - base + int64(last.WroteBytes)/2
	clear(data[half : end-base])
	copy(data[end-base:], data[first:first+int64(res[0].WroteBytes)])
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}

	s = openT(t, opts)
	if s.MaxPhyOffset() != last.CommitLogOffset || s.MaxOffset("G", 0) != 29 {
		t.Fatalf("recovered to %d (queue max %d), want %d (29)", s.MaxPhyOffset(), s.MaxOffset("G", 0), last.CommitLogOffset)
	}
	// Write one short message and crash again: the stale bytes after it must
	// not come back as records.
	putN(t, s, "G", 0, 1)
	crash(t, s)
	s = openT(t, opts)
	defer closeT(t, s)
	if got := storetest.ReadAll(t, s, "G", 0, 0); len(got) != 30 || string(got[29].Body) != "G-0-0" {
		t.Fatalf("after second crash: %d messages", len(got))
	}
	if s.MaxOffset("G", 0) != 30 {
		t.Fatalf("queue max %d", s.MaxOffset("G", 0))
	}
}

func TestRecoveryRebuildsLostConsumeQueues(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			opts := testOptions(t.TempDir())
			s := openT(t, opts)
			for i := 0; i < 400; i++ { // several commit log files
				r := s.Put(storetest.Msg("L", int32(i%3), strings.Repeat("x", 300)+fmt.Sprint(i), ""))
				if r.Status != storage.PutOK {
					t.Fatal(r.Status)
				}
			}
			half := storetest.Msg("L", 0, "half", "")
			half.SysFlag = message.SysFlagTranPrepared
			s.Put(half)
			if clean {
				closeT(t, s)
			} else {
				crash(t, s)
			}
			if err := os.RemoveAll(opts.ConsumeQueueDir()); err != nil {
				t.Fatal(err)
			}
			s = openT(t, opts)
			defer closeT(t, s)
			for q := int32(0); q < 3; q++ {
				got := storetest.ReadAll(t, s, "L", q, 0)
				want := 133
				if q == 0 {
					want = 134
				}
				if len(got) != want {
					t.Fatalf("queue %d: %d messages rebuilt, want %d", q, len(got), want)
				}
				for j, x := range got {
					if x.QueueOffset != int64(j) || !strings.HasSuffix(string(x.Body), fmt.Sprint(j*3+int(q))) {
						t.Fatalf("queue %d entry %d: offset %d body ...%s", q, j, x.QueueOffset, x.Body[len(x.Body)-4:])
					}
				}
			}
			if r := s.Put(storetest.Msg("L", 1, "next", "")); r.QueueOffset != 133 {
				t.Fatalf("next offset %d", r.QueueOffset)
			}
		})
	}
}

func TestCrashKeepsFlushedAndDispatched(t *testing.T) {
	// Crash with nothing broken: everything written is recovered.
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	putN(t, s, "K", 0, 100)
	maxPhy := s.MaxPhyOffset()
	crash(t, s)
	s = openT(t, opts)
	defer closeT(t, s)
	if s.MaxPhyOffset() != maxPhy || s.MaxOffset("K", 0) != 100 {
		t.Fatalf("after crash: phy %d/%d queue %d", s.MaxPhyOffset(), maxPhy, s.MaxOffset("K", 0))
	}
	if _, err := os.Stat(opts.AbortPath()); err != nil {
		t.Fatal("abort file not recreated while running")
	}
}

func TestSyncFlushConcurrentPuts(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FlushDiskType = storage.SyncFlush
	opts.MappedFileSizeCommitLog = 1 << 20
	s := openT(t, opts)
	defer closeT(t, s)
	const writers, per = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*per)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r := s.Put(storetest.Msg("SF", int32(w%4), fmt.Sprintf("%d-%d", w, i), ""))
				if r.Status != storage.PutOK {
					errs <- fmt.Errorf("put: %v", r.Status)
					continue
				}
				if end := r.CommitLogOffset + int64(r.WroteBytes); s.FlushedPhyOffset() < end {
					errs <- fmt.Errorf("put returned before its bytes were flushed: %d < %d", s.FlushedPhyOffset(), end)
				}
				// Visible to readers once acknowledged.
				if s.MaxOffset("SF", int32(w%4)) <= r.QueueOffset {
					errs <- fmt.Errorf("acknowledged message not readable")
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := s.flushes.Load()
	if n >= writers*per {
		t.Fatalf("%d flushes for %d puts: no group commit", n, writers*per)
	}
	t.Logf("%d puts, %d flushes", writers*per, n)
}

func TestStoreLock(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	if _, err := Open(opts, s.log); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
	closeT(t, s)
	s = openT(t, opts)
	closeT(t, s)
}

func TestSlaveRefusesPuts(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.BrokerRole = "slave "
	s := openT(t, opts)
	defer closeT(t, s)
	if r := s.Put(storetest.Msg("S", 0, "x", "")); r.Status != storage.PutServiceNotAvailable {
		t.Fatalf("slave put: %v", r.Status)
	}
}

func TestStoppedStoreRefusesPuts(t *testing.T) {
	s := openT(t, testOptions(t.TempDir()))
	closeT(t, s)
	if r := s.Put(storetest.Msg("S", 0, "x", "")); r.Status != storage.PutServiceNotAvailable {
		t.Fatalf("put after close: %v", r.Status)
	}
}

func TestThreeXPaths(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.StorePathCommitLog = filepath.Join(dir, "cl")
	opts.StorePathConsumeQueue = filepath.Join(dir, "cq")
	opts.StoreCheckpoint = filepath.Join(dir, "meta", "cp")
	opts.AbortFile = filepath.Join(dir, "meta", "abort")
	s := openT(t, opts)
	putN(t, s, "P", 0, 3)
	for _, p := range []string{filepath.Join(dir, "cl", fileName(0)), filepath.Join(dir, "cq", "P", "0", fileName(0)), filepath.Join(dir, "meta", "abort")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	closeT(t, s)
	if _, err := os.Stat(filepath.Join(dir, "meta", "cp")); err != nil {
		t.Error("checkpoint not written")
	}
	if _, err := os.Stat(filepath.Join(dir, "meta", "abort")); err == nil {
		t.Error("abort file left after a clean stop")
	}
}

func TestModuleAndKeysRegistered(t *testing.T) {
	info, err := kernel.GetModule(ModuleID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.New().(storage.Store); !ok {
		t.Fatal("module is not a storage.Store")
	}
	for name, path := range map[string]string{
		"mapedFileSizeCommitLog": "store.mappedFileSizeCommitLog", "mappedFileSizeConsumeQueue": "store.mappedFileSizeConsumeQueue",
		"mapedFileSizeConsumeQueue": "store.mappedFileSizeConsumeQueue", "storePathConsumeQueue": "store.storePathConsumeQueue",
		"brokerRole": "store.brokerRole", "flushDiskType": "store.flushDiskType",
	} {
		if p, ok := config.LookupRocketMQ("broker", name); !ok || p != path {
			t.Errorf("%s maps to %q", name, p)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	o.Normalize()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	o.MappedFileSizeConsumeQueue = 50000001
	o.FlushDiskType = " sync_flush "
	o.Normalize()
	if o.MappedFileSizeConsumeQueue != 50000020 || o.FlushDiskType != storage.SyncFlush {
		t.Fatalf("normalize: %d %q", o.MappedFileSizeConsumeQueue, o.FlushDiskType)
	}
	bad := DefaultOptions()
	bad.FlushDiskType = "SOMETIMES"
	bad.StorePathCommitLog = "/a,/b"
	bad.MappedFileSizeCommitLog = 1000
	bad.DeleteWhen = "25"
	err := bad.Validate()
	for _, want := range []string{"flushDiskType", "storePathCommitLog", "mappedFileSizeCommitLog", "deleteWhen"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v does not mention %s", err, want)
		}
	}
}

func TestPathLikeTopicsRefused(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	defer closeT(t, s)
	for _, topic := range []string{"../../escape", "a/b", "..", "x..y"} {
		if r := s.Put(storetest.Msg(topic, 0, "x", "")); r.Status.Stored() {
			t.Errorf("topic %q stored", topic)
		}
	}
	if s.MaxPhyOffset() != 0 {
		t.Fatalf("refused messages reached the commit log: %d", s.MaxPhyOffset())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(opts.StorePathRootDir), "escape")); !os.IsNotExist(err) {
		t.Fatal("directory created outside the store")
	}
}
