package ha_test

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/hatest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
)

// benchMode measures put + replication wait with 64 concurrent senders on a
// real master/slave pair over loopback (store append, HA transfer, slave
// append and dispatch, ack): the in-process core of SYNC vs ASYNC master
// throughput. lag-bytes is the slave's distance behind the master when the
// senders stop (replication lag under load).
//
// Master and slave share this process's CPUs, so an ASYNC master that leaves
// the slave behind would be measured with the slave's work undone: the clock
// stops only once the slave has caught up, which is the throughput both modes
// can sustain.
func benchMode(b *testing.B, id kernel.ModuleID) {
	// Files of production sizes (commit log files smaller, to fit the test
	// disk): the fixture's tiny ones roll every hundred messages, and creating
	// files would dominate.
	p := hatest.NewPair(b, func(o *storage.Options) {
		d := storage.DefaultOptions()
		o.MappedFileSizeCommitLog = 128 << 20
		o.MappedFileSizeConsumeQueue = d.MappedFileSizeConsumeQueue
		o.MaxHashSlotNum, o.MaxIndexNum = d.MaxHashSlotNum, d.MaxIndexNum
	})
	p.StartSlave(b)
	r := build(b, id)
	r.Attach(p.MasterHA)
	p.Put(b, "warm")
	p.WaitCaughtUp(b)
	var seq atomic.Int64
	body := string(make([]byte, 1024))
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 senders
	b.ReportAllocs()
	b.ResetTimer()
	began, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			end := p.Put(b, strconv.FormatInt(seq.Add(1), 10)+body)
			if st := r.Await(end); st != storage.PutOK {
				b.Errorf("await: %v", st)
				return
			}
		}
	})
	lag := p.Master.MaxPhyOffset() - p.MasterHA.AckedOffset()
	p.WaitCaughtUp(b)
	b.StopTimer()
	b.ReportMetric(float64(lag), "lag-bytes")
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/msg")
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkAsyncMaster64(b *testing.B) { benchMode(b, ha.AsyncID) }
func BenchmarkSyncMaster64(b *testing.B)  { benchMode(b, ha.SyncID) }
