package ha_test

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/hatest"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/storage"
)

// benchMode measures put + replication wait with 64 concurrent senders on a
// real master/slave pair over loopback (store append, HA transfer, slave
// append and dispatch, ack): the in-process core of SYNC vs ASYNC master
// throughput. lag-bytes is the slave's distance behind the master at the end.
func benchMode(b *testing.B, id kernel.ModuleID) {
	p := hatest.NewPair(b)
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
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			end := p.Put(b, strconv.FormatInt(seq.Add(1), 10)+body)
			if st := r.Await(end); st != storage.PutOK {
				b.Errorf("await: %v", st)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(p.Master.MaxPhyOffset()-p.MasterHA.AckedOffset()), "lag-bytes")
}

func BenchmarkAsyncMaster64(b *testing.B) { benchMode(b, ha.AsyncID) }
func BenchmarkSyncMaster64(b *testing.B)  { benchMode(b, ha.SyncID) }
