package cluster

import (
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/tests"
)

// TestAsyncMasterDiskLoss (docs/faults.md C5): an ASYNC_MASTER under load is
// SIGKILLed and its store deleted, so what its slave holds is all that is
// left. Messages acknowledged (SEND_OK) but not yet replicated are lost; the
// test reports how many and checks they are only the newest ones: the slave
// holds a prefix of the master's log, so the lost messages are the tail of
// the log (every one after every message kept, by commit-log offset) and the
// tail of each sender's sequence, never one in the middle.
//
// On loopback the slave keeps up within a frame, so hardly anything would be
// lost; to give the check something to bite on, the replication link is cut
// (faultProxy) shortly before the kill, as a slow or broken link would: an
// ASYNC_MASTER keeps acknowledging, and every message sent from then on must
// be lost, with the tail.
//
// The slave is read the way the Java client reads while its master is gone
// (consumeLikeJavaClient): the official Go client starts consuming only at a
// master and moves a running consumer's pulls to the slave at its next route
// refresh, 30 s later (TestSyncMasterKill covers that path). What happens when
// the master comes back with its empty store (the slave refuses to follow it
// and refuses reads) is TestMasterRestartBehindSlave.
func TestAsyncMasterDiskLoss(t *testing.T) {
	const queues = 4
	c, proxy := startProxied(t, Options{Mode: "async", Namesrvs: 1})
	m, s := c.Master("a"), c.Slave("a")
	topic := tests.UniqueName("HA_DISKLOSS")
	c.CreateTopic(t, "a", topic, queues)

	stop := make(chan struct{})
	// A send in flight when its broker dies waits out the client's send
	// timeout (the Go client does not fail it when the connection drops).
	l, wg := runLoad(t, c.NS(), topic, 8, stop, producer.WithSendMsgTimeout(3*time.Second))
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= 500 }, "500 SEND_OK")
	proxy.Cut()
	cutAt := time.Now()
	at := okCount(l)
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+300 }, "300 SEND_OK with the slave cut off")
	m.Kill()
	killedAt := time.Now()
	if err := os.RemoveAll(c.Stores["broker-a"]); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait() // sends in flight failed
	stopped = true
	// The link stays cut: a heal would hand the slave what the proxy holds
	// from the dead master's socket, as TCP would after a partition.

	ss, ok := haStatus(t, s)
	if !ok {
		t.Fatal("GET /ha on the slave")
	}
	got, _ := newRemote(t).consumeLikeJavaClient(s.BrokerAddr, tests.UniqueName("CG_DISKLOSS"), topic, queues)

	l.mu.Lock()
	sends := append([]sendRecord(nil), l.sends...)
	l.mu.Unlock()
	type acked struct {
		sendRecord
		offset int64 // commit-log offset, from the broker's message id
	}
	var okSends []acked
	sent := map[string]bool{}
	for _, r := range sends {
		sent[r.body] = true
		if r.err != nil || r.status != primitive.SendOK {
			continue
		}
		id, err := primitive.UnmarshalMsgID([]byte(r.offsetMsgID))
		if err != nil {
			t.Fatalf("send %s: message id %q: %v", r.body, r.offsetMsgID, err)
		}
		okSends = append(okSends, acked{r, id.Offset})
	}
	okBody := map[string]bool{}
	for _, a := range okSends {
		okBody[a.body] = true
	}
	unacked := 0 // on the slave, though the sender saw an error (in flight at the kill)
	for b, n := range got {
		switch {
		case !sent[b]:
			t.Fatalf("the slave holds %q, which no one sent", b)
		case n > 1:
			t.Fatalf("the slave holds %q %d times", b, n)
		case !okBody[b]:
			unacked++
		}
	}

	// Lost messages form the tail of the log: none below a message kept.
	var lost []acked
	var keptMax int64 = -1
	for _, a := range okSends {
		if got[a.body] == 0 {
			lost = append(lost, a)
		} else if a.offset > keptMax {
			keptMax = a.offset
		}
	}
	for _, a := range lost {
		if a.offset < keptMax {
			t.Fatalf("lost %s at offset %d, below %d which the slave holds: a hole, not a lost tail", a.body, a.offset, keptMax)
		}
	}
	// Everything sent after the cut is lost.
	afterCut := 0
	for _, a := range okSends {
		if !a.began.Before(cutAt) {
			afterCut++
			if got[a.body] > 0 {
				t.Fatalf("%s, sent after the replication link was cut, is on the slave", a.body)
			}
		}
	}
	if afterCut == 0 {
		t.Fatal("no SEND_OK after the cut")
	}
	// And the tail of each sender's sequence.
	byG := map[int][]acked{}
	for _, a := range okSends {
		byG[a.g] = append(byG[a.g], a)
	}
	perG := map[int]int{}
	for g, as := range byG {
		sort.Slice(as, func(i, j int) bool { return as[i].seq < as[j].seq })
		var firstLost string
		for _, a := range as {
			switch {
			case got[a.body] == 0:
				perG[g]++
				if firstLost == "" {
					firstLost = a.body
				}
			case firstLost != "":
				t.Fatalf("sender %d: %s is on the slave but its earlier %s is lost", g, a.body, firstLost)
			}
		}
	}
	window := ""
	if len(lost) > 0 {
		oldest := lost[0].ended
		for _, a := range lost {
			if a.ended.Before(oldest) {
				oldest = a.ended
			}
		}
		window = fmt.Sprintf(", acknowledged within %v before the kill", killedAt.Sub(oldest).Round(time.Millisecond))
	}
	t.Logf("%d SEND_OK: %d lost with the master's disk%s (%d sent after the cut, %d before it; per sender %v); "+
		"the slave holds %d bytes of log, %d messages, %d of them unacknowledged (in flight at the cut)",
		len(okSends), len(lost), window, afterCut, len(lost)-afterCut, perG, ss.MaxPhyOffset, len(got), unacked)
	if len(got)-unacked+len(lost) != len(okSends) {
		t.Fatalf("accounting: %d read, %d unacknowledged, %d lost, %d SEND_OK", len(got), unacked, len(lost), len(okSends))
	}
}
