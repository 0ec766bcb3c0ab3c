package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/tests"
)

// controllerCluster is 3 name servers with embedded controllers and the
// replicas of broker-a in controller mode.
type controllerCluster struct {
	namesrv     []*tests.Process
	nsArg       string
	controllers []string // peer addresses (controllerAddr)
	replicas    []*tests.Process
	stores      []string
	cli         *remoting.Client
}

func startControllerCluster(t *testing.T, replicas int, extra ...string) *controllerCluster {
	return startControllerClusterWith(t, replicas, nil, nil, extra...)
}

// startControllerClusterWith also sets nsExtra on the name servers, and
// perReplica(i, controllers) on replica i.
func startControllerClusterWith(t *testing.T, replicas int, nsExtra []string, perReplica func(int, []string) []string, extra ...string) *controllerCluster {
	t.Helper()
	cc := &controllerCluster{cli: remoting.NewClient(remoting.ClientConfig{})}
	t.Cleanup(func() { cc.cli.Close() })
	dir := filepath.Join(configsDir(), "2m-2s-sync")
	var peers, nsAddrs []string
	for i := range 3 {
		a := "127.0.0.1:" + strconv.Itoa(tests.FreePort(t))
		cc.controllers = append(cc.controllers, a)
		peers = append(peers, fmt.Sprintf("n%d-%s", i, a))
	}
	for i := range 3 {
		args := []string{"namesrv", "-c", filepath.Join(dir, "namesrv.properties"), "--log-format", "json",
			"--set", "listenPort=" + strconv.Itoa(tests.FreePort(t)),
			"--set", "enableControllerInNamesrv=true",
			"--set", "controllerDLegerPeers=" + strings.Join(peers, ";"),
			"--set", fmt.Sprintf("controllerDLegerSelfId=n%d", i),
			"--set", "controllerStorePath=" + t.TempDir(),
			"--set", "controller.controllerBrokerTimeout=2000"}
		for _, e := range nsExtra {
			args = append(args, "--set", e)
		}
		p := tests.StartProcess(t, args...)
		cc.namesrv = append(cc.namesrv, p)
		nsAddrs = append(nsAddrs, p.NameSrvAddr)
	}
	cc.nsArg = strings.Join(nsAddrs, ";")
	for i := range replicas {
		store := t.TempDir()
		args := append([]string{"broker", "-c", filepath.Join(dir, "broker-a.properties"), "-n", cc.nsArg, "--log-format", "json"},
			brokerTestSets(t, store)...)
		args = append(args,
			"--set", "enableControllerMode=true",
			"--set", "controllerAddr="+strings.Join(cc.controllers, ";"),
			"--set", "allAckInSyncStateSet=true",
			"--set", "syncBrokerMetadataPeriod=500",
			"--set", "checkSyncStateSetPeriod=300",
			"--set", "brokerHeartbeatInterval=200",
			"--set", "controllerHeartBeatTimeoutMills=2000",
			"--set", "haMaxTimeSlaveNotCatchup=3000",
		)
		for _, e := range extra {
			args = append(args, "--set", e)
		}
		if perReplica != nil {
			for _, e := range perReplica(i, cc.controllers) {
				args = append(args, "--set", e)
			}
		}
		cc.replicas = append(cc.replicas, tests.StartProcess(t, args...))
		cc.stores = append(cc.stores, store)
	}
	return cc
}

// createTopic creates a topic with 4 queues on master and waits until every
// name server routes it.
func (cc *controllerCluster) createTopic(t *testing.T, master *tests.Process, prefix string) string {
	return cc.createTopicQueues(t, master, prefix, 4)
}

func (cc *controllerCluster) createTopicQueues(t *testing.T, master *tests.Process, prefix string, queues int) string {
	t.Helper()
	topic := tests.UniqueName(prefix)
	tests.NewAdmin(t, cc.namesrv[0].NameSrvAddr).CreateTopic(master.BrokerAddr, topic, queues)
	for _, ns := range cc.namesrv {
		tests.WaitFor(t, 30*time.Second, func() bool { return RouteAddrs(t, ns.NameSrvAddr, topic, "broker-a")[0] != "" }, "route of %s", topic)
	}
	return topic
}

// startLoad runs the official Go client's 64 senders on topic (3 s send
// timeout) until the returned stop is called (or the test ends).
func (cc *controllerCluster) startLoad(t *testing.T, topic string) (*load, func()) {
	t.Helper()
	stop := make(chan struct{})
	l, wg := runLoad(t, cc.nsArg, topic, 64, stop, producer.WithSendMsgTimeout(3*time.Second))
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	t.Cleanup(stopLoad)
	return l, stopLoad
}

// syncState asks the controllers for broker-a's replicas.
func (cc *controllerCluster) syncState(t *testing.T) (body.ReplicasInfo, bool) {
	t.Helper()
	names, _ := body.Marshal([]string{"broker-a"})
	for _, a := range cc.controllers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := cc.cli.Invoke(ctx, a, remoting.NewRequest(remoting.ControllerGetSyncStateData, nil, names))
		cancel()
		if err != nil || resp.Code != remoting.Success {
			continue
		}
		var info body.BrokerReplicasInfo
		if body.Unmarshal(resp.Body, &info) != nil {
			continue
		}
		ri, ok := info.ReplicasInfoTable["broker-a"]
		return ri, ok
	}
	return body.ReplicasInfo{}, false
}

// waitState waits until broker-a has a master other than notMaster and a
// SyncStateSet of at least n replicas, and, with a topic, until every name server
// routes it to that master; it returns the master's process.
func (cc *controllerCluster) waitState(t *testing.T, n int, notMaster, topic string) (*tests.Process, body.ReplicasInfo) {
	t.Helper()
	var ri body.ReplicasInfo
	tests.WaitFor(t, 60*time.Second, func() bool {
		var ok bool
		ri, ok = cc.syncState(t)
		return ok && ri.MasterBrokerID != nil && ri.MasterAddress != notMaster && len(ri.InSyncReplicas) >= n
	}, "broker-a with a master (not %q) and %d replicas in sync", notMaster, n)
	// The master has registered with the name servers (the Go client
	// starts a consumer only from a route with a master).
	for _, ns := range cc.namesrv {
		if topic == "" {
			break
		}
		tests.WaitFor(t, 30*time.Second, func() bool { return RouteAddrs(t, ns.NameSrvAddr, topic, "broker-a")[0] == ri.MasterAddress },
			"name server %s routes %s to the master %s", ns.NameSrvAddr, topic, ri.MasterAddress)
	}
	for _, p := range cc.replicas {
		if p.BrokerAddr == ri.MasterAddress {
			return p, ri
		}
	}
	t.Fatalf("master %s is none of the replicas", ri.MasterAddress)
	return nil, ri
}

// firstWrite probes every replica but dead with a direct send every 20 ms
// and returns how long after since one accepted (a new master taking
// writes, whatever the clients' route caches).
func (cc *controllerCluster) firstWrite(t *testing.T, since time.Time, topic, dead string) time.Duration {
	t.Helper()
	var took time.Duration
	tests.WaitFor(t, 60*time.Second, func() bool {
		for _, p := range cc.replicas {
			if p.BrokerAddr == dead {
				continue
			}
			if code, err := rawSend(cc.cli, p.BrokerAddr, topic, "probe"); err == nil && code == remoting.Success {
				took = time.Since(since)
				return true
			}
		}
		return false
	}, "a replica accepting writes after the master died")
	return took
}

// consumeReport reads topic from the start with a new group until every body
// of want arrived, and returns how many deliveries were duplicates (the
// same message twice, or one body stored twice).
func consumeReport(t *testing.T, ns, topic string, want map[string]bool, timeout time.Duration) int {
	t.Helper()
	c := tests.StartPushConsumer(t, ns, topic, tests.ConsumerOptions{FromFirst: true})
	waitConsumed(t, c, want, timeout)
	bodies := map[string]int{}
	for _, id := range c.Received.IDs() {
		if m := c.Received.Get(id); m != nil {
			bodies[string(m.Body)]++
		}
	}
	dups := c.Received.Total() - c.Received.Distinct()
	for b, n := range bodies {
		if n > 1 && b != "probe" {
			dups += n - 1
		}
	}
	return dups
}

func okBodies(l *load) map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := make(map[string]bool, len(l.ok))
	for b := range l.ok {
		want[b] = true
	}
	return want
}

// TestControllerFailover is automatic failover with RocketMQ 5's controller
// (docs/controller.md): 3 name servers with embedded controllers, three
// replicas of broker-a with allAckInSyncStateSet, 64 senders of the official
// Go client. The master is SIGKILLed; the controllers elect a caught-up
// replica, which registers as master, and the producer carries on by itself
// (once its route refresh, every 30 s, sees the new master). Every message
// that got SEND_OK is then read by a new consumer group. The old master
// restarts and comes back as a slave.
func TestControllerFailover(t *testing.T) {
	cc := startControllerCluster(t, 3)
	master, ri := cc.waitState(t, 3, "", "")
	topic := cc.createTopic(t, master, "CTRL_FAILOVER")
	l, stopLoad := cc.startLoad(t, topic)
	tests.WaitFor(t, 60*time.Second, func() bool { return okCount(l) >= 3000 }, "3000 SEND_OK")
	master.Kill()
	killed := time.Now()
	at := okCount(l)
	took := cc.firstWrite(t, killed, topic, master.BrokerAddr)
	next, ri2 := cc.waitState(t, 1, master.BrokerAddr, topic)
	if ri2.MasterEpoch <= ri.MasterEpoch {
		t.Fatalf("master epoch %d after failover, was %d", ri2.MasterEpoch, ri.MasterEpoch)
	}
	if took > 3*time.Second {
		t.Errorf("a new master took writes %v after the kill; want within 3 s with these settings", took)
	}
	tests.WaitFor(t, 90*time.Second, func() bool { return okCount(l) >= at+1000 }, "1000 SEND_OK after the failover")
	resumed := time.Since(killed)
	stopLoad()
	want := okBodies(l)
	dups := consumeReport(t, cc.nsArg, topic, want, 90*time.Second)
	t.Logf("failover to %s: writes accepted %v after the kill, the Go client's load resumed within %v; %d SEND_OK, 0 lost, %d duplicates",
		next.BrokerAddr, took.Round(time.Millisecond), resumed.Round(time.Second), len(want), dups)

	// The old master comes back as a slave of the new one and catches up.
	master.Restart()
	waitLog(t, master, `"to":"slave"`, 1, 60*time.Second)
	cc.waitState(t, 3, master.BrokerAddr, topic)
}

// TestControllerTenFailovers: ten SIGKILLs of the master in a row under the
// Go client's load, each killed replica restarted and back in sync before
// the next; at the fifth, the controller leader's name server is killed too
// (the other two controllers carry on). Nothing acknowledged is lost.
func TestControllerTenFailovers(t *testing.T) {
	cc := startControllerCluster(t, 3)
	master, _ := cc.waitState(t, 3, "", "")
	topic := cc.createTopic(t, master, "CTRL_TEN")
	l, stopLoad := cc.startLoad(t, topic)
	tests.WaitFor(t, 60*time.Second, func() bool { return okCount(l) >= 1000 }, "1000 SEND_OK")
	var times []time.Duration
	for i := range 10 {
		var ctrl *tests.Process
		if i == 4 {
			ctrl = cc.leaderProcess(t)
		}
		master.Kill()
		if ctrl != nil {
			ctrl.Kill()
		}
		killed := time.Now()
		times = append(times, cc.firstWrite(t, killed, topic, master.BrokerAddr))
		next, _ := cc.waitState(t, 1, master.BrokerAddr, "")
		if ctrl != nil {
			ctrl.Restart()
		}
		before := strings.Count(master.Logs(), `"to":"slave"`)
		master.Restart()
		waitLog(t, master, `"to":"slave"`, before+1, 60*time.Second)
		cc.waitState(t, 3, "", "")
		master = next
	}
	tests.WaitFor(t, 60*time.Second, func() bool { return okCount(l) >= 2000 }, "SEND_OK after the failovers")
	stopLoad()
	want := okBodies(l)
	dups := consumeReport(t, cc.nsArg, topic, want, 120*time.Second)
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	t.Logf("ten failovers: kill to first accepted write min %v, median %v, max %v (all: %v); %d SEND_OK, 0 lost, %d duplicates",
		sorted[0].Round(time.Millisecond), sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond),
		times, len(want), dups)
}

// leaderProcess is the name server whose controller leads.
func (cc *controllerCluster) leaderProcess(t *testing.T) *tests.Process {
	t.Helper()
	var id string
	tests.WaitFor(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cc.cli.Invoke(ctx, cc.controllers[0], remoting.NewRequest(remoting.ControllerGetMetadataInfo, nil, nil))
		if err != nil || resp.Code != remoting.Success {
			return false
		}
		id = resp.Ext("controllerLeaderId")
		return id != ""
	}, "a controller leader")
	n, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil || n < 0 || n >= len(cc.namesrv) {
		t.Fatalf("leader id %q", id)
	}
	return cc.namesrv[n]
}

// rawSend sends one message to a broker address directly (SEND_MESSAGE_V1)
// and returns the response code.
func rawSend(cli *remoting.Client, addr, topic, body string) (int16, error) {
	ext := map[string]string{"producerGroup": "PG_RAW", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "0", "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0",
		"properties": "", "reconsumeTimes": "0", "unitMode": "false"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, addr, remoting.NewRequest(remoting.SendMessage, ext, []byte(body)))
	if err != nil {
		return -1, err
	}
	return resp.Code, nil
}

// TestControllerFencesStoppedMaster: a master that is alive but cut off
// (SIGSTOP) loses its lease; the controller elects the other replica; when
// the old master resumes (SIGCONT) it answers no send with SUCCESS - not
// even before its timers run - and becomes a slave of the new master.
// ASYNC_MASTER replicas, so an unfenced old master would answer alone.
func TestControllerFencesStoppedMaster(t *testing.T) {
	cc := startControllerCluster(t, 2, "allAckInSyncStateSet=false", "brokerRole=ASYNC_MASTER")
	master, _ := cc.waitState(t, 2, "", "")
	topic := cc.createTopicQueues(t, master, "CTRL_FENCE", 4)
	if code, err := rawSend(cc.cli, master.BrokerAddr, topic, "before"); err != nil || code != remoting.Success {
		t.Fatalf("send to the master: %d %v", code, err)
	}
	if err := master.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := func() { _ = master.Signal(syscall.SIGCONT) }
	defer cont()
	next, _ := cc.waitState(t, 1, master.BrokerAddr, topic)
	cont()
	// Right after it resumes, and until it has become a slave, the old
	// master refuses every send.
	deadline := time.Now().Add(30 * time.Second)
	refused := 0
	for {
		code, err := rawSend(cc.cli, master.BrokerAddr, topic, "to-old-master")
		if err == nil && code == remoting.Success {
			t.Fatal("the old master answered SUCCESS after another replica was elected")
		}
		refused++
		if strings.Contains(master.Logs(), `"to":"slave"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old master did not become a slave")
		}
	}
	if code, err := rawSend(cc.cli, next.BrokerAddr, topic, "to-new-master"); err != nil || code != remoting.Success {
		t.Fatalf("send to the new master: %d %v", code, err)
	}
	t.Logf("old master refused %d sends before it became a slave", refused)
	cc.waitState(t, 2, master.BrokerAddr, topic)

	// The operator's view: elections on the controllers' /metrics, the
	// old master's role on its /replicas.
	elections := 0.0
	for _, ns := range cc.namesrv {
		for _, l := range strings.Split(adminGet(t, ns, "/metrics/controller"), "\n") {
			if v, ok := strings.CutPrefix(l, "mqd_controller_elections_total "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				elections += f
			}
		}
	}
	if elections < 2 {
		t.Fatalf("controllers count %v elections, want at least 2", elections)
	}
	var rs struct {
		Role        string `json:"role"`
		MasterEpoch int32  `json:"masterEpoch"`
	}
	tests.WaitFor(t, 10*time.Second, func() bool {
		return json.Unmarshal([]byte(adminGet(t, master, "/replicas")), &rs) == nil && rs.Role == "slave" && rs.MasterEpoch == 2
	}, "the old master's /replicas shows a slave of epoch 2")
}

// adminGet fetches path from a process's admin endpoint.
func adminGet(t *testing.T, p *tests.Process, path string) string {
	t.Helper()
	m := adminAddrRe.FindAllStringSubmatch(p.Logs(), -1)
	if len(m) == 0 {
		t.Fatal("no admin endpoint in the logs")
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + m[len(m)-1][1] + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	return string(b)
}

// TestControllerTruncatesDivergedOldMaster: the old master wrote messages
// that no other replica has (its slave was down, the SyncStateSet had
// shrunk to the master); it is then cut off (SIGSTOP) and, with
// enableElectUncleanMaster, the stale replica is elected and writes on.
// When the old master comes back it must cut its log back to where the two
// histories part (the epoch file), then copy the new master's: both logs end
// byte-identical, and every message the new master acknowledged is read.
func TestControllerTruncatesDivergedOldMaster(t *testing.T) {
	cc := startControllerClusterWith(t, 2, []string{"enableElectUncleanMaster=true"}, nil, "allAckInSyncStateSet=false", "brokerRole=ASYNC_MASTER")
	master, _ := cc.waitState(t, 2, "", "")
	slave := cc.replicas[0]
	if slave == master {
		slave = cc.replicas[1]
	}
	topic := cc.createTopicQueues(t, master, "CTRL_DIVERGE", 1)
	want := map[string]bool{}
	send := func(addr, prefix string, n int) {
		t.Helper()
		for i := range n {
			b := fmt.Sprintf("%s-%d", prefix, i)
			if code, err := rawSend(cc.cli, addr, topic, b); err != nil || code != remoting.Success {
				t.Fatalf("send %s to %s: %d %v", b, addr, code, err)
			}
			if prefix != "old-master-alone" {
				want[b] = true
			}
		}
	}
	send(master.BrokerAddr, "shared", 50)
	tests.WaitFor(t, 10*time.Second, func() bool {
		return replicaMax(t, slave) == replicaMax(t, master)
	}, "the slave holds the shared messages")
	// SIGKILL, not SIGSTOP: a stopped slave would still find what the
	// master sent meanwhile in its socket buffer when it resumes.
	slave.Kill()
	send(master.BrokerAddr, "old-master-alone", 50)
	tests.WaitFor(t, 30*time.Second, func() bool {
		ri, ok := cc.syncState(t)
		return ok && len(ri.InSyncReplicas) == 1
	}, "the SyncStateSet shrinks to the master")
	if err := master.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = master.Signal(syscall.SIGCONT) }()
	slave.Restart()
	cc.waitState(t, 1, master.BrokerAddr, topic)
	send(slave.BrokerAddr, "new-master", 30)
	if err := master.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitLog(t, master, "cutting this replica's commit log", 1, 30*time.Second)
	cc.waitState(t, 2, master.BrokerAddr, topic)
	tests.WaitFor(t, 10*time.Second, func() bool { return replicaMax(t, master) == replicaMax(t, slave) }, "the old master caught up")
	consumeAll(t, cc.namesrv[0].NameSrvAddr, topic, want, 60*time.Second)
}

// replicaMax is a controller-mode broker's commit-log end, from GET /ha.
func replicaMax(t *testing.T, p *tests.Process) int64 {
	t.Helper()
	var st struct {
		MaxPhyOffset int64 `json:"maxPhyOffset"`
	}
	if err := json.Unmarshal([]byte(adminGet(t, p, "/ha")), &st); err != nil {
		t.Fatal(err)
	}
	return st.MaxPhyOffset
}

// TestControllerPartitionedMaster: the master is cut off from every
// controller (its controller connections stop forwarding, nothing is
// closed; controllers do not notify) but not from clients or its slaves.
// Its lease runs out and it refuses writes; the controllers elect a slave;
// clients move there; when the partition heals the old master becomes a
// slave. Every SEND_OK of the Go client's 64 senders is read afterwards.
func TestControllerPartitionedMaster(t *testing.T) {
	proxies := map[int][]*faultProxy{}
	cc := startControllerClusterWith(t, 3, []string{"notifyBrokerRoleChanged=false"}, func(i int, controllers []string) []string {
		var addrs []string
		for _, c := range controllers {
			p := startProxy(t, c)
			proxies[i] = append(proxies[i], p)
			addrs = append(addrs, p.Addr())
		}
		return []string{"controllerAddr=" + strings.Join(addrs, ";")}
	})
	master, _ := cc.waitState(t, 3, "", "")
	mi := slices.Index(cc.replicas, master)
	topic := cc.createTopic(t, master, "CTRL_PARTITION")
	l, stopLoad := cc.startLoad(t, topic)
	tests.WaitFor(t, 60*time.Second, func() bool { return okCount(l) >= 2000 }, "2000 SEND_OK")
	for _, p := range proxies[mi] {
		p.Cut()
	}
	cut := time.Now()
	next, _ := cc.waitState(t, 1, master.BrokerAddr, topic)
	elected := time.Since(cut)
	// Deposed, and still reachable by clients: it must not answer SUCCESS
	// (with allAckInSyncStateSet it cannot: the replicas it waits for
	// follow the new master; the sends time out).
	var probes sync.WaitGroup
	for range 8 {
		probes.Add(1)
		go func() {
			defer probes.Done()
			if code, err := rawSend(cc.cli, master.BrokerAddr, topic, "to-old-master"); err == nil && code == remoting.Success {
				t.Error("the partitioned old master answered SUCCESS after another replica was elected")
			}
		}()
	}
	probes.Wait()
	t.Logf("partition: %s elected %v after the cut", next.BrokerAddr, elected.Round(time.Millisecond))
	at := okCount(l)
	tests.WaitFor(t, 90*time.Second, func() bool { return okCount(l) >= at+1000 }, "1000 SEND_OK at the new master")
	before := strings.Count(master.Logs(), `"to":"slave"`)
	for _, p := range proxies[mi] {
		p.Heal()
	}
	waitLog(t, master, `"to":"slave"`, before+1, 60*time.Second)
	stopLoad()
	want := okBodies(l)
	dups := consumeReport(t, cc.nsArg, topic, want, 90*time.Second)
	t.Logf("partition: %d SEND_OK, 0 lost, %d duplicates", len(want), dups)
	cc.waitState(t, 3, "", "")
}

// TestControllerFailoverDefaultTimings: with RocketMQ's default timings
// (heartbeat every 1 s, controllerHeartBeatTimeoutMills 10 s) a new master
// takes writes within 10 s of the master's SIGKILL.
func TestControllerFailoverDefaultTimings(t *testing.T) {
	cc := startControllerClusterWith(t, 2, []string{"controller.controllerBrokerTimeout=10000"}, nil,
		"syncBrokerMetadataPeriod=5000", "checkSyncStateSetPeriod=5000", "brokerHeartbeatInterval=1000",
		"controllerHeartBeatTimeoutMills=10000", "haMaxTimeSlaveNotCatchup=15000")
	master, _ := cc.waitState(t, 2, "", "")
	topic := cc.createTopicQueues(t, master, "CTRL_DEFAULT", 4)
	if code, err := rawSend(cc.cli, master.BrokerAddr, topic, "before"); err != nil || code != remoting.Success {
		t.Fatalf("send to the master: %d %v", code, err)
	}
	master.Kill()
	took := cc.firstWrite(t, time.Now(), topic, master.BrokerAddr)
	t.Logf("default timings: a new master took writes %v after the kill", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("a new master took writes %v after the kill; want within 10 s", took)
	}
}
