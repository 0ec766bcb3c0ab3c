package controller

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// The controller's requests, as RocketMQ 5.3.3 defines them (header fields
// are the Java field names). Every request but GET_METADATA_INFO and
// BROKER_HEARTBEAT needs the leader; others answer CONTROLLER_NOT_LEADER.

// RegisterHandlers serves the controller's request codes on srv.
func (c *Controller) RegisterHandlers(srv *remoting.Server) {
	srv.Handle(remoting.BrokerHeartbeat, c.handleHeartbeat)
	srv.Handle(remoting.ControllerGetMetadataInfo, c.handleMetadata)
	srv.Handle(remoting.ControllerGetNextBrokerID, c.leaderOnly(c.handleNextBrokerID))
	srv.Handle(remoting.ControllerApplyBrokerID, c.leaderOnly(c.handleApplyBrokerID))
	srv.Handle(remoting.ControllerRegisterBroker, c.leaderOnly(c.handleRegister))
	srv.Handle(remoting.ControllerGetReplicaInfo, c.leaderOnly(c.handleReplicaInfo))
	srv.Handle(remoting.ControllerElectMaster, c.leaderOnly(c.handleElect))
	srv.Handle(remoting.ControllerAlterSyncStateSet, c.leaderOnly(c.handleAlter))
	srv.Handle(remoting.ControllerGetSyncStateData, c.leaderOnly(c.handleSyncStateData))
}

func (c *Controller) leaderOnly(h remoting.Handler) remoting.Handler {
	return func(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
		if c.cons == nil || !c.IsLeader() {
			resp := remoting.NewResponse(remoting.ControllerNotLeader, "The controller is not in leader state")
			if _, addr := c.Leader(); addr != "" {
				resp.ExtFields = remoting.Fields{{Key: "controllerLeaderAddress", Value: addr}}
			}
			return resp
		}
		return h(conn, req)
	}
}

func respond(res result) *remoting.Command {
	return remoting.NewResponse(res.Code, res.Remark)
}

func extInt64(req *remoting.Command, key string, def int64) int64 {
	v := strings.TrimSpace(req.Ext(key))
	if v == "" || v == "null" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}

// handleHeartbeat records a broker's heartbeat (on every controller, as
// brokers beat to all). mqd answers isLeader, so that a master renews its
// lease only with the controller that could replace it.
func (c *Controller) handleHeartbeat(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	id := extInt64(req, "brokerId", -1)
	name := req.Ext("brokerName")
	if id < 0 || name == "" {
		return remoting.NewResponse(remoting.ControllerInvalidRequest, "Heart beat with empty brokerId")
	}
	leader := c.IsLeader()
	master, epoch := int64(noMaster), int32(0)
	if g := c.Group(name); g != nil {
		master, epoch = g.MasterID, g.MasterEpoch
	}
	beatEpoch := int32(extInt64(req, "epoch", -1))
	confirmed := c.live.record(name, id, beat{
		at:        time.Now(),
		timeout:   time.Duration(extInt64(req, "heartbeatTimeoutMills", 0)) * time.Millisecond,
		addr:      req.Ext("brokerAddr"),
		epoch:     beatEpoch,
		maxOffset: extInt64(req, "maxOffset", -1),
		priority:  extInt64(req, "electionPriority", 1<<31-1),
	}, leader && master == id && beatEpoch == epoch) // the master of this very epoch
	resp := remoting.NewResponse(remoting.Success, "Heart beat success")
	// mqd additions: leaseConfirmed renews a master's lease
	// (docs/controller.md, "Fencing"); the group's master and epoch let a
	// broker notice a change before its next poll.
	resp.ExtFields = remoting.Fields{{Key: "isLeader", Value: strconv.FormatBool(leader)}, {Key: "leaseConfirmed", Value: strconv.FormatBool(confirmed)},
		{Key: "masterBrokerId", Value: strconv.FormatInt(master, 10)}, {Key: "masterEpoch", Value: strconv.Itoa(int(epoch))}}
	return resp
}

// handleMetadata answers GET_METADATA_INFO on any controller.
func (c *Controller) handleMetadata(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	id, addr := "", ""
	if c.cons != nil {
		id, addr = c.Leader()
	}
	var peers strings.Builder
	for _, p := range c.peers {
		fmt.Fprintf(&peers, "%s:%s;", p.ID, p.Addr)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.ExtFields = remoting.Fields{
		{Key: "group", Value: c.cfg.Group}, {Key: "controllerLeaderId", Value: id}, {Key: "controllerLeaderAddress", Value: addr},
		{Key: "isLeader", Value: strconv.FormatBool(c.IsLeader())}, {Key: "peers", Value: peers.String()},
	}
	return resp
}

func (c *Controller) handleNextBrokerID(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	next := int64(1)
	if g := c.Group(req.Ext("brokerName")); g != nil {
		next = g.NextBrokerID
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.ExtFields = remoting.Fields{{Key: "clusterName", Value: req.Ext("clusterName")}, {Key: "brokerName", Value: req.Ext("brokerName")},
		{Key: "nextBrokerId", Value: strconv.FormatInt(next, 10)}}
	return resp
}

func (c *Controller) handleApplyBrokerID(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	code := req.Ext("registerCheckCode")
	addr, _, _ := strings.Cut(code, ";")
	res, err := c.cons.propose(&event{Kind: evApplyBrokerID, Cluster: req.Ext("clusterName"), BrokerName: req.Ext("brokerName"),
		BrokerID: extInt64(req, "appliedBrokerId", -1), Addr: addr, RegisterCode: code}, proposeTimeout)
	if err != nil {
		return remoting.NewResponse(remoting.ControllerNotLeader, err.Error())
	}
	resp := respond(res)
	resp.ExtFields = remoting.Fields{{Key: "clusterName", Value: req.Ext("clusterName")}, {Key: "brokerName", Value: req.Ext("brokerName")}}
	return resp
}

// handleRegister records a broker's address (REGISTER_BROKER) and answers
// its group's master, if one is alive, and SyncStateSet. mqd brokers also
// send haServerAddr, which GET_REPLICA_INFO hands to slaves.
func (c *Controller) handleRegister(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	id := extInt64(req, "brokerId", -1)
	name := req.Ext("brokerName")
	g := c.Group(name)
	if g == nil {
		return remoting.NewResponse(remoting.ControllerBrokerNeedToBeRegistered, fmt.Sprintf("Broker-set: %s hasn't been registered in controller", name))
	}
	r := g.Replicas[id]
	if r == nil {
		return remoting.NewResponse(remoting.ControllerBrokerNeedToBeRegistered, fmt.Sprintf("BrokerId: %d hasn't been registered in broker-set: %s", id, name))
	}
	addr, ha := req.Ext("brokerAddress"), req.Ext("haServerAddr")
	if r.Addr != addr || (ha != "" && r.HAAddr != ha) {
		res, err := c.cons.propose(&event{Kind: evRegister, BrokerName: name, BrokerID: id, Addr: addr, HAAddr: ha}, proposeTimeout)
		if err != nil {
			return remoting.NewResponse(remoting.ControllerNotLeader, err.Error())
		}
		if res.Code != 0 {
			return respond(res)
		}
		g = res.Group
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.ExtFields = remoting.Fields{{Key: "clusterName", Value: g.Cluster}, {Key: "brokerName", Value: name}}
	if g.MasterID != noMaster && c.live.alive(name, g.MasterID, time.Now()) {
		addMaster(&resp.ExtFields, g)
		resp.ExtFields.Set("syncStateSetEpoch", strconv.Itoa(int(g.SyncStateSetEpoch)))
	}
	resp.Body, _ = body.Marshal(body.SyncStateSet{SyncStateSet: g.SyncStateSet, SyncStateSetEpoch: g.SyncStateSetEpoch})
	return resp
}

func addMaster(ext *remoting.Fields, g *Group) {
	ext.Set("masterBrokerId", strconv.FormatInt(g.MasterID, 10))
	ext.Set("masterAddress", g.MasterAddr())
	ext.Set("masterEpoch", strconv.Itoa(int(g.MasterEpoch)))
	if r := g.Replicas[g.MasterID]; r != nil && r.HAAddr != "" {
		ext.Set("masterHaAddress", r.HAAddr)
	}
}

// replicaInfo is a group's master and SyncStateSet as GET_REPLICA_INFO and
// NOTIFY_BROKER_ROLE_CHANGED carry them.
func replicaInfo(g *Group) (remoting.Fields, []byte) {
	ext := remoting.Fields{{Key: "masterEpoch", Value: strconv.Itoa(int(g.MasterEpoch))}, {Key: "syncStateSetEpoch", Value: strconv.Itoa(int(g.SyncStateSetEpoch))}}
	if g.MasterID != noMaster {
		addMaster(&ext, g)
	}
	b, _ := body.Marshal(body.SyncStateSet{SyncStateSet: g.SyncStateSet, SyncStateSetEpoch: g.SyncStateSetEpoch})
	return ext, b
}

func (c *Controller) handleReplicaInfo(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	g := c.Group(req.Ext("brokerName"))
	if g == nil {
		return remoting.NewResponse(remoting.ControllerBrokerMetadataNotExist, "Broker metadata is not existed")
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.ExtFields, resp.Body = replicaInfo(g)
	return resp
}

// handleElect serves ELECT_MASTER: a broker without a master asking
// (designateElect=false), or an operator's electMaster (designateElect=true).
func (c *Controller) handleElect(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	name := req.Ext("brokerName")
	g := c.Group(name)
	if g == nil {
		return remoting.NewResponse(remoting.ControllerBrokerNeedToBeRegistered, "Broker hasn't been registered")
	}
	designate := strings.EqualFold(req.Ext("designateElect"), "true")
	res := c.elect(g, extInt64(req, "brokerId", noMaster), designate, time.Now())
	resp := remoting.NewResponse(res.Code, res.Remark)
	if res.Group == nil {
		return resp
	}
	g = res.Group
	resp.ExtFields = remoting.Fields{{Key: "masterEpoch", Value: strconv.Itoa(int(g.MasterEpoch))}, {Key: "syncStateSetEpoch", Value: strconv.Itoa(int(g.SyncStateSetEpoch))}}
	if g.MasterID != noMaster {
		resp.ExtFields.Set("masterBrokerId", strconv.FormatInt(g.MasterID, 10))
		resp.ExtFields.Set("masterAddress", g.MasterAddr())
	}
	out := body.ElectMasterResponseBody{SyncStateSet: g.SyncStateSet}
	if res.Code == 0 {
		mg := &body.BrokerMemberGroup{BrokerAddrs: map[int64]string{}, BrokerName: g.BrokerName, Cluster: g.Cluster}
		for id, r := range g.Replicas {
			mg.BrokerAddrs[id] = r.Addr
		}
		out.BrokerMemberGroup = mg
	}
	resp.Body, _ = body.Marshal(out)
	return resp
}

// handleAlter serves ALTER_SYNC_STATE_SET from a group's master. The
// members must be alive here; the epochs and the master are checked again
// when the change is applied, so a stale master cannot slip through.
func (c *Controller) handleAlter(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	var set body.SyncStateSet
	if err := body.Unmarshal(req.Body, &set); err != nil {
		return remoting.NewResponse(remoting.ControllerInvalidRequest, "bad SyncStateSet body: "+err.Error())
	}
	name := req.Ext("brokerName")
	g := c.Group(name)
	if g == nil {
		return remoting.NewResponse(remoting.ControllerAlterSyncStateSetFailed, "Broker metadata is not existed")
	}
	if sameSet(g.SyncStateSet, set.SyncStateSet) {
		return remoting.NewResponse(remoting.ControllerAlterSyncStateSetFailed, "The newSyncStateSet is equal with oldSyncStateSet, no needed to update syncStateSet")
	}
	masterID, masterEpoch := extInt64(req, "masterBrokerId", noMaster), int32(extInt64(req, "masterEpoch", -1))
	switch {
	case g.MasterID == noMaster || g.MasterID != masterID:
		return remoting.NewResponse(remoting.ControllerInvalidMaster, fmt.Sprintf("Rejecting alter syncStateSet request because the current leader is:{%d}, not {%d}", g.MasterID, masterID))
	case g.MasterEpoch != masterEpoch:
		return remoting.NewResponse(remoting.ControllerFencedMasterEpoch, fmt.Sprintf("Rejecting alter syncStateSet request because the current master epoch is:{%d}, not {%d}", g.MasterEpoch, masterEpoch))
	}
	if g.SyncStateSetEpoch != set.SyncStateSetEpoch {
		return remoting.NewResponse(remoting.ControllerFencedSyncStateSetEpoch, fmt.Sprintf("Rejecting alter syncStateSet request because the current syncStateSet epoch is:{%d}, not {%d}", g.SyncStateSetEpoch, set.SyncStateSetEpoch))
	}
	if !slices.Contains(set.SyncStateSet, masterID) {
		return remoting.NewResponse(remoting.ControllerAlterSyncStateSetFailed, fmt.Sprintf("Rejecting alter syncStateSet request because the newSyncStateSet don't contains origin leader {%d}", masterID))
	}
	now := time.Now()
	for _, id := range set.SyncStateSet {
		if g.Replicas[id] != nil && !c.live.alive(name, id, now) {
			return remoting.NewResponse(remoting.ControllerBrokerNotAlive, fmt.Sprintf("Rejecting alter syncStateSet request because the replicas {%d} don't alive", id))
		}
	}
	res, err := c.cons.propose(&event{Kind: evAlterSyncState, BrokerName: name, MasterID: masterID,
		MasterEpoch: masterEpoch, SyncStateSetEpoch: set.SyncStateSetEpoch, NewSyncStateSet: set.SyncStateSet}, proposeTimeout)
	if err != nil {
		return remoting.NewResponse(remoting.ControllerNotLeader, err.Error())
	}
	resp := respond(res)
	resp.ExtFields = remoting.Fields{{Key: "newSyncStateSetEpoch", Value: "0"}}
	if res.Code == 0 {
		resp.ExtFields.Set("newSyncStateSetEpoch", strconv.Itoa(int(res.Group.SyncStateSetEpoch)))
		resp.Body, _ = body.Marshal(body.SyncStateSet{SyncStateSet: res.Group.SyncStateSet, SyncStateSetEpoch: res.Group.SyncStateSetEpoch})
	}
	return resp
}

func sameSet(a, b []int64) bool {
	a = append([]int64(nil), a...)
	b = append([]int64(nil), b...)
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// handleSyncStateData answers GET_SYNC_STATE_DATA for the broker names in
// the body (mqadmin getSyncStateSet).
func (c *Controller) handleSyncStateData(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	var names []string
	if len(req.Body) == 0 {
		return remoting.NewResponse(remoting.SystemError, "not set any response code")
	}
	if err := body.Unmarshal(req.Body, &names); err != nil {
		return remoting.NewResponse(remoting.ControllerInvalidRequest, "body is not a JSON list of broker names: "+err.Error())
	}
	out := body.BrokerReplicasInfo{ReplicasInfoTable: map[string]body.ReplicasInfo{}}
	now := time.Now()
	for _, name := range names {
		g := c.Group(name)
		if g == nil {
			continue
		}
		info := body.ReplicasInfo{MasterEpoch: g.MasterEpoch, SyncStateSetEpoch: g.SyncStateSetEpoch,
			InSyncReplicas: []body.ReplicaIdentity{}, NotInSyncReplicas: []body.ReplicaIdentity{}}
		if g.MasterID != noMaster {
			id := g.MasterID
			info.MasterBrokerID = &id
			info.MasterAddress = g.MasterAddr()
		}
		for _, id := range sortedIDs(g.Replicas) {
			r := g.Replicas[id]
			ri := body.ReplicaIdentity{Alive: c.live.alive(name, id, now), BrokerAddress: r.Addr, BrokerID: id, BrokerName: name}
			if g.InSyncStateSet(id) {
				info.InSyncReplicas = append(info.InSyncReplicas, ri)
			} else {
				info.NotInSyncReplicas = append(info.NotInSyncReplicas, ri)
			}
		}
		out.ReplicasInfoTable[name] = info
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body, _ = body.Marshal(out)
	return resp
}

func sortedIDs(m map[int64]*Replica) []int64 {
	out := ids(m)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// stopContext is a context that ends after d or when stop closes.
func stopContext(stop <-chan struct{}, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
