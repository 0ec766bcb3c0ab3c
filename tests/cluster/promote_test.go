package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/tests"
)

// TestPromotedSlave is the seed's manual failover (docs/replication.md,
// "Promoting a slave"): 3 name servers, broker-a and broker-b with their
// slaves; a topic is created on both masters moments before broker-a is
// SIGKILLed under load; broker-a-s is stopped and started again as the new
// master of broker-a (brokerId=0, ASYNC_MASTER, same store). A fresh consumer
// group must then read every message a master acknowledged, and a group that
// was consuming during the load must, across the failover, skip none.
//
// sync: SYNC_MASTER, so nothing acknowledged may be lost. broker-a-s copies
// metadata periodically only once an hour here, so the new topic's config can
// reach it only through the copy its first replicated record asks for; the
// test checks that it did, then deletes the slave's topics.json, so that the
// promoted broker must also rebuild the config from its consume queues.
//
// async: ASYNC_MASTER, metadata copied every 500 ms (offsets copied from the
// master can be ahead of the slave's log). Only what broker-a acknowledged at
// commit-log offsets the slave had not received at the kill may be lost; the
// test reports how much that was.
func TestPromotedSlave(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) { testPromotedSlave(t, mode) })
	}
}

func testPromotedSlave(t *testing.T, mode string) {
	o := Options{Mode: mode}
	if mode == "sync" {
		o.BrokerExtra = map[string][]string{"broker-a-s": {"broker.slaveSyncInterval=3600000"}}
	}
	c := Start(t, o)
	m, s := c.Master("a"), c.Slave("a")
	waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
	waitLog(t, c.Master("b"), "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_PROMOTE")
	c.CreateTopic(t, "a", topic, 8)
	c.CreateTopic(t, "b", topic, 8)

	group := tests.UniqueName("CG_PROMOTE")
	before := tests.StartPushConsumer(t, c.NS(), topic, tests.ConsumerOptions{Group: group, FromFirst: true})
	stop := make(chan struct{})
	// A send in flight when broker-a dies waits out the send timeout.
	l, wg := runLoad(t, c.NS(), topic, 32, stop, producer.WithSendMsgTimeout(3*time.Second))
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	tests.WaitFor(t, 60*time.Second, func() bool { return okCount(l) >= 5000 }, "5000 SEND_OK")
	m.Kill()
	at := okCount(l)
	tests.WaitFor(t, 60*time.Second, func() bool { return okCount(l) >= at+1000 }, "1000 SEND_OK after the kill (broker-b)")
	close(stop)
	wg.Wait()
	stopped = true
	before.Shutdown()

	st, ok := haStatus(t, s)
	if !ok {
		t.Fatal("GET /ha on broker-a-s")
	}
	slaveEnd := st.MaxPhyOffset
	topicsFile := filepath.Join(c.Stores["broker-a-s"], "config", "topics.json")
	s.Stop()
	if mode == "sync" {
		data, err := os.ReadFile(topicsFile)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"`+topic+`"`) {
			t.Fatalf("broker-a-s did not copy the config of %s when its records arrived:\n%s", topic, data)
		}
		for _, f := range []string{topicsFile, topicsFile + ".bak"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
	}
	s.RestartWith("--set", "brokerId=0", "--set", "brokerRole=ASYNC_MASTER")
	if mode == "sync" && !strings.Contains(s.Logs(), "configs rebuilt from their queues") {
		t.Fatal("the promoted broker did not log the topics it rebuilt from its queues")
	}

	// Which acknowledged messages the promoted broker may lack: under
	// ASYNC_MASTER, those broker-a stored at or beyond what broker-a-s had.
	l.mu.Lock()
	sends := append([]sendRecord(nil), l.sends...)
	l.mu.Unlock()
	want, mayLack := map[string]bool{}, map[string]bool{}
	onA, lagEnd := 0, slaveEnd
	for _, r := range sends {
		if r.err != nil || r.status != primitive.SendOK {
			continue
		}
		id, err := primitive.UnmarshalMsgID([]byte(r.offsetMsgID))
		if err != nil {
			t.Fatalf("send %s: message id %q: %v", r.body, r.offsetMsgID, err)
		}
		if id.Addr+":"+strconv.Itoa(id.Port) == m.BrokerAddr {
			onA++
			if id.Offset >= slaveEnd {
				if mode == "sync" {
					t.Fatalf("SYNC_MASTER acknowledged %s at offset %d, beyond its slave's end %d", r.body, id.Offset, slaveEnd)
				}
				mayLack[r.body] = true
				lagEnd = max(lagEnd, id.Offset)
				continue
			}
		}
		want[r.body] = true
	}

	fresh := tests.StartPushConsumer(t, c.NS(), topic, tests.ConsumerOptions{FromFirst: true})
	after := tests.StartPushConsumer(t, c.NS(), topic, tests.ConsumerOptions{Group: group, FromFirst: true})
	waitConsumed(t, fresh, want, 120*time.Second)
	got := receivedBodies(fresh)
	lost := 0
	for b := range mayLack {
		if !got[b] {
			lost++
		}
	}
	// The group that consumed before the failover resumes from the offsets
	// the promoted broker has: it may get messages again, never skip one.
	tests.WaitFor(t, 120*time.Second, func() bool {
		seen := receivedBodies(before)
		for b := range receivedBodies(after) {
			seen[b] = true
		}
		for b := range want {
			if !seen[b] {
				return false
			}
		}
		return true
	}, "group %s consumed every stored message across the failover", group)

	t.Logf("%s: %d SEND_OK (%d by broker-a); lost %d, all acknowledged by broker-a at or beyond the slave's end %d "+
		"(replication lag at the kill: up to %d bytes); group %s got %d before the failover and %d after",
		mode, len(want)+len(mayLack), onA, lost, slaveEnd, lagEnd-slaveEnd, group,
		before.Received.Distinct(), after.Received.Distinct())
}

// receivedBodies is the set of message bodies c has received.
func receivedBodies(c *tests.PushConsumer) map[string]bool {
	out := map[string]bool{}
	for _, id := range c.Received.IDs() {
		if m := c.Received.Get(id); m != nil {
			out[string(m.Body)] = true
		}
	}
	return out
}
