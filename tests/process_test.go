package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestEmbeddedProcess runs the mqd binary with no role: the embedded default
// (name server and broker in one process), moved to free ports with --set, and
// sends and consumes through it.
func TestEmbeddedProcess(t *testing.T) {
	t.Parallel()
	nsPort, brPort := FreePort(t), FreePort(t)
	data := t.TempDir()
	p := StartProcess(t,
		"--set", "namesrv.listenPort="+strconv.Itoa(nsPort),
		"--set", "broker.listenPort="+strconv.Itoa(brPort),
		"--set", "broker.brokerIP1=127.0.0.1",
		"--set", "store.storePathRootDir="+filepath.Join(data, "store"),
		"--set", "namesrv.kvConfigPath="+filepath.Join(data, "namesrv", "kvConfig.json"),
	)
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(nsPort)); p.NameSrvAddr != want {
		t.Fatalf("name server listening on %q, want %s", p.NameSrvAddr, want)
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(brPort)); p.BrokerAddr != want {
		t.Fatalf("broker listening on %q, want %s", p.BrokerAddr, want)
	}

	topic := UniqueName("Embedded")
	prod := NewProducer(t, p.NameSrvAddr)
	results := SendN(t, prod, topic, "", "embedded", 10) // auto-created through TBW102
	NewAdmin(t, p.NameSrvAddr).WaitRoute(topic, 1)
	pc := StartPushConsumer(t, p.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= len(results) },
		"%d of %d consumed", pc.Received.Distinct(), len(results))
}

// brokerProcesses starts "mqd namesrv" and "mqd broker -c broker.properties"
// (a RocketMQ-style file) on a fixed free port and data directory, so the
// broker can be restarted in place.
func brokerProcesses(t *testing.T, brokerName string) (ns, br *Process) {
	t.Helper()
	dir := t.TempDir()
	ns = StartProcess(t, "namesrv",
		"--set", "namesrv.listenPort=0",
		"--set", "namesrv.kvConfigPath="+filepath.Join(dir, "kvConfig.json"))
	if ns.NameSrvAddr == "" {
		t.Fatalf("name server process logged no listening address")
	}
	props := fmt.Sprintf(`# written by the compatibility tests
brokerClusterName=DefaultCluster
brokerName=%s
brokerId=0
listenPort=%d
namesrvAddr=%s
brokerIP1=127.0.0.1
storePathRootDir=%s
flushDiskType=ASYNC_FLUSH
`, brokerName, FreePort(t), ns.NameSrvAddr, filepath.Join(dir, "store"))
	file := filepath.Join(dir, "broker.properties")
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	br = StartProcess(t, "broker", "-c", file)
	if br.BrokerAddr == "" {
		t.Fatalf("broker process logged no listening address")
	}
	return ns, br
}

// pullAll reads every queue of results' topic from offset 0 up to the highest
// offset the sends reported, and returns the bodies found. It only pulls
// offsets known to exist, so no pull is parked.
func pullAll(t *testing.T, pull rocketmq.PullConsumer, results []*primitive.SendResult) map[string]int {
	t.Helper()
	end := map[primitive.MessageQueue]int64{}
	for _, r := range results {
		mq := *r.MessageQueue
		if r.QueueOffset+1 > end[mq] {
			end[mq] = r.QueueOffset + 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bodies := map[string]int{}
	for mq, last := range end {
		for off := int64(0); off < last; {
			q := mq
			res, err := pull.PullFrom(ctx, &q, off, 32)
			if err != nil {
				t.Fatalf("pull %v from %d: %v", mq, off, err)
			}
			if res.Status != primitive.PullFound || res.NextBeginOffset <= off {
				t.Fatalf("pull %v from %d: status %v next %d (max %d), want messages up to %d", mq, off, res.Status, res.NextBeginOffset, res.MaxOffset, last)
			}
			for _, m := range res.GetMessageExts() {
				bodies[string(m.Body)]++
			}
			off = res.NextBeginOffset
		}
	}
	return bodies
}

// TestBrokerProcessRestart stops a broker process with SIGTERM and starts it
// again on the same data: the messages and the group's committed offsets are
// still there.
func TestBrokerProcessRestart(t *testing.T) {
	t.Parallel()
	ns, br := brokerProcesses(t, "broker-restart")
	adm := NewAdmin(t, ns.NameSrvAddr)
	topic := UniqueName("Restart")
	adm.CreateTopic(br.BrokerAddr, topic, 4)
	group := UniqueName("RestartG")

	p := NewProducer(t, ns.NameSrvAddr)
	const n1, n2 = 20, 20
	first := SendN(t, p, topic, "", "first", n1)
	c1 := StartPushConsumer(t, ns.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return c1.Received.Distinct() >= n1 }, "%d of %d consumed before the restart", c1.Received.Distinct(), n1)
	c1.Shutdown()
	second := SendN(t, p, topic, "", "second", n2)
	_ = p.Shutdown()

	br.Stop()
	br.Restart()
	adm.WaitRoute(topic, 4)

	// Every message is still stored.
	pull := NewPullConsumer(t, ns.NameSrvAddr, topic, "")
	bodies := pullAll(t, pull, append(append([]*primitive.SendResult{}, first...), second...))
	for _, prefix := range []string{"first", "second"} {
		for i := 0; i < 20; i++ {
			if b := fmt.Sprintf("%s-%d", prefix, i); bodies[b] != 1 {
				t.Errorf("after the restart %q is stored %d times, want once", b, bodies[b])
			}
		}
	}

	// The group resumes at its committed offsets: the messages sent after it
	// stopped arrive, the ones it had consumed are not all delivered again.
	c2 := StartPushConsumer(t, ns.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool {
		for _, r := range second {
			if c2.Received.Count(r.MsgID) == 0 {
				return false
			}
		}
		return true
	}, "%d of %d messages sent before the restart consumed after it", c2.Received.Distinct(), n2)
	again := 0
	for _, r := range first {
		if c2.Received.Count(r.MsgID) > 0 {
			again++
		}
	}
	t.Logf("after the broker restart: %d of %d consumed messages delivered again", again, n1)
	if again == n1 {
		t.Errorf("every message consumed before the broker restart was delivered again: consumer offsets were not kept")
	}
}

// TestBrokerProcessKill kills the broker process with SIGKILL right after sync
// sends were acknowledged and restarts it on the same data: with ASYNC_FLUSH a
// process crash (not a power loss) keeps every acknowledged message, since the
// bytes are in the page cache.
func TestBrokerProcessKill(t *testing.T) {
	t.Parallel()
	ns, br := brokerProcesses(t, "broker-kill")
	adm := NewAdmin(t, ns.NameSrvAddr)
	topic := UniqueName("Kill")
	adm.CreateTopic(br.BrokerAddr, topic, 4)
	p := NewProducer(t, ns.NameSrvAddr)
	const n = 50
	results := SendN(t, p, topic, "", "kill", n)
	_ = p.Shutdown()

	br.Kill()
	br.Restart()
	adm.WaitRoute(topic, 4)

	pull := NewPullConsumer(t, ns.NameSrvAddr, topic, "")
	bodies := pullAll(t, pull, results)
	for i := 0; i < n; i++ {
		if b := fmt.Sprintf("kill-%d", i); bodies[b] != 1 {
			t.Errorf("after kill -9 %q is stored %d times, want once", b, bodies[b])
		}
	}
}

// TestInProcessBrokerRestart restarts the in-process broker on its port and
// data: the topic keeps its queue count (topics.json) and its messages.
func TestInProcessBrokerRestart(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("InRestart")
	adm.CreateTopic(c.BrokerAddr, topic, 3)
	p := NewProducer(t, c.NameSrvAddr)
	results := SendN(t, p, topic, "", "inproc", 9)
	_ = p.Shutdown()

	c.RestartBroker()
	if mqs := adm.WaitRoute(topic, 3); len(mqs) != 3 {
		t.Errorf("after the restart %s has %d queues, want 3", topic, len(mqs))
	}
	bodies := pullAll(t, NewPullConsumer(t, c.NameSrvAddr, topic, ""), results)
	for i := 0; i < 9; i++ {
		if b := fmt.Sprintf("inproc-%d", i); bodies[b] != 1 {
			t.Errorf("after the restart %q is stored %d times, want once", b, bodies[b])
		}
	}
}
