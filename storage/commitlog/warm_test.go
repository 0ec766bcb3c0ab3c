package commitlog

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

// The warmer writes zeros ahead of the writers; racing it against puts of
// every size, across file rolls (blank records) and a restart, no record may
// lose a byte (warm.go).
func TestWarmerNeverZeroesRecords(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.MappedFileSizeCommitLog = 2 << 20 // rolls every few hundred puts
	s := openT(t, opts)
	const senders, perSender = 4, 600
	var stop atomic.Bool
	var warmers sync.WaitGroup
	warmers.Add(1)
	go func() { // besides the store's own warmer, as often as it can run
		defer warmers.Done()
		for !stop.Load() {
			s.warmFile(s.cl.q.last())
		}
	}()
	body := func(sender, i int) string {
		// 1 byte to ~12 KiB: records end anywhere within a page.
		return fmt.Sprintf("%d-%d-", sender, i) + strings.Repeat(string(rune('a'+sender)), (i*4099+sender*977)%12000+1)
	}
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				if r := s.Put(storetest.Msg("WARMRACE", int32(w), body(w, i), "t")); r.Status != storage.PutOK {
					t.Errorf("put: %v %v", r.Status, r.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	warmers.Wait()
	check := func(s *Store, when string) {
		t.Helper()
		for w := range senders {
			got := storetest.ReadAll(t, s, "WARMRACE", int32(w), 0)
			if len(got) != perSender {
				t.Fatalf("%s: queue %d holds %d messages, want %d", when, w, len(got), perSender)
			}
			for i, m := range got {
				if string(m.Body) != body(w, i) {
					t.Fatalf("%s: queue %d message %d differs (%d bytes, want %d)", when, w, i, len(m.Body), len(body(w, i)))
				}
			}
		}
	}
	check(s, "before restart")
	closeT(t, s)
	s = openT(t, opts)
	defer closeT(t, s)
	check(s, "after restart")
}

// The same race on a slave: replicated bytes arrive through AppendRaw in
// chunks that end anywhere, while a warmer fills ahead of them.
func TestWarmerNeverZeroesReplicatedBytes(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MappedFileSizeCommitLog = 2 << 20
	master := openT(t, opts)
	defer closeT(t, master)
	so := testOptions(t.TempDir())
	so.MappedFileSizeCommitLog = opts.MappedFileSizeCommitLog
	so.BrokerRole = storage.RoleSlave
	slave := openT(t, so)
	defer closeT(t, slave)
	const n = 1500
	body := func(i int) string { return fmt.Sprintf("%d-", i) + strings.Repeat("r", (i*4099)%9000+1) }
	for i := range n {
		if r := master.Put(storetest.Msg("WARMREPL", int32(i%2), body(i), "")); r.Status != storage.PutOK {
			t.Fatalf("put: %v %v", r.Status, r.Err)
		}
	}
	var stop atomic.Bool
	var warmers sync.WaitGroup
	warmers.Add(1)
	go func() {
		defer warmers.Done()
		for !stop.Load() {
			slave.warmFile(slave.cl.q.last())
		}
	}()
	for off, chunk := int64(0), 1; off < master.MaxPhyOffset(); chunk = chunk*7%12289 + 1 {
		data, release, err := master.ReadRaw(off, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			t.Fatalf("no bytes at %d of %d", off, master.MaxPhyOffset())
		}
		err = slave.AppendRaw(off, data)
		release()
		if err != nil {
			t.Fatal(err)
		}
		off += int64(len(data))
	}
	stop.Store(true)
	warmers.Wait()
	for q := range int32(2) {
		got := storetest.ReadAll(t, slave, "WARMREPL", q, 0)
		if len(got) != n/2 {
			t.Fatalf("slave queue %d holds %d messages, want %d", q, len(got), n/2)
		}
		for j, m := range got {
			if string(m.Body) != body(j*2+int(q)) {
				t.Fatalf("slave queue %d message %d differs", q, j)
			}
		}
	}
}
