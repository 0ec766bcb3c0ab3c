// Package hatest is the conformance suite of replication modes (ha.*): what
// the broker relies on from every ha.Replicator, run against a real master and
// slave (two commit-log stores in a temporary directory joined by the HA
// transport over loopback TCP). It also offers the Pair fixture to other tests.
package hatest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/transport"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/waittest"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/commitlog"
	"github.com/mqd/mqd/storage/storetest"
)

// Pair is a master store serving its HA port and, once StartSlave ran, a slave
// store following it.
type Pair struct {
	Master   *commitlog.Store
	MasterHA *transport.Master
	Slave    *commitlog.Store
	SlaveHA  *transport.Slave
	dir      string
	opts     transport.Options
	tweaks   []func(*commitlog.Options)
}

// SlaveBrokerID is the broker id the pair's slave announces in its HA hello.
const SlaveBrokerID = 1

// TransportOptions are short intervals for tests.
func TransportOptions() transport.Options {
	return transport.Options{BatchSize: 32 * 1024, Heartbeat: 200 * time.Millisecond,
		Housekeeping: 5 * time.Second, Reconnect: 100 * time.Millisecond, Logger: zerolog.Nop()}
}

// StoreOptions are the options of both stores (small files so they roll).
func StoreOptions(root string) commitlog.Options {
	o := commitlog.DefaultOptions()
	o.Options = storetest.Options(root)
	o.MappedFileSizeCommitLog = 256 * 1024
	o.MappedFileSizeConsumeQueue = 100 * 20
	o.MaxHashSlotNum, o.MaxIndexNum = 64, 100
	return o
}

// NewPair opens a master store and its HA port; everything stops at cleanup.
// Tweaks change the options of both stores.
func NewPair(t testing.TB, tweaks ...func(*commitlog.Options)) *Pair {
	t.Helper()
	p := &Pair{dir: t.TempDir(), opts: TransportOptions(), tweaks: tweaks}
	st, err := commitlog.Open(p.storeOptions("master"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p.Master = st
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.MasterHA = transport.NewMaster(st, p.opts)
	p.MasterHA.Serve(ln)
	t.Cleanup(func() {
		p.StopSlave()
		p.MasterHA.Close()
		st.Close()
	})
	return p
}

// StartSlave opens (or reopens) the slave store and follows the master.
func (p *Pair) StartSlave(t testing.TB) {
	t.Helper()
	o := p.storeOptions("slave")
	o.BrokerRole = storage.RoleSlave
	st, err := commitlog.Open(o, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p.Slave = st
	so := p.opts
	so.BrokerID = SlaveBrokerID // modes that track replicas by id (ha.insync) see it
	p.SlaveHA = transport.NewSlave(st, so)
	p.SlaveHA.SetMasterAddr(p.MasterHA.Addr().String())
	p.SlaveHA.Start()
}

func (p *Pair) storeOptions(name string) commitlog.Options {
	o := StoreOptions(filepath.Join(p.dir, name))
	for _, f := range p.tweaks {
		f(&o)
	}
	return o
}

// StopSlave stops the slave transport and closes its store.
func (p *Pair) StopSlave() {
	if p.SlaveHA != nil {
		p.SlaveHA.Stop()
		p.SlaveHA = nil
	}
	if p.Slave != nil {
		p.Slave.Close()
		p.Slave = nil
	}
}

// Put stores one message on the master and returns the end offset of its record.
func (p *Pair) Put(t testing.TB, body string) int64 {
	t.Helper()
	r := p.Master.Put(storetest.Msg("HA_TEST", int32(len(body)%4), body, "tag"))
	if r.Status != storage.PutOK {
		t.Fatalf("put: %v %v", r.Status, r.Err)
	}
	return r.CommitLogOffset + int64(r.WroteBytes)
}

// WaitCaughtUp waits until the slave confirmed the master's end.
func (p *Pair) WaitCaughtUp(t testing.TB) {
	t.Helper()
	WaitFor(t, 10*time.Second, func() bool {
		return p.MasterHA.SlaveCount() > 0 && p.MasterHA.AckedOffset() >= p.Master.MaxPhyOffset() &&
			p.Slave.MaxPhyOffset() == p.Master.MaxPhyOffset()
	}, "slave catches up")
}

// SameBytes fails unless both logs hold identical bytes.
func (p *Pair) SameBytes(t testing.TB) {
	t.Helper()
	for off := p.Master.MinPhyOffset(); off < p.Master.MaxPhyOffset(); {
		a, ra, err := p.Master.ReadRaw(off, 1<<20)
		if err != nil || len(a) == 0 {
			t.Fatalf("master read at %d: %v", off, err)
		}
		b, rb, err := p.Slave.ReadRaw(off, len(a))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("slave bytes at %d differ (%d vs %d bytes, %v)", off, len(a), len(b), err)
		}
		off += int64(len(a))
		ra()
		rb()
	}
}

// WaitFor polls cond until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	waittest.For(t, timeout, cond, "%s", what)
}

// Factory builds a provisioned, validated, not yet started replicator whose
// timeout (store.syncFlushTimeout) is Timeout.
type Factory func(t *testing.T) ha.Replicator

// Timeout is the replication timeout factories must configure.
const Timeout = 1500 * time.Millisecond

// Run runs the suite against one mode.
func Run(t *testing.T, newRep Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newRep Factory)
	}{
		{"ConfirmedIsReplicated", testConfirmed},
		{"ConcurrentSendersWithSlave", testConcurrent},
		{"StoredStatusWithoutSlave", testNoSlave},
		{"ReadyWhenCaughtUp", testReady},
		{"StopReleasesWaiters", testStop},
		{"RoleIsMaster", testRole},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newRep) })
	}
}

func start(t *testing.T, newRep Factory, p *Pair) ha.Replicator {
	t.Helper()
	r := newRep(t)
	r.Attach(p.MasterHA)
	if err := kernel.StartModule(r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kernel.RetireModule(context.Background(), r) })
	return r
}

// testConfirmed: an end the slave has confirmed is replicated in every mode.
func testConfirmed(t *testing.T, newRep Factory) {
	p := NewPair(t)
	p.StartSlave(t)
	r := start(t, newRep, p)
	var end int64
	for i := range 50 {
		end = p.Put(t, fmt.Sprintf("m%d", i))
	}
	p.WaitCaughtUp(t)
	if st := r.Await(end); st != storage.PutOK {
		t.Fatalf("Await(%d) after the slave confirmed it: %v", end, st)
	}
	p.SameBytes(t)
}

// testConcurrent: 64 senders with a healthy slave all get PUT_OK, and the
// slave holds every byte.
func testConcurrent(t *testing.T, newRep Factory) {
	p := NewPair(t)
	p.StartSlave(t)
	r := start(t, newRep, p)
	p.WaitCaughtUp(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				end := p.Put(t, fmt.Sprintf("g%d-%d", g, i))
				if st := r.Await(end); st != storage.PutOK {
					errs <- fmt.Errorf("sender %d message %d: %v", g, i, st)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p.WaitCaughtUp(t)
	p.SameBytes(t)
	n := 0
	for q := int32(0); q < 4; q++ {
		n += int(p.Slave.MaxOffset("HA_TEST", q))
	}
	if n != 64*20 {
		t.Fatalf("slave consume queues hold %d messages, want %d", n, 64*20)
	}
}

// testNoSlave: without a slave, Await answers a stored status within the
// timeout (the message is on the master whatever the mode).
func testNoSlave(t *testing.T, newRep Factory) {
	p := NewPair(t)
	r := start(t, newRep, p)
	end := p.Put(t, "alone")
	began := time.Now()
	st := r.Await(end)
	if !st.Stored() {
		t.Fatalf("Await without slave: %v, want a stored status", st)
	}
	if d := time.Since(began); d > Timeout+2*time.Second {
		t.Fatalf("Await without slave took %v", d)
	}
}

// testReady: once the slave confirmed the master's end, the mode is ready to
// take over.
func testReady(t *testing.T, newRep Factory) {
	p := NewPair(t)
	p.StartSlave(t)
	r := start(t, newRep, p)
	p.Put(t, "x")
	p.WaitCaughtUp(t)
	// A mode may need a moment after it started (an external one waits
	// for its plugin's first policy).
	var err error
	WaitFor(t, 5*time.Second, func() bool { err = r.Ready(p.Master.MaxPhyOffset()); return err == nil }, "Ready after catch-up")
	if err != nil {
		t.Fatalf("Ready after catch-up: %v", err)
	}
}

// testStop: Stop releases a waiter that can never be confirmed.
func testStop(t *testing.T, newRep Factory) {
	p := NewPair(t)
	p.StartSlave(t)
	r := start(t, newRep, p)
	p.Put(t, "x")
	p.WaitCaughtUp(t)
	done := make(chan storage.PutStatus, 1)
	go func() { done <- r.Await(p.Master.MaxPhyOffset() + 1<<20) }()
	time.Sleep(20 * time.Millisecond) // let it park (if the mode parks at all)
	if err := kernel.RetireModule(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if !st.Stored() {
			t.Fatalf("released waiter got %v", st)
		}
	case <-time.After(Timeout + 3*time.Second):
		t.Fatal("Await did not return after Stop")
	}
}

func testRole(t *testing.T, newRep Factory) {
	r := newRep(t)
	if role := r.Role(); role != storage.RoleAsyncMaster && role != storage.RoleSyncMaster {
		t.Fatalf("Role() = %q", role)
	}
	// A built-in mode is the one its role maps to; an external mode, or
	// one the controller drives (ha.insync), only says which role's
	// guarantees it gives.
	if _, ok := r.(ha.SyncStateSetter); ok || r.MQDModule().External != "" {
		return
	}
	if id, err := ha.ModuleForRole(r.Role()); err != nil || id != r.MQDModule().ID {
		t.Fatalf("ModuleForRole(%s) = %s, %v; module is %s", r.Role(), id, err, r.MQDModule().ID)
	}
}

// BenchMode measures put + replication wait with 64 concurrent senders of
// 1 KiB on a real master/slave pair over loopback (store append, HA
// transfer, slave append and dispatch, confirmation, the mode's wait): the
// in-process core of a replication mode's throughput. It reports msgs/s,
// the p99 of one put+wait (p99-us), CPU per message, and lag-bytes (the
// slave's distance behind the master when the senders stop). r is built,
// not attached nor started.
//
// Master and slave share this process's CPUs, so a mode that leaves the
// slave behind would be measured with the slave's work undone: the clock
// stops only once the slave has caught up, which is the throughput every
// mode can sustain.
func BenchMode(b *testing.B, r ha.Replicator) {
	// Files of production sizes (commit log files smaller, to fit the test
	// disk): the fixture's tiny ones roll every hundred messages, and creating
	// files would dominate.
	p := NewPair(b, func(o *commitlog.Options) {
		d := commitlog.DefaultOptions()
		o.MappedFileSizeCommitLog = 128 << 20
		o.MappedFileSizeConsumeQueue = d.MappedFileSizeConsumeQueue
		o.MaxHashSlotNum, o.MaxIndexNum = d.MaxHashSlotNum, d.MaxIndexNum
	})
	p.StartSlave(b)
	r.Attach(p.MasterHA)
	if err := kernel.StartModule(r); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = kernel.RetireModule(context.Background(), r) })
	p.Put(b, "warm")
	p.WaitCaughtUp(b)
	WaitFor(b, 10*time.Second, func() bool { return r.Ready(p.Master.MaxPhyOffset()) == nil }, "mode ready")
	var seq atomic.Int64
	var lat latencyHistogram
	body := string(make([]byte, 1024))
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 senders
	b.ReportAllocs()
	b.ResetTimer()
	began, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			end := p.Put(b, strconv.FormatInt(seq.Add(1), 10)+body)
			if st := r.Await(end); st != storage.PutOK {
				b.Errorf("await: %v", st)
				return
			}
			lat.add(time.Since(t0))
		}
	})
	lag := p.Master.MaxPhyOffset() - p.MasterHA.AckedOffset()
	p.WaitCaughtUp(b)
	b.StopTimer()
	b.ReportMetric(float64(lag), "lag-bytes")
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/msg")
	b.ReportMetric(float64(lat.quantile(0.99).Microseconds()), "p99-us")
}

// latencyHistogram counts durations in 10 µs buckets up to 100 ms, lock-free.
type latencyHistogram struct{ buckets [10000]atomic.Int64 }

func (h *latencyHistogram) add(d time.Duration) {
	i := min(int(d/(10*time.Microsecond)), len(h.buckets)-1)
	h.buckets[i].Add(1)
}

func (h *latencyHistogram) quantile(q float64) time.Duration {
	var n int64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	want, seen := int64(float64(n)*q), int64(0)
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen > want {
			return time.Duration(i+1) * 10 * time.Microsecond
		}
	}
	return 100 * time.Millisecond
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
