package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/tests"
)

var adminAddrRe = regexp.MustCompile(`"addr":"([^"]+)","time":"[^"]+","message":"admin endpoint listening"`)

// haStatus reads GET /ha from the admin endpoint of p's current run.
func haStatus(t *testing.T, p *tests.Process) (st struct {
	Role         string `json:"brokerRole"`
	Mode         string `json:"mode"`
	MaxPhyOffset int64  `json:"maxPhyOffset"`
	Connected    bool   `json:"connected"`
	MasterHAAddr string `json:"masterHaAddr"`
	Diverged     string `json:"diverged"`
}, ok bool) {
	t.Helper()
	m := adminAddrRe.FindAllStringSubmatch(p.Logs(), -1)
	if len(m) == 0 {
		t.Fatal("no admin endpoint in the logs")
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + m[len(m)-1][1] + "/ha")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil
}

func okCount(l *load) int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.ok) }

// TestSlaveKillRestart: the slave of an ASYNC_MASTER is SIGKILLed under load;
// the master keeps acknowledging sends, and the restarted slave catches up to
// the master's whole commit log.
func TestSlaveKillRestart(t *testing.T) {
	c := Start(t, Options{Mode: "async", Brokers: []string{"broker-a", "broker-a-s"}})
	m, s := c.Master("a"), c.Slave("a")
	waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_SLAVEKILL")
	c.CreateTopic(t, "a", topic, 4)

	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 8, stop)
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= 200 }, "200 SEND_OK")
	s.Kill()
	at := okCount(l)
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+300 }, "300 SEND_OK with the slave down")
	s.Restart()
	waitLog(t, m, "HA: slave accepted", 2, 30*time.Second)
	at = okCount(l)
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+200 }, "200 SEND_OK after the restart")
	close(stop)
	wg.Wait()
	l.mu.Lock()
	failed := append([]string(nil), l.failed...)
	l.mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d failed sends (async master, slave down), first: %s", len(failed), failed[0])
	}
	// The slave holds everything the master stored.
	end := waitSlaveCaughtUp(t, m, s)
	t.Logf("%d SEND_OK, slave caught up to %d bytes", okCount(l), end)
}

// waitSlaveCaughtUp waits until the slave's log ends where the master's
// ended when called (the master no longer written), and returns that offset.
func waitSlaveCaughtUp(t *testing.T, m, s *tests.Process) int64 {
	t.Helper()
	ms, ok := haStatus(t, m)
	if !ok {
		t.Fatal("GET /ha on the master")
	}
	tests.WaitFor(t, 30*time.Second, func() bool {
		ss, ok := haStatus(t, s)
		return ok && ss.MaxPhyOffset == ms.MaxPhyOffset
	}, "slave caught up to %d", ms.MaxPhyOffset)
	return ms.MaxPhyOffset
}

// TestUpdateBrokerConfigRole: UPDATE_BROKER_CONFIG with brokerRole (what
// mqadmin updateBrokerConfig -k brokerRole sends) swaps the replication mode
// of a running master with a slave, and sends keep succeeding.
func TestUpdateBrokerConfigRole(t *testing.T) {
	c := Start(t, Options{Mode: "async", Brokers: []string{"broker-a", "broker-a-s"}})
	m := c.Master("a")
	waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_UPDCFG")
	c.CreateTopic(t, "a", topic, 4)
	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 4, stop)
	defer func() { close(stop); wg.Wait() }()

	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	for _, want := range []struct{ role, mode string }{{"SYNC_MASTER", "ha.sync"}, {"ASYNC_MASTER", "ha.async"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		resp, err := cl.Invoke(ctx, m.BrokerAddr, remoting.NewRequest(remoting.UpdateBrokerConfig, nil, []byte("brokerRole="+want.role+"\n")))
		cancel()
		if err != nil || resp.Code != remoting.Success {
			t.Fatalf("updateBrokerConfig brokerRole=%s: %v %+v", want.role, err, resp)
		}
		st, ok := haStatus(t, m)
		if !ok || st.Role != want.role || st.Mode != want.mode {
			t.Fatalf("after brokerRole=%s: /ha %+v", want.role, st)
		}
		at := okCount(l)
		tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+100 }, "100 SEND_OK as %s", want.role)
	}
	// A master cannot become a slave live: refused, mode unchanged.
	resp, err := cl.Invoke(context.Background(), m.BrokerAddr, remoting.NewRequest(remoting.UpdateBrokerConfig, nil, []byte("brokerRole=SLAVE\n")))
	if err != nil || resp.Code == remoting.Success {
		t.Fatalf("brokerRole=SLAVE: %v %+v", err, resp)
	}
	if st, _ := haStatus(t, m); st.Role != "ASYNC_MASTER" {
		t.Fatalf("after a refused swap: %+v", st)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) > 0 {
		t.Fatalf("%d failed sends, first: %s", len(l.failed), l.failed[0])
	}
}

// TestNamesrvKill: two of the three name servers are SIGKILLed one after the
// other; producers (one running, one started afterwards) and brokers carry on
// with the name server left.
func TestNamesrvKill(t *testing.T) {
	c := Start(t, Options{Mode: "async", Brokers: []string{"broker-a", "broker-b"}})
	topic := tests.UniqueName("HA_NSKILL")
	c.CreateTopic(t, "a", topic, 4)
	c.CreateTopic(t, "b", topic, 4)
	all := producer.WithNsResolver(primitive.NewPassthroughResolver(c.NSList()))
	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 4, stop, all)
	defer func() { close(stop); wg.Wait() }()
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= 100 }, "100 SEND_OK")
	for i := range 2 {
		c.Namesrv[i].Kill()
		at := okCount(l)
		tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+200 }, "200 SEND_OK after killing name server %d", i+1)
		// A client started now finds the route on a name server still up.
		p := tests.NewProducer(t, c.NS(), all, producer.WithRetry(2))
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("late")))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("new producer after killing %d name servers: %v %v", i+1, res, err)
		}
	}
	// The last name server still routes both groups (nothing dropped them).
	last := c.Namesrv[2].NameSrvAddr
	if len(RouteAddrs(t, last, topic, "broker-a")) == 0 || len(RouteAddrs(t, last, topic, "broker-b")) == 0 {
		t.Fatalf("route of %s at %s lost a broker", topic, last)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) > 0 {
		t.Fatalf("%d failed sends, first: %s", len(l.failed), l.failed[0])
	}
}

// TestSyncMasterNoSlave: a SYNC_MASTER with no slave connected stores the
// message but answers SLAVE_NOT_AVAILABLE, which the Go client reports as
// SendSlaveNotAvailable.
func TestSyncMasterNoSlave(t *testing.T) {
	c := Start(t, Options{Mode: "sync", Brokers: []string{"broker-a"}})
	topic := tests.UniqueName("HA_NOSLAVE")
	c.CreateTopic(t, "a", topic, 4)
	p := tests.NewProducer(t, c.NS(), producer.WithRetry(0))
	for i := range 3 {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("m")))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if res.Status != primitive.SendSlaveNotAvailable {
			t.Fatalf("send %d: status %v, want SendSlaveNotAvailable", i, res.Status)
		}
	}
}

// TestSlaveStartedBeforeMaster: a slave that registers before its master
// exists learns the master's addresses from a later registration answer
// without waiting out registerNameServerPeriod (60 s here): it asks again
// every second while it has no master.
func TestSlaveStartedBeforeMaster(t *testing.T) {
	c := Start(t, Options{Mode: "async", Namesrvs: 1, Brokers: []string{"broker-a-s", "broker-a"},
		Extra: []string{"registerNameServerPeriod=60000"}})
	waitLog(t, c.Master("a"), "HA: slave accepted", 1, 20*time.Second)
}
