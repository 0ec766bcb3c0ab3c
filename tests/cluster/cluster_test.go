package cluster

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/tests"
)

func TestMain(m *testing.M) {
	code := m.Run()
	tests.CleanupBinary()
	os.Exit(code)
}

// load runs senders goroutines sending unique bodies until stop is closed,
// recording SEND_OK bodies, failures, latencies and every send's outcome.
type load struct {
	mu        sync.Mutex
	ok        map[string]bool
	failed    []string
	latencies []sample
	sends     []sendRecord
	seq       atomic.Int64
}

// sendRecord is one send's outcome, for tests that look at when and how each
// send ended: body "g<goroutine>-<seq>", seq growing in each goroutine's send
// order; err set, or status the broker's answer.
type sendRecord struct {
	g, seq       int
	body         string
	began, ended time.Time
	status       primitive.SendStatus
	offsetMsgID  string // the broker's message id: its commit-log offset
	err          error
}

type sample struct {
	at  time.Time
	dur time.Duration
}

func runLoad(t *testing.T, ns, topic string, senders int, stop <-chan struct{}, opts ...producer.Option) (*load, *sync.WaitGroup) {
	l := &load{ok: map[string]bool{}}
	p := tests.NewProducer(t, ns, append([]producer.Option{producer.WithRetry(0), producer.WithSendMsgTimeout(10 * time.Second)}, opts...)...)
	var wg sync.WaitGroup
	// The other senders start once the first send is answered: 64 first
	// sends at once race inside the Go client's route lookup, and some fail
	// with "route info not found" although every name server has the route.
	firstDone := make(chan struct{})
	var firstOnce sync.Once
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g > 0 {
				select {
				case <-firstDone:
				case <-stop:
					return
				}
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				seq := int(l.seq.Add(1))
				body := fmt.Sprintf("g%d-%d", g, seq)
				began := time.Now()
				res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
				ended := time.Now()
				d := ended.Sub(began)
				rec := sendRecord{g: g, seq: seq, body: body, began: began, ended: ended, err: err}
				if err == nil {
					rec.status, rec.offsetMsgID = res.Status, res.OffsetMsgID
				}
				l.mu.Lock()
				l.latencies = append(l.latencies, sample{began, d})
				l.sends = append(l.sends, rec)
				switch {
				case err != nil:
					l.failed = append(l.failed, body+": "+err.Error())
				case res.Status == primitive.SendOK:
					l.ok[body] = true
				default:
					l.failed = append(l.failed, fmt.Sprintf("%s: status %v", body, res.Status))
				}
				l.mu.Unlock()
				firstOnce.Do(func() { close(firstDone) })
				if err != nil || res.Status != primitive.SendOK {
					time.Sleep(20 * time.Millisecond) // broker gone or refusing: do not spin
				}
			}
		}()
	}
	return l, &wg
}

func (l *load) p99(from, to time.Time) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ds []time.Duration
	for _, s := range l.latencies {
		if !s.at.Before(from) && s.at.Before(to) {
			ds = append(ds, s.dur)
		}
	}
	if len(ds) == 0 {
		return 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)*99/100], len(ds)
}

func waitLog(t *testing.T, p *tests.Process, substr string, n int, timeout time.Duration) {
	t.Helper()
	tests.WaitFor(t, timeout, func() bool { return strings.Count(p.Logs(), substr) >= n }, "log %q x%d", substr, n)
}

// consumeAll reads topic from the first offset with a new group until every
// body in want was received.
func consumeAll(t *testing.T, ns, topic string, want map[string]bool, timeout time.Duration) {
	t.Helper()
	waitConsumed(t, tests.StartPushConsumer(t, ns, topic, tests.ConsumerOptions{FromFirst: true}), want, timeout)
}

// waitConsumed waits until c has received every body in want.
func waitConsumed(t *testing.T, c *tests.PushConsumer, want map[string]bool, timeout time.Duration) {
	t.Helper()
	seen := map[string]bool{}
	tests.WaitFor(t, timeout, func() bool {
		for _, id := range c.Received.IDs() {
			if m := c.Received.Get(id); m != nil {
				seen[string(m.Body)] = true
			}
		}
		for body := range want {
			if !seen[body] {
				return false
			}
		}
		return true
	}, "consume %d messages", len(want))
}

// TestSyncMasterKill: SYNC_MASTER under load is SIGKILLed; every message that
// got SEND_OK is on its slave, and the running consumer reads all of them from
// the slave. (The Go client reads and commits offsets only at a master
// (FindBrokerAddrByName), so a consumer that starts while the master is down
// cannot begin; one that runs carries on, its pulls falling back to the slave.)
func TestSyncMasterKill(t *testing.T) {
	c := Start(t, Options{Mode: "sync", Brokers: []string{"broker-a", "broker-a-s"}})
	waitLog(t, c.Master("a"), "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_SYNC")
	c.CreateTopic(t, "a", topic, 4)
	cons := tests.StartPushConsumer(t, c.NS(), topic, tests.ConsumerOptions{FromFirst: true})
	tests.WaitFor(t, 30*time.Second, func() bool {
		n := 0 // the group's %RETRY% queue may be owned too
		for _, mq := range cons.OwnedQueues() {
			if mq.Topic == topic {
				n++
			}
		}
		return n == 4
	}, "consumer owns the 4 queues")

	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 16, stop)
	tests.WaitFor(t, 30*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.ok) >= 500 }, "500 SEND_OK")
	c.Master("a").Kill()
	close(stop)
	wg.Wait() // sends in flight were answered or failed
	l.mu.Lock()
	want := l.ok
	l.mu.Unlock()
	t.Logf("%d SEND_OK before the kill, %d failed around it", len(want), len(l.failed))
	// The name servers keep the group with its slave (docs/replication.md, Reads from a slave); the
	// consumer moves its pulls there at its next route refresh (every 30 s in
	// the Go client, not configurable), then pulls with a 3 s back-off.
	c.WaitRouteWithout(t, topic, "broker-a", 0)
	waitConsumed(t, cons, want, 75*time.Second)
}

// TestHotSwapUnderLoad: ASYNC_MASTER -> SYNC_MASTER -> ASYNC_MASTER by SIGHUP
// after editing the config file, while 64 producers send: no failed send, no
// lost message, and the p99 send latency around each swap is reported.
func TestHotSwapUnderLoad(t *testing.T) {
	c := Start(t, Options{Mode: "async", Brokers: []string{"broker-a", "broker-a-s"}})
	m := c.Master("a")
	waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_SWAP")
	c.CreateTopic(t, "a", topic, 8)

	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 64, stop)
	began := time.Now()
	time.Sleep(time.Second)
	var windows [][2]time.Time
	for i, role := range []string{"SYNC_MASTER", "ASYNC_MASTER"} {
		c.SetRole(t, "broker-a", role)
		at := time.Now()
		if err := m.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLog(t, m, "replication mode swapped", i+1, 30*time.Second)
		windows = append(windows, [2]time.Time{at, time.Now().Add(200 * time.Millisecond)})
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	l.mu.Lock()
	failed := append([]string(nil), l.failed...)
	want := l.ok
	l.mu.Unlock()
	all, n := l.p99(began, time.Now())
	t.Logf("%d sends, overall p99 %v", n, all)
	for i, w := range windows {
		p, n := l.p99(w[0], w[1])
		t.Logf("swap %d: %d sends started during the swap, p99 %v", i+1, n, p)
	}
	if len(failed) > 0 {
		t.Fatalf("%d failed sends, first: %s", len(failed), failed[0])
	}
	if strings.Contains(m.Logs(), "reload refused") {
		t.Fatal("a reload was refused")
	}
	consumeAll(t, c.NS(), topic, want, 60*time.Second)
}
