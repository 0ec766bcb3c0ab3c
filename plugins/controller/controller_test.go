package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/porttest"
	"github.com/mqd/mqd/kernel/waittest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// cluster is n controllers in this process on free ports.
type cluster struct {
	ctrls []*Controller
	addrs []string
	cli   *remoting.Client
}

func freeAddr(t *testing.T) string { return porttest.Addr(t) }

func startCluster(t *testing.T, n int, brokerTimeout time.Duration) *cluster {
	t.Helper()
	cl := &cluster{cli: remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})}
	t.Cleanup(func() { cl.cli.Close() })
	var peers []string
	for i := range n {
		a := freeAddr(t)
		cl.addrs = append(cl.addrs, a)
		peers = append(peers, fmt.Sprintf("n%d-%s", i, a))
	}
	for i := range n {
		c := &Controller{log: zerolog.Nop(), cfg: Config{Group: "g1", Peers: strings.Join(peers, ";"), SelfID: fmt.Sprintf("n%d", i),
			StorePath: t.TempDir(), NotifyBrokerRoleChanged: true, BrokerTimeout: brokerTimeout.Milliseconds()}}
		if err := c.provision(); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cl.ctrls = append(cl.ctrls, c)
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	return cl
}

// leader waits for a leader and returns its index.
func (cl *cluster) leader(t *testing.T) int {
	t.Helper()
	idx := -1
	waittest.For(t, 15*time.Second, func() bool {
		for i, c := range cl.ctrls {
			if c.cons != nil && c.IsLeader() {
				idx = i
				return true
			}
		}
		return false
	}, "a controller leader")
	return idx
}

func (cl *cluster) call(t *testing.T, addr string, code int16, ext map[string]string, b []byte) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.cli.Invoke(ctx, addr, remoting.NewRequest(code, ext, b))
	if err != nil {
		t.Fatalf("request %d to %s: %v", code, addr, err)
	}
	return resp
}

func beatReq(name string, id int64, timeout time.Duration) map[string]string {
	return map[string]string{"clusterName": "c", "brokerName": name, "brokerId": strconv.FormatInt(id, 10),
		"brokerAddr": "127.0.0.1:1", "epoch": "0", "maxOffset": "0", "heartbeatTimeoutMills": strconv.FormatInt(timeout.Milliseconds(), 10)}
}

// TestElectionAndFailover: two replicas register through the leader; the
// first asks to be elected and is master; when its heartbeats stop, the
// other (caught up, in the SyncStateSet) is elected with a higher epoch, on
// whichever controller leads.
func TestElectionAndFailover(t *testing.T) {
	cl := startCluster(t, 3, 2*time.Second)
	ld := cl.addrs[cl.leader(t)]
	for id := int64(1); id <= 2; id++ {
		next := cl.call(t, ld, remoting.ControllerGetNextBrokerID, map[string]string{"clusterName": "c", "brokerName": "b"}, nil)
		if next.Code != 0 || next.Ext("nextBrokerId") != strconv.FormatInt(id, 10) {
			t.Fatalf("next broker id: %d %s %v", next.Code, next.Remark, next.ExtFields)
		}
		code := fmt.Sprintf("127.0.0.1:%d;%d", 10000+id, time.Now().UnixMilli())
		if r := cl.call(t, ld, remoting.ControllerApplyBrokerID, map[string]string{"clusterName": "c", "brokerName": "b",
			"appliedBrokerId": strconv.FormatInt(id, 10), "registerCheckCode": code}, nil); r.Code != 0 {
			t.Fatalf("apply id %d: %d %s", id, r.Code, r.Remark)
		}
		cl.call(t, ld, remoting.BrokerHeartbeat, beatReq("b", id, 2*time.Second), nil)
		if r := cl.call(t, ld, remoting.ControllerRegisterBroker, map[string]string{"clusterName": "c", "brokerName": "b",
			"brokerId": strconv.FormatInt(id, 10), "brokerAddress": fmt.Sprintf("127.0.0.1:%d", 10000+id)}, nil); r.Code != 0 {
			t.Fatalf("register %d: %d %s", id, r.Code, r.Remark)
		}
	}
	// A follower refuses writes.
	for i, a := range cl.addrs {
		if a != ld {
			if r := cl.call(t, a, remoting.ControllerGetReplicaInfo, map[string]string{"brokerName": "b"}, nil); r.Code != remoting.ControllerNotLeader {
				t.Fatalf("follower n%d answered %d", i, r.Code)
			}
			break
		}
	}
	r := cl.call(t, ld, remoting.ControllerElectMaster, map[string]string{"clusterName": "c", "brokerName": "b", "brokerId": "1"}, nil)
	if r.Code != 0 || r.Ext("masterBrokerId") != "1" || r.Ext("masterEpoch") != "1" {
		t.Fatalf("first election: %d %s %v", r.Code, r.Remark, r.ExtFields)
	}
	// The master adds broker 2 to the SyncStateSet.
	set, _ := body.Marshal(body.SyncStateSet{SyncStateSet: []int64{1, 2}, SyncStateSetEpoch: 1})
	if r := cl.call(t, ld, remoting.ControllerAlterSyncStateSet, map[string]string{"brokerName": "b", "masterBrokerId": "1", "masterEpoch": "1"}, set); r.Code != 0 {
		t.Fatalf("alter: %d %s", r.Code, r.Remark)
	}
	// A stale SyncStateSet epoch is fenced.
	if r := cl.call(t, ld, remoting.ControllerAlterSyncStateSet, map[string]string{"brokerName": "b", "masterBrokerId": "1", "masterEpoch": "1"}, func() []byte {
		b, _ := body.Marshal(body.SyncStateSet{SyncStateSet: []int64{1}, SyncStateSetEpoch: 1})
		return b
	}()); r.Code != remoting.ControllerFencedSyncStateSetEpoch {
		t.Fatalf("stale alter: %d %s", r.Code, r.Remark)
	}
	// Broker 2 keeps beating (to every controller); broker 1 stops.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for _, a := range cl.addrs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _ = cl.cli.Invoke(ctx, a, remoting.NewRequest(remoting.BrokerHeartbeat, beatReq("b", 2, 2*time.Second), nil))
				cancel()
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waittest.For(t, 15*time.Second, func() bool {
		for _, c := range cl.ctrls {
			if g := c.Group("b"); g != nil && g.MasterID == 2 && g.MasterEpoch == 2 {
				return true
			}
		}
		return false
	}, "broker 2 elected after broker 1 went silent")
	g := cl.ctrls[0].Group("b")
	waittest.For(t, 5*time.Second, func() bool { g = cl.ctrls[0].Group("b"); return g.MasterID == 2 }, "every controller applied the election")
	if len(g.SyncStateSet) != 1 || g.SyncStateSet[0] != 2 || g.SyncStateSetEpoch != 3 {
		t.Fatalf("after failover: %+v", g)
	}
	// The old master's stale view is fenced.
	if r := cl.call(t, cl.addrs[cl.leader(t)], remoting.ControllerAlterSyncStateSet, map[string]string{"brokerName": "b", "masterBrokerId": "1", "masterEpoch": "1"}, set); r.Code != remoting.ControllerInvalidMaster {
		t.Fatalf("old master's alter: %d %s", r.Code, r.Remark)
	}
	// GET_SYNC_STATE_DATA shows it.
	names, _ := body.Marshal([]string{"b"})
	r = cl.call(t, cl.addrs[cl.leader(t)], remoting.ControllerGetSyncStateData, nil, names)
	var info body.BrokerReplicasInfo
	if err := body.Unmarshal(r.Body, &info); err != nil || r.Code != 0 {
		t.Fatalf("sync state data: %d %v %s", r.Code, err, r.Body)
	}
	ri := info.ReplicasInfoTable["b"]
	if ri.MasterBrokerID == nil || *ri.MasterBrokerID != 2 || len(ri.InSyncReplicas) != 1 || len(ri.NotInSyncReplicas) != 1 || ri.NotInSyncReplicas[0].Alive {
		t.Fatalf("sync state data: %s", r.Body)
	}
}

// TestLeaderLossKeepsState: the leader stops; the other two elect a
// leader and still know the group.
func TestLeaderLossKeepsState(t *testing.T) {
	cl := startCluster(t, 3, 2*time.Second)
	i := cl.leader(t)
	ld := cl.addrs[i]
	code := "127.0.0.1:1;1"
	if r := cl.call(t, ld, remoting.ControllerApplyBrokerID, map[string]string{"clusterName": "c", "brokerName": "b",
		"appliedBrokerId": "1", "registerCheckCode": code}, nil); r.Code != 0 {
		t.Fatalf("apply: %d %s", r.Code, r.Remark)
	}
	if err := cl.ctrls[i].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rest := append(append([]*Controller{}, cl.ctrls[:i]...), cl.ctrls[i+1:]...)
	cl2 := &cluster{ctrls: rest, cli: cl.cli}
	j := cl2.leader(t)
	if g := rest[j].Group("b"); g == nil || g.Replicas[1] == nil {
		t.Fatalf("new leader lost the group: %+v", g)
	}
	// A retry with the same register code is idempotent; another code is refused.
	addr := rest[j].Addr()
	if r := cl.call(t, addr, remoting.ControllerApplyBrokerID, map[string]string{"clusterName": "c", "brokerName": "b", "appliedBrokerId": "1", "registerCheckCode": code}, nil); r.Code != 0 {
		t.Fatalf("retry: %d %s", r.Code, r.Remark)
	}
	if r := cl.call(t, addr, remoting.ControllerApplyBrokerID, map[string]string{"clusterName": "c", "brokerName": "b", "appliedBrokerId": "1", "registerCheckCode": "x;2"}, nil); r.Code != remoting.ControllerBrokerIDInvalid {
		t.Fatalf("stolen id: %d %s", r.Code, r.Remark)
	}
}
