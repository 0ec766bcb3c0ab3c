package cluster

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/tests"
)

// clusterInfo asks the name server ns for GET_BROKER_CLUSTER_INFO (what
// mqadmin clusterList shows).
func clusterInfo(t *testing.T, ns string) *body.ClusterInfo {
	t.Helper()
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, ns, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("GET_BROKER_CLUSTER_INFO at %s: %v %+v", ns, err, resp)
	}
	ci, err := body.DecodeClusterInfo(resp.Body)
	if err != nil {
		t.Fatalf("cluster info of %s: %v", ns, err)
	}
	return ci
}

// TestFullTopology: the seed's 3 name servers + broker-a, broker-a-s,
// broker-b, broker-b-s from configs/2m-2s-async. Every name server lists the
// four brokers (ids 0 and 1 of each group) in DefaultCluster; a producer
// sends to a topic on both masters, its messages land on both groups, and a
// push consumer receives all of them.
func TestFullTopology(t *testing.T) {
	c := Start(t, Options{Mode: "async"})
	want := map[string]map[int64]string{
		"broker-a": {0: c.Master("a").BrokerAddr, 1: c.Slave("a").BrokerAddr},
		"broker-b": {0: c.Master("b").BrokerAddr, 1: c.Slave("b").BrokerAddr},
	}
	for _, ns := range c.NSList() {
		var ci *body.ClusterInfo
		tests.WaitFor(t, 30*time.Second, func() bool {
			ci = clusterInfo(t, ns)
			for name, ids := range want {
				bd, ok := ci.BrokerAddrTable[name]
				if !ok || len(bd.BrokerAddrs) != len(ids) {
					return false
				}
				for id, addr := range ids {
					if bd.BrokerAddrs[id] != addr {
						return false
					}
				}
			}
			return true
		}, "cluster info at %s lists the four brokers", ns)
		names := append([]string(nil), ci.ClusterAddrTable["DefaultCluster"]...)
		if len(names) != 2 || !strings.Contains(strings.Join(names, ","), "broker-a") || !strings.Contains(strings.Join(names, ","), "broker-b") {
			t.Fatalf("cluster info at %s: DefaultCluster has %v", ns, names)
		}
		for name, bd := range ci.BrokerAddrTable {
			if bd.Cluster != "DefaultCluster" {
				t.Fatalf("cluster info at %s: %s in cluster %q", ns, name, bd.Cluster)
			}
		}
	}

	topic := tests.UniqueName("HA_TOPO")
	c.CreateTopic(t, "a", topic, 4)
	c.CreateTopic(t, "b", topic, 4)

	p := tests.NewProducer(t, c.NS(), producer.WithNsResolver(primitive.NewPassthroughResolver(c.NSList())), producer.WithRetry(2))
	sent := map[string]bool{}
	perGroup := map[string]int{}
	for i := range 200 {
		b := "topo-" + strconv.Itoa(i)
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b)))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		sent[b] = true
		perGroup[res.MessageQueue.BrokerName]++
	}
	if perGroup["broker-a"] == 0 || perGroup["broker-b"] == 0 {
		t.Fatalf("sends by group: %v, want both groups", perGroup)
	}
	t.Logf("sends by group: %v", perGroup)
	consumeAll(t, c.NS(), topic, sent, 60*time.Second)
}

// TestMasterPause: broker-a's master is paused (SIGSTOP) beyond the name
// servers' expiry: they drop its address (the slave stays routed), and a
// producer's sends move to broker-b once the Go client refreshes its routes
// (every 30 s, not configurable). After SIGCONT the master registers again and
// comes back into every name server's routes.
func TestMasterPause(t *testing.T) {
	c := Start(t, Options{
		Mode:    "async",
		Brokers: []string{"broker-a", "broker-a-s", "broker-b"},
		// Brokers register every 10 s (the harness's registerNameServerPeriod,
		// RocketMQ's floor); an expiry of 15 s drops a paused one within
		// ~16 s while a live one keeps 5 s of slack.
		NamesrvExtra: []string{"namesrv.brokerChannelExpiredTime=15000", "namesrv.scanNotActiveBrokerInterval=500"},
	})
	m := c.Master("a")
	topic := tests.UniqueName("HA_PAUSE")
	c.CreateTopic(t, "a", topic, 4)
	c.CreateTopic(t, "b", topic, 4)

	// No retry and a short timeout: a send routed to the paused master fails
	// rather than being retried on broker-b, so only a client whose routes
	// dropped broker-a sends successfully many times in a row.
	p := tests.NewProducer(t, c.NS(), producer.WithRetry(0), producer.WithSendMsgTimeout(2*time.Second))
	send := func(i int) (string, error) {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("pause-"+strconv.Itoa(i))))
		if err != nil {
			return "", err
		}
		if res.Status != primitive.SendOK {
			t.Fatalf("send %d: status %v", i, res.Status)
		}
		return res.MessageQueue.BrokerName, nil
	}
	seen := map[string]bool{}
	for i := range 40 {
		g, err := send(i)
		if err != nil {
			t.Fatalf("send %d before the pause: %v", i, err)
		}
		seen[g] = true
	}
	if !seen["broker-a"] || !seen["broker-b"] {
		t.Fatalf("before the pause, sends reached %v; want both groups", seen)
	}

	if err := m.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := true
	resume := func() {
		if paused {
			paused = false
			if err := m.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT: %v", err)
			}
		}
	}
	t.Cleanup(resume) // runs before the process is stopped
	began := time.Now()
	c.WaitRouteWithout(t, topic, "broker-a", 0)
	t.Logf("routes dropped the paused master after %v", time.Since(began).Round(time.Millisecond))
	for _, ns := range c.NSList() {
		ci := clusterInfo(t, ns)
		if bd := ci.BrokerAddrTable["broker-a"]; bd.BrokerAddrs[0] != "" || bd.BrokerAddrs[1] != c.Slave("a").BrokerAddr {
			t.Fatalf("cluster info at %s: broker-a %v, want its slave only", ns, bd.BrokerAddrs)
		}
	}

	// Traffic moves to broker-b: 20 sends in a row succeed there.
	streak, i, failed := 0, 1000, 0
	tests.WaitFor(t, 60*time.Second, func() bool {
		i++
		switch g, err := send(i); {
		case err != nil:
			failed++
			streak = 0
		case g != "broker-b":
			t.Fatalf("send %d reached %s while its master is dropped from the routes", i, g)
		default:
			streak++
		}
		return streak >= 20
	}, "20 sends in a row to broker-b")
	t.Logf("sends moved to broker-b %v after the pause (%d sends failed against the paused master)", time.Since(began).Round(time.Millisecond), failed)

	resume()
	for _, ns := range c.NSList() {
		tests.WaitFor(t, 30*time.Second, func() bool {
			return RouteAddrs(t, ns, topic, "broker-a")[0] == m.BrokerAddr
		}, "route of %s at %s with broker-a's master back", topic, ns)
	}
	// The resumed master serves: a send straight to its queue succeeds.
	p2 := tests.NewProducer(t, c.NS(), producer.WithRetry(0), producer.WithQueueSelector(producer.NewManualQueueSelector()))
	msg := primitive.NewMessage(topic, []byte("after-resume"))
	msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
	tests.WaitFor(t, 30*time.Second, func() bool {
		res, err := p2.SendSync(context.Background(), msg)
		return err == nil && res.Status == primitive.SendOK && res.MessageQueue.BrokerName == "broker-a"
	}, "send to broker-a after SIGCONT")
}

// TestMasterRestartBehindSlave: broker-a's master loses its store (stopped,
// store wiped, restarted empty) while its slave holds the replicated log. The
// master refuses the slave's offset, the slave detects the divergence, stops
// replicating, reports it on GET /ha, and refuses pulls rather than serve data
// its master no longer has (repair: see package ha/transport).
func TestMasterRestartBehindSlave(t *testing.T) {
	c := Start(t, Options{Mode: "async", Brokers: []string{"broker-a", "broker-a-s"}})
	m, s := c.Master("a"), c.Slave("a")
	waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_DIVERGE")
	c.CreateTopic(t, "a", topic, 4)
	p := tests.NewProducer(t, c.NS(), producer.WithRetry(2))
	for i := range 100 {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("d-"+strconv.Itoa(i))))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
	}
	ms, ok := haStatus(t, m)
	if !ok || ms.MaxPhyOffset == 0 {
		t.Fatalf("GET /ha on the master: %+v", ms)
	}
	tests.WaitFor(t, 30*time.Second, func() bool {
		ss, ok := haStatus(t, s)
		return ok && ss.MaxPhyOffset == ms.MaxPhyOffset
	}, "slave caught up to %d", ms.MaxPhyOffset)

	m.Stop()
	if err := os.RemoveAll(c.Stores["broker-a"]); err != nil {
		t.Fatal(err)
	}
	m.Restart()
	waitLog(t, m, "HA: refusing slave: its commit log diverged", 1, 30*time.Second)
	waitLog(t, s, "diverged from its master", 1, 30*time.Second)
	var diverged string
	tests.WaitFor(t, 30*time.Second, func() bool {
		st, ok := haStatus(t, s)
		diverged = st.Diverged
		return ok && diverged != ""
	}, "slave's GET /ha reports the divergence")
	t.Logf("slave: %s", diverged)

	// The slave refuses reads (PULL_MESSAGE) instead of serving its log.
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, s.BrokerAddr, remoting.NewRequest(remoting.PullMessage, map[string]string{
		"consumerGroup": "CID_DIVERGE", "topic": topic, "queueId": "0", "queueOffset": "0",
		"maxMsgNums": "32", "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
		"subscription": "*", "subVersion": "0", "expressionType": "TAG",
	}, nil))
	if err != nil {
		t.Fatalf("pull from the diverged slave: %v", err)
	}
	if resp.Code == remoting.Success || !strings.Contains(resp.Remark, "diverged") {
		t.Fatalf("pull from the diverged slave: code %d %q, want a refusal", resp.Code, resp.Remark)
	}
}
