package cluster

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqd/mqd/tests"
)

// faultProxy forwards TCP connections from a local port to target. Cut makes
// it a blackhole: nothing is forwarded in either direction and nothing is
// closed (a network partition, not a reset); what was read meanwhile, and any
// close seen meanwhile, goes through at Heal. A connection accepted during a
// cut dials target only at Heal.
type faultProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// startProxy listens on a free local port; test cleanup closes it.
func startProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address, host:port.
func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// Cut stops all forwarding; once it returns, no byte read afterwards reaches
// the other side before Heal.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

// Heal resumes forwarding.
func (p *faultProxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *faultProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// pass waits while the proxy is cut; false once it is closed.
func (p *faultProxy) pass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.cut && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

// track registers c for Close; false (and c closed) once the proxy is closed.
func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *faultProxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	if !p.pass() {
		return
	}
	u, err := net.DialTimeout("tcp", p.target, 3*time.Second)
	if err != nil || !p.track(u) {
		return // the client sees the close, as it would a refused connection
	}
	defer p.untrack(u)
	var once sync.Once
	done := make(chan struct{})
	end := func() { once.Do(func() { close(done) }) }
	pipe := func(dst, src net.Conn) {
		defer end()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if !p.pass() {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				p.pass() // a close crosses the partition only when it heals
				return
			}
		}
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); pipe(u, c) }()
	go func() { defer p.wg.Done(); pipe(c, u) }()
	<-done
	// Either side ended: end the other too (the deferred untracks close
	// both, which unblocks the other pipe's Read).
}

// commitLogBytes returns the commit log under store from offset 0 up to upto
// (a stopped broker's files, named by their first offset).
func commitLogBytes(t *testing.T, store string, upto int64) []byte {
	t.Helper()
	dir := filepath.Join(store, "commitlog")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		from int64
		name string
	}
	var files []file
	for _, e := range ents {
		if from, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && !e.IsDir() {
			files = append(files, file{from, e.Name()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].from < files[j].from })
	out := make([]byte, 0, upto)
	for _, f := range files {
		from := f.from
		if from >= upto {
			break
		}
		if from != int64(len(out)) {
			t.Fatalf("%s: file %s, want one starting at %d", dir, f.name, len(out))
		}
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if need := upto - from; int64(len(data)) > need {
			data = data[:need]
		}
		out = append(out, data...)
	}
	if int64(len(out)) != upto {
		t.Fatalf("%s holds %d bytes, want %d", dir, len(out), upto)
	}
	return out
}

// startProxied starts broker-a and broker-a-s (o.Brokers is ignored), the
// slave replicating through a faultProxy to the master's HA port (an explicit
// haMasterAddress wins over the name servers' haServerAddr).
func startProxied(t *testing.T, o Options) (*Cluster, *faultProxy) {
	t.Helper()
	haPort := tests.FreePort(t)
	proxy := startProxy(t, "127.0.0.1:"+strconv.Itoa(haPort))
	o.Brokers = []string{"broker-a", "broker-a-s"}
	o.BrokerExtra = map[string][]string{
		"broker-a":   {"haListenPort=" + strconv.Itoa(haPort)},
		"broker-a-s": {"haMasterAddress=" + proxy.Addr()},
	}
	c := Start(t, o)
	waitLog(t, c.Master("a"), "HA: slave accepted", 1, 30*time.Second)
	if st, ok := haStatus(t, c.Slave("a")); !ok || !st.Connected || st.MasterHAAddr != proxy.Addr() {
		t.Fatalf("slave /ha: %+v, want connected through %s", st, proxy.Addr())
	}
	return c, proxy
}

// TestReplicationPartition (docs/faults.md C6): the slave of a SYNC_MASTER
// reaches the master's HA port through a proxy, which blackholes the link
// while producers send. No send that began during the cut and was answered
// before the heal gets SEND_OK: first FLUSH_SLAVE_TIMEOUT (the connection is
// still up, no confirmation within syncFlushTimeout), then, once the master
// dropped the silent slave after haHousekeepingInterval, SLAVE_NOT_AVAILABLE.
// After the heal the slave catches up, its commit log is byte-identical to the
// master's, and every SEND_OK message is consumed.
func TestReplicationPartition(t *testing.T) {
	c, proxy := startProxied(t, Options{Mode: "sync", Namesrvs: 1,
		// Small commit-log files: the logs compared span several.
		Extra: []string{"syncFlushTimeout=1000", "haHousekeepingInterval=3000", "mappedFileSizeCommitLog=65536"}})
	m, s := c.Master("a"), c.Slave("a")
	topic := tests.UniqueName("HA_PARTITION")
	c.CreateTopic(t, "a", topic, 4)

	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 4, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= 200 }, "200 SEND_OK before the cut")

	// refusedSince counts the answers to sends begun at or after from.
	refusedSince := func(from time.Time) (fst, sna int) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range l.sends {
			if r.err == nil && !r.began.Before(from) {
				switch r.status {
				case primitive.SendFlushSlaveTimeout:
					fst++
				case primitive.SendSlaveNotAvailable:
					sna++
				}
			}
		}
		return
	}
	proxy.Cut()
	cutAt := time.Now()
	// Hold the cut until both refusals were seen and both ends gave up the
	// silent connection (haHousekeepingInterval), and the slave's next
	// connection, made during the cut, timed out as well.
	tests.WaitFor(t, 30*time.Second, func() bool {
		fst, sna := refusedSince(cutAt)
		return fst > 0 && sna > 0
	}, "FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE during the cut")
	waitLog(t, s, "HA: connection to master lost", 2, 30*time.Second)
	proxy.Heal()
	healAt := time.Now()
	waitLog(t, m, "HA: slave accepted", 2, 30*time.Second)
	at := okCount(l)
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+200 }, "200 SEND_OK after the heal")
	close(stop)
	wg.Wait()
	stopped = true

	l.mu.Lock()
	var during, fst, sna, errs int
	var bad []string
	for _, r := range l.sends {
		if r.began.Before(cutAt) || !r.ended.Before(healAt) {
			continue // answered before the cut, or possibly confirmed after the heal
		}
		during++
		switch {
		case r.err != nil:
			errs++
		case r.status == primitive.SendFlushSlaveTimeout:
			fst++
		case r.status == primitive.SendSlaveNotAvailable:
			sna++
		default:
			bad = append(bad, fmt.Sprintf("%s: status %v", r.body, r.status))
		}
	}
	want := l.ok
	total := len(l.sends)
	l.mu.Unlock()
	t.Logf("cut %v: %d sends begun and answered during it: %d FLUSH_SLAVE_TIMEOUT, %d SLAVE_NOT_AVAILABLE, %d errors; %d sends in all, %d SEND_OK",
		healAt.Sub(cutAt).Round(time.Millisecond), during, fst, sna, errs, total, len(want))
	if len(bad) > 0 {
		t.Fatalf("%d sends begun during the partition and answered before the heal were not refused, first: %s", len(bad), bad[0])
	}

	end := waitSlaveCaughtUp(t, m, s)
	if ss, _ := haStatus(t, s); ss.Diverged != "" || !ss.Connected {
		t.Fatalf("slave after the heal: %+v", ss)
	}
	cons := tests.StartPushConsumer(t, c.NS(), topic, tests.ConsumerOptions{FromFirst: true})
	waitConsumed(t, cons, want, 60*time.Second)
	cons.Shutdown()

	// Stopped cleanly, both logs hold the same bytes up to the master's end.
	s.Stop()
	m.Stop()
	a := commitLogBytes(t, c.Stores["broker-a"], end)
	b := commitLogBytes(t, c.Stores["broker-a-s"], end)
	if !bytes.Equal(a, b) {
		i := 0
		for i < len(a) && a[i] == b[i] {
			i++
		}
		t.Fatalf("commit logs differ at offset %d of %d", i, len(a))
	}
	t.Logf("commit logs byte-identical over %d bytes", end)
}
