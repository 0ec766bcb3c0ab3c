package commitlog

import (
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// benchDir is a temporary directory, under $MQD_BENCH_DIR when set (for example
// /dev/shm to measure the software path without the disk).
func benchDir(b *testing.B) string {
	if d := os.Getenv("MQD_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "mqd-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func benchMsg(size int) *message.Message {
	props := message.AppendProperty("", message.PropertyUniqKey, "7F0000010B6B18B4AAC2561B3E730000")
	props = message.AppendProperty(props, message.PropertyTags, "TagA")
	props = message.AppendProperty(props, message.PropertyCluster, "DefaultCluster")
	return &message.Message{
		Topic: "BenchmarkTopic", QueueID: 0, Body: make([]byte, size), Properties: props,
		BornTimestamp: time.Now().UnixMilli(),
		BornHost:      netip.MustParseAddrPort("127.0.0.1:50000"),
		StoreHost:     netip.MustParseAddrPort("127.0.0.1:10911"),
		TagsCode:      message.TagsHashCode("TagA"),
	}
}

// cpuTime is the process's user+system CPU time: with other work sharing the
// machine, CPU per message is steadier than wall-clock throughput.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type meter struct {
	start time.Time
	cpu   time.Duration
}

func startMeter() meter { return meter{time.Now(), cpuTime()} }

func (m meter) report(b *testing.B, msgs int) {
	b.ReportMetric(float64(msgs)/time.Since(m.start).Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuTime()-m.cpu)/float64(msgs), "cpu-ns/msg")
}

// openBenchStore opens an ASYNC_FLUSH store with production-sized consume
// queues and index (256 MiB commit-log files, to fit the test disk).
func openBenchStore(b *testing.B) *Store {
	opts := testOptions(benchDir(b))
	opts.MappedFileSizeCommitLog = 256 << 20
	opts.MappedFileSizeConsumeQueue = DefaultOptions().MappedFileSizeConsumeQueue
	opts.MaxHashSlotNum, opts.MaxIndexNum = DefaultOptions().MaxHashSlotNum, DefaultOptions().MaxIndexNum
	return openT(b, opts)
}

// BenchmarkPutAsync128B appends 128-byte messages under ASYNC_FLUSH from one
// goroutine (the background flusher runs as configured: 500 ms / 4 pages).
func BenchmarkPutAsync128B(b *testing.B) {
	s := openBenchStore(b)
	defer closeT(b, s)
	m := benchMsg(128)
	b.ReportAllocs()
	b.SetBytes(int64(message.EncodedSize(m)))
	mt := startMeter()
	for i := 0; i < b.N; i++ {
		m.QueueID = int32(i & 7)
		if r := s.Put(m); r.Status != storage.PutOK {
			b.Fatal(r.Status, r.Err)
		}
	}
	mt.report(b, b.N)
}

// BenchmarkPutManyQueues appends 1 KiB messages round-robin over 10,000
// topics of 4 queues (the first 40,000 puts create the consume-queue files,
// outside the timed part), under ASYNC_FLUSH from one goroutine: what a put
// costs when every one lands in a different, cold consume queue.
func BenchmarkPutManyQueues(b *testing.B) {
	const topics, queues = 10000, 4
	s := openBenchStore(b)
	defer closeT(b, s)
	names := make([]string, topics)
	for i := range names {
		names[i] = "Many" + strconv.Itoa(i)
	}
	m := benchMsg(1024)
	put := func(i int) {
		m.Topic, m.QueueID = names[i%topics], int32(i/topics%queues)
		if r := s.Put(m); r.Status != storage.PutOK {
			b.Fatal(r.Status, r.Err)
		}
	}
	for i := range topics * queues {
		put(i)
	}
	b.ReportAllocs()
	b.SetBytes(int64(message.EncodedSize(m)))
	b.ResetTimer()
	mt := startMeter()
	for i := 0; i < b.N; i++ {
		put(i)
	}
	mt.report(b, b.N)
	b.StopTimer() // closing flushes 40,000 files
}

// BenchmarkPutSyncFlush1KB64 appends 1 KiB messages under SYNC_FLUSH from 64
// goroutines: every put waits for an fsync covering it (group commit).
func BenchmarkPutSyncFlush1KB64(b *testing.B) {
	opts := testOptions(benchDir(b))
	opts.FlushDiskType = storage.SyncFlush
	opts.MappedFileSizeCommitLog = 256 << 20
	opts.MappedFileSizeConsumeQueue = DefaultOptions().MappedFileSizeConsumeQueue
	opts.MaxHashSlotNum, opts.MaxIndexNum = DefaultOptions().MaxHashSlotNum, DefaultOptions().MaxIndexNum
	s := openT(b, opts)
	defer closeT(b, s)
	procs := max(1, 64/testingProcs())
	b.SetParallelism(procs)
	b.ReportAllocs()
	b.SetBytes(int64(message.EncodedSize(benchMsg(1024))))
	mt := startMeter()
	b.RunParallel(func(pb *testing.PB) {
		m := benchMsg(1024)
		for pb.Next() {
			if r := s.Put(m); r.Status != storage.PutOK {
				b.Error(r.Status, r.Err)
				return
			}
		}
	})
	mt.report(b, b.N)
	b.ReportMetric(float64(b.N)/float64(max(1, s.flushes.Load())), "msgs/fsync")
}

// BenchmarkGetMessages reads 32-message batches (the push consumer's default)
// from a queue of 128-byte messages.
func BenchmarkGetMessages(b *testing.B) {
	opts := testOptions(benchDir(b))
	opts.MappedFileSizeCommitLog = 64 << 20
	opts.MappedFileSizeConsumeQueue = DefaultOptions().MappedFileSizeConsumeQueue
	opts.MaxHashSlotNum, opts.MaxIndexNum = DefaultOptions().MaxHashSlotNum, DefaultOptions().MaxIndexNum
	s := openT(b, opts)
	defer closeT(b, s)
	const n = 100000
	m := benchMsg(128)
	for i := 0; i < n; i++ {
		if r := s.Put(m); r.Status != storage.PutOK {
			b.Fatal(r.Status)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	mt := startMeter()
	var off int64
	msgs := 0
	for i := 0; i < b.N; i++ {
		r := s.GetMessages("BenchmarkTopic", 0, off, 32, 0, nil)
		if r.Status != storage.GetFound {
			b.Fatal(r.Status)
		}
		msgs += len(r.Records)
		off = r.NextBeginOffset
		if off >= n {
			off = 0
		}
		r.Release()
	}
	mt.report(b, msgs)
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkPlainGroupCommit1KB64 is the baseline PutSyncFlush1KB64 is judged
// against: the simplest group commit on the same disk, with no store around
// it. 64 goroutines append 1 KiB with pwrite under a mutex and wait for an
// fdatasync covering their bytes; one goroutine syncs in a loop.
func BenchmarkPlainGroupCommit1KB64(b *testing.B) {
	f, err := os.Create(benchDir(b) + "/plain")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 1<<30); err != nil {
		b.Skip("fallocate:", err)
	}
	var (
		mu     sync.Mutex
		end    int64
		synced atomic.Int64
		fsyncs atomic.Int64
		stop   atomic.Bool
		cond   = sync.NewCond(new(sync.Mutex))
	)
	go func() {
		for !stop.Load() {
			mu.Lock()
			e := end
			mu.Unlock()
			if e == synced.Load() {
				runtime.Gosched()
				continue
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				panic(err)
			}
			fsyncs.Add(1)
			cond.L.Lock()
			synced.Store(e)
			cond.Broadcast()
			cond.L.Unlock()
		}
	}()
	defer stop.Store(true)
	buf := make([]byte, 1024)
	b.SetParallelism(max(1, 64/testingProcs()))
	b.SetBytes(int64(len(buf)))
	mt := startMeter()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			off := end % (1 << 30)
			if _, err := unix.Pwrite(int(f.Fd()), buf, off); err != nil {
				mu.Unlock()
				b.Error(err)
				return
			}
			end += int64(len(buf))
			mine := end
			mu.Unlock()
			cond.L.Lock()
			for synced.Load() < mine {
				cond.Wait()
			}
			cond.L.Unlock()
		}
	})
	mt.report(b, b.N)
	b.ReportMetric(float64(b.N)/float64(max(1, fsyncs.Load())), "msgs/fsync")
}

// BenchmarkSync50KB is why SYNC_FLUSH stages appends (writebuffer.go): 50 KiB
// appended to a preallocated file and synced, one round per op, written
// through a shared mapping and msynced, or written with pwrite and msynced.
func BenchmarkSync50KB(b *testing.B) {
	const size, chunk = 256 << 20, 50 << 10
	for _, how := range []string{"mapping", "pwrite"} {
		b.Run(how, func(b *testing.B) {
			mf, err := createMappedFile(benchDir(b), 0, size, false)
			if err != nil {
				b.Fatal(err)
			}
			defer mf.destroy(true)
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			off := int64(0)
			for b.Loop() {
				if off+chunk > size {
					off = 0
				}
				if how == "mapping" {
					copy(mf.data[off:], buf)
				} else if _, err := unix.Pwrite(int(mf.f.Fd()), buf, off); err != nil {
					b.Fatal(err)
				}
				if err := unix.Msync(mf.data[off&^(pageSize-1):off+chunk], unix.MS_SYNC); err != nil {
					b.Fatal(err)
				}
				off += chunk
			}
		})
	}
}
