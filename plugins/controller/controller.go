// Package controller is RocketMQ 5's controller as mqd module "app.controller":
// the component that decides, for every broker group in controller mode,
// which replica is master, which replicas are in sync (the SyncStateSet),
// and the master epoch that fences an old master. Controllers agree through
// hashicorp/raft; the leader watches broker heartbeats and elects a new
// master from the SyncStateSet when the old one's lease ends. It runs inside
// a name server (enableControllerInNamesrv=true, on the name server's port)
// or alone (mqd controller). Brokers reach it with RocketMQ 5's request codes
// (1001-1013, 904). docs/controller.md describes the design.
package controller

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/secure"
)

// ModuleID is the controller's module ID.
const ModuleID kernel.ModuleID = "app.controller"

func init() {
	kernel.RegisterModule(new(Controller))
	home, _ := os.UserHomeDir()
	k := func(name string, def any, doc string) config.Key {
		return config.Key{Path: "controller." + name, Role: "namesrv", RocketMQ: []string{name}, Default: def, Doc: doc}
	}
	config.Register(
		config.Key{Path: "namesrv.enableControllerInNamesrv", Role: "namesrv", RocketMQ: []string{"enableControllerInNamesrv"}, Default: false,
			Doc: "run a controller (automatic master failover) inside this name server, on its port"},
		k("controllerDLegerGroup", "group1", "controller raft group name (all controllers of one group share it)"),
		k("controllerDLegerPeers", "", "controllers of the group: id-host:port;... (the raft port of each, not its remoting port)"),
		k("controllerDLegerSelfId", "", "this controller's id among controllerDLegerPeers"),
		k("controllerStorePath", filepath.Join(home, "DledgerController"), "directory of the controller's raft log and snapshots; keep it"),
		k("enableElectUncleanMaster", false, "elect a master from outside the SyncStateSet when none in it is alive (may lose acknowledged messages)"),
		k("notifyBrokerRoleChanged", true, "tell a group's brokers at once when its master changes (they also poll every second)"),
		config.Key{Path: "controller.controllerBrokerTimeout", Default: int64(10000),
			Doc: "lease of a broker that sends no heartbeat timeout of its own, and the grace a new leader gives every broker, ms"},
	)
}

// Config are the controller.* keys.
type Config struct {
	Group                    string `koanf:"controllerDLegerGroup"`
	Peers                    string `koanf:"controllerDLegerPeers"`
	SelfID                   string `koanf:"controllerDLegerSelfId"`
	StorePath                string `koanf:"controllerStorePath"`
	EnableElectUncleanMaster bool   `koanf:"enableElectUncleanMaster"`
	NotifyBrokerRoleChanged  bool   `koanf:"notifyBrokerRoleChanged"`
	BrokerTimeout            int64  `koanf:"controllerBrokerTimeout"`
}

// Controller is the controller app.
type Controller struct {
	cfg   Config
	log   zerolog.Logger
	peers []Peer
	self  Peer

	fsm  *fsm
	cons *consensus
	live *liveness

	// mux splits the peer port between raft and the remoting server
	// that serves brokers and tools there (as RocketMQ's controller does);
	// an embedding name server serves the same handlers on its own port.
	mux      *mux
	server   *remoting.Server
	notifier *remoting.Client
	// notifierCfg carries the signing and TLS of role-change notices;
	// zero (plain, unsigned) for a controller built without configuration.
	notifierCfg remoting.ClientConfig
	admin       *kernel.AdminRegistry
	// limits of the peer port's remoting server: the name server's
	// maxConnections, maxConnectionsPerHost, maxInflightRequests.
	limits [3]int

	elections   atomic.Int64
	leaderReady atomic.Bool
	stop        chan struct{}
	wg          sync.WaitGroup
	notifyWG    sync.WaitGroup // notifications, waited after raft stops applying
	stopOnce    sync.Once
}

// MQDModule implements kernel.Module.
func (*Controller) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: ModuleID, New: func() kernel.Module { return new(Controller) }}
}

// Provision reads controller.* and checks the peers.
func (c *Controller) Provision(ctx kernel.Context) error {
	c.log = ctx.Logger
	c.admin = ctx.Admin()
	c.limits = [3]int{ctx.Config.Int("namesrv.maxConnections"), ctx.Config.Int("namesrv.maxConnectionsPerHost"), ctx.Config.Int("namesrv.maxInflightRequests")}
	if err := ctx.Config.Unmarshal("controller", &c.cfg); err != nil {
		return fmt.Errorf("controller config: %w", err)
	}
	// Role-change notices go to brokers' ports, which may check signatures
	// and speak TLS.
	cc, err := secure.ClientFromConfig(ctx.Config, remoting.ClientConfig{Logger: c.log})
	if err != nil {
		return err
	}
	c.notifierCfg = cc
	return c.provision()
}

func (c *Controller) provision() error {
	peers, err := ParsePeers(c.cfg.Peers)
	if err != nil {
		return err
	}
	c.peers = peers
	found := false
	for _, p := range peers {
		if p.ID == c.cfg.SelfID {
			c.self, found = p, true
		}
	}
	if !found {
		return fmt.Errorf("controllerDLegerSelfId %q is not among controllerDLegerPeers %q", c.cfg.SelfID, c.cfg.Peers)
	}
	if c.cfg.StorePath == "" {
		return errors.New("controllerStorePath must not be empty")
	}
	if c.cfg.BrokerTimeout <= 0 {
		return fmt.Errorf("controller.controllerBrokerTimeout must be positive, got %d", c.cfg.BrokerTimeout)
	}
	c.stop = make(chan struct{})
	return nil
}

// Addr is the remoting address of this controller: its peer address.
func (c *Controller) Addr() string { return c.self.Addr }

// Start listens on the peer port and joins the raft group.
func (c *Controller) Start() error {
	_, port, _ := net.SplitHostPort(c.self.Addr)
	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return fmt.Errorf("controller listen on %s (controllerDLegerPeers): %w", c.self.Addr, err)
	}
	adv, err := net.ResolveTCPAddr("tcp", c.self.Addr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("controller peer address %s: %w", c.self.Addr, err)
	}
	c.mux = newMux(ln)
	c.fsm = &fsm{st: newState(), applied: c.onApplied}
	c.live = newLiveness(c.brokerTimeout())
	cons, err := openConsensus(c.self, c.peers, c.cfg.StorePath, c.mux.raftLayer(adv), c.fsm, c.log)
	if err != nil {
		c.mux.close()
		return err
	}
	c.cons = cons
	nc := c.notifierCfg
	nc.Logger = c.log
	c.notifier = remoting.NewClient(nc)
	c.server = remoting.NewServer(remoting.ServerConfig{Logger: c.log,
		MaxConns: c.limits[0], MaxConnsPerHost: c.limits[1], MaxInflight: c.limits[2]})
	c.RegisterHandlers(c.server)
	rl := c.mux.remotingListener()
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		if err := c.server.Serve(rl); err != nil && !errors.Is(err, net.ErrClosed) {
			c.log.Error().Err(err).Msg("controller serve stopped")
		}
	}()
	go func() {
		defer c.wg.Done()
		c.run()
	}()
	c.registerAdmin()
	c.log.Info().Str("role", "controller").Str("id", c.self.ID).Str("addr", c.self.Addr).
		Str("group", c.cfg.Group).Int("peers", len(c.peers)).Msg("controller started")
	return nil
}

// Stop leaves the raft group (the others elect a leader among themselves).
func (c *Controller) Stop(ctx kernel.StopContext) error {
	var errs []error
	c.stopOnce.Do(func() {
		close(c.stop)
		if c.server != nil {
			errs = append(errs, c.server.Shutdown(ctx))
		}
		c.wg.Wait()
		if c.notifier != nil {
			c.notifier.Close()
		}
		if c.cons != nil {
			errs = append(errs, c.cons.close())
		}
		c.notifyWG.Wait()
		if c.mux != nil {
			c.mux.close()
		}
		c.log.Info().Str("role", "controller").Msg("stopped")
	})
	return errors.Join(errs...)
}

func (c *Controller) brokerTimeout() time.Duration {
	return time.Duration(c.cfg.BrokerTimeout) * time.Millisecond
}

// IsLeader reports whether this controller is the raft leader and has
// applied everything its predecessors committed (a barrier after winning),
// so that its state is current.
func (c *Controller) IsLeader() bool {
	return c.cons != nil && c.leaderReady.Load() && c.cons.raft.State() == raft.Leader
}

// Leader returns the leader's peer id and address ("" when unknown).
func (c *Controller) Leader() (id, addr string) {
	laddr, lid := c.cons.raft.LeaderWithID()
	return string(lid), string(laddr)
}

// Group returns a copy of a broker group's state, or nil.
func (c *Controller) Group(brokerName string) *Group {
	var g *Group
	c.fsm.read(func(s *state) { g = s.group(brokerName) })
	return g
}

// Elections counts the masters this controller elected as leader.
func (c *Controller) Elections() int64 { return c.elections.Load() }

// proposeTimeout bounds one raft apply.
const proposeTimeout = 5 * time.Second

// run follows leadership and, on the leader, scans for dead masters twice
// a second. A new leader keeps the heartbeats it received as a follower
// (brokers beat to every controller) and counts a broker it never heard
// from alive for one timeout (liveness.go).
func (c *Controller) run() {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	leaderCh := c.cons.raft.LeaderCh()
	for {
		select {
		case <-c.stop:
			return
		case isLeader := <-leaderCh:
			c.leaderReady.Store(false)
			if isLeader {
				c.live.lead(time.Now())
				if err := c.cons.raft.Barrier(proposeTimeout).Error(); err != nil {
					c.log.Warn().Err(err).Msg("controller won leadership but could not catch up; waiting for the next term")
					continue
				}
				c.leaderReady.Store(true)
				c.log.Info().Str("id", c.self.ID).Msg("controller became leader")
			} else {
				c.log.Info().Str("id", c.self.ID).Msg("controller is no longer leader")
			}
			continue
		case <-tick.C:
		}
		if !c.leaderReady.Load() && c.cons.raft.State() == raft.Leader {
			// The barrier after winning failed: try again rather than
			// stay a leader that answers nobody.
			if c.cons.raft.Barrier(proposeTimeout).Error() == nil {
				c.leaderReady.Store(true)
				c.log.Info().Str("id", c.self.ID).Msg("controller became leader")
			}
		}
		if c.IsLeader() {
			c.scan(time.Now())
		}
	}
}

// scan elects a master for every group whose master's lease ended
// (RocketMQ's controller trigger; it also elects when a master's channel
// closes, mqd waits for the lease: docs/controller.md, "Fencing"). A group that never had a master waits
// for a broker to ask (its first ELECT_MASTER after registering).
func (c *Controller) scan(now time.Time) {
	var groups []*Group
	c.fsm.read(func(s *state) {
		for _, g := range s.Groups {
			if g.MasterEpoch > 0 {
				groups = append(groups, g.clone())
			}
		}
	})
	for _, g := range groups {
		if g.MasterID != noMaster && !c.live.leaseEnded(g.BrokerName, g.MasterID, now) {
			continue
		}
		if g.MasterID == noMaster && !c.anyAlive(g, now) {
			continue // nothing to elect and nothing new to record
		}
		res := c.elect(g, noMaster, false, now)
		if res.Code != 0 && res.Code != codeMasterNotAvailable && res.Code != codeMasterStillExist {
			c.log.Warn().Int16("code", res.Code).Str("remark", res.Remark).Str("brokerName", g.BrokerName).Msg("election failed")
		}
	}
}

func (c *Controller) anyAlive(g *Group, now time.Time) bool {
	for id := range g.Replicas {
		if c.live.alive(g.BrokerName, id, now) {
			return true
		}
	}
	return false
}

// elect decides a master for g and commits it (RocketMQ's
// ReplicasInfoManager.electMaster with DefaultElectPolicy):
//   - the group's first election takes brokerID, the broker asking;
//   - otherwise the alive members of the SyncStateSet are the candidates
//     (all alive replicas with enableElectUncleanMaster when none of the
//     set lives); an alive old master stays unless designate names
//     another; designate takes brokerID if it is a candidate; else the
//     highest epoch, the largest log, the smallest election priority;
//   - with no candidate, a controller-triggered election (brokerID
//     noMaster) records that the group has no master (the epoch moves on,
//     fencing the old one) and answers CONTROLLER_MASTER_NOT_AVAILABLE.
func (c *Controller) elect(g *Group, brokerID int64, designate bool, now time.Time) result {
	next := noMaster
	switch {
	case g.MasterEpoch == 0 && brokerID > 0:
		if g.Replicas[brokerID] == nil {
			return fail(codeBrokerNeedRegister, "BrokerId: %d hasn't been registered in broker-set: %s", brokerID, g.BrokerName)
		}
		next = brokerID
	default:
		var prefer int64 = noMaster
		if designate {
			prefer = brokerID
		}
		id, ok := c.tryElect(g, g.SyncStateSet, prefer, now)
		if !ok && c.cfg.EnableElectUncleanMaster {
			id, ok = c.tryElect(g, ids(g.Replicas), prefer, now)
		}
		if ok {
			next = id
		}
	}
	if next != noMaster && next == g.MasterID {
		return result{Code: codeMasterStillExist, Group: g,
			Remark: fmt.Sprintf("The old master %d is still alive, not need to elect new master for broker %s", next, g.BrokerName)}
	}
	if next == noMaster && brokerID != noMaster {
		return fail(codeElectMasterFailed, "Failed to elect a new master")
	}
	if next == noMaster && g.MasterID == noMaster {
		return fail(codeMasterNotAvailable, "no master of %s is alive and none may be elected", g.BrokerName)
	}
	if designate && g.MasterID != noMaster && next != noMaster {
		// A manual switch away from a live master: stop renewing its
		// lease and wait until it has run out, so that the two never
		// both accept writes (at most ~0.7 x its heartbeat timeout).
		until := c.live.revoke(g.BrokerName, g.MasterID)
		defer c.live.unrevoke(g.BrokerName)
		if wait := time.Until(until); wait > 0 {
			c.log.Info().Str("brokerName", g.BrokerName).Int64("from", g.MasterID).Int64("to", next).Dur("wait", wait).
				Msg("manual switch: waiting for the master's lease to end")
			select {
			case <-time.After(wait):
			case <-c.stop:
				return fail(codeElectMasterFailed, "controller stopping")
			}
		}
	}
	unclean := next != noMaster && len(g.SyncStateSet) > 0 && !g.InSyncStateSet(next)
	res, err := c.cons.propose(&event{Kind: evElectMaster, BrokerName: g.BrokerName, NewMasterID: next,
		ExpectMasterEpoch: g.MasterEpoch, Unclean: unclean}, proposeTimeout)
	if err != nil {
		return fail(codeNotLeader, "election of %s not committed: %v", g.BrokerName, err)
	}
	if res.Code == 0 && next == noMaster {
		return result{Code: codeMasterNotAvailable, Group: res.Group, Remark: "Old master has down and failed to elect a new broker master"}
	}
	return res
}

// tryElect picks among the alive brokers of set (DefaultElectPolicy).
func (c *Controller) tryElect(g *Group, set []int64, prefer int64, now time.Time) (int64, bool) {
	var alive []int64
	for _, id := range set {
		if g.Replicas[id] != nil && c.live.alive(g.BrokerName, id, now) {
			alive = append(alive, id)
		}
	}
	if len(alive) == 0 {
		return 0, false
	}
	if g.MasterID != noMaster && slices.Contains(alive, g.MasterID) && (prefer == noMaster || prefer == g.MasterID) &&
		!c.live.leaseEnded(g.BrokerName, g.MasterID, now) {
		return g.MasterID, true
	}
	if prefer != noMaster {
		return prefer, slices.Contains(alive, prefer)
	}
	return c.live.choose(g.BrokerName, alive, now)
}

// onApplied logs elections on every controller and, on the leader, counts
// them and tells the group's brokers.
func (c *Controller) onApplied(e *event, res result) {
	if res.Code != 0 || res.Group == nil {
		return
	}
	g := res.Group
	switch e.Kind {
	case evElectMaster:
		ev := c.log.Info()
		if g.MasterID == noMaster {
			ev = c.log.Warn()
		}
		ev.Str("brokerName", g.BrokerName).Int64("masterId", g.MasterID).Str("masterAddr", g.MasterAddr()).
			Int32("masterEpoch", g.MasterEpoch).Ints64("syncStateSet", g.SyncStateSet).Msg("master elected")
		if c.IsLeader() {
			c.elections.Add(1)
			c.notifyGroup(g)
		}
	case evAlterSyncState:
		c.log.Info().Str("brokerName", g.BrokerName).Ints64("syncStateSet", g.SyncStateSet).
			Int32("syncStateSetEpoch", g.SyncStateSetEpoch).Msg("SyncStateSet changed")
	}
}

// notifyGroup sends NOTIFY_BROKER_ROLE_CHANGED to every replica of g, in the
// background: a broker that misses it learns at its next poll.
func (c *Controller) notifyGroup(g *Group) {
	if !c.cfg.NotifyBrokerRoleChanged || c.notifier == nil {
		return
	}
	ext, body := replicaInfo(g)
	for _, r := range g.Replicas {
		addr := r.Addr
		if addr == "" {
			continue
		}
		c.notifyWG.Add(1)
		go func() {
			defer c.notifyWG.Done()
			ctx, cancel := stopContext(c.stop, 3*time.Second)
			defer cancel()
			_, _ = c.notifier.Invoke(ctx, addr, remoting.NewRequestFields(remoting.NotifyBrokerRoleChanged, ext.Clone(0), body))
		}()
	}
}

func ids(m map[int64]*Replica) []int64 {
	out := make([]int64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

// dialable turns a wildcard listen address into 127.0.0.1:port.
func dialable(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	return ta.String()
}

// Status is the controller as GET /controller shows it.
type Status struct {
	ID        string   `json:"id"`
	Addr      string   `json:"addr"`
	Group     string   `json:"group"`
	Leader    bool     `json:"leader"`
	LeaderID  string   `json:"leaderId"`
	Peers     []Peer   `json:"peers"`
	Elections int64    `json:"elections"`
	Groups    []*Group `json:"brokerGroups"`
}

// Status reports the controller's view.
func (c *Controller) Status() Status {
	st := Status{ID: c.self.ID, Addr: c.self.Addr, Group: c.cfg.Group, Peers: c.peers, Elections: c.Elections()}
	if c.cons == nil {
		return st
	}
	st.Leader = c.IsLeader()
	st.LeaderID, _ = c.Leader()
	c.fsm.read(func(s *state) {
		for _, g := range s.Groups {
			st.Groups = append(st.Groups, g.clone())
		}
	})
	sort.Slice(st.Groups, func(i, j int) bool { return st.Groups[i].BrokerName < st.Groups[j].BrokerName })
	return st
}

var (
	descLeader    = prometheus.NewDesc("mqd_controller_leader", "1 while this controller is the raft leader", nil, nil)
	descElections = prometheus.NewDesc("mqd_controller_elections_total", "Masters this controller elected as leader", nil, nil)
	descEpoch     = prometheus.NewDesc("mqd_controller_master_epoch", "Master epoch of a broker group", []string{"brokerName"}, nil)
	descSetSize   = prometheus.NewDesc("mqd_controller_syncstateset_size", "Replicas in a broker group's SyncStateSet", []string{"brokerName"}, nil)
	descHasMaster = prometheus.NewDesc("mqd_controller_has_master", "1 while a broker group has a master", []string{"brokerName"}, nil)
)

// collector exports the controller's state to Prometheus.
type collector struct{ c *Controller }

func (k collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descElections, descEpoch, descSetSize, descHasMaster} {
		ch <- d
	}
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	st := k.c.Status()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, b2f(st.Leader))
	ch <- prometheus.MustNewConstMetric(descElections, prometheus.CounterValue, float64(st.Elections))
	for _, g := range st.Groups {
		ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(g.MasterEpoch), g.BrokerName)
		ch <- prometheus.MustNewConstMetric(descSetSize, prometheus.GaugeValue, float64(len(g.SyncStateSet)), g.BrokerName)
		ch <- prometheus.MustNewConstMetric(descHasMaster, prometheus.GaugeValue, b2f(g.MasterID != noMaster), g.BrokerName)
	}
}

// registerAdmin adds GET /controller and the controller's Prometheus
// metrics at /metrics/controller (/metrics belongs to a broker in the same
// process).
func (c *Controller) registerAdmin() {
	if c.admin == nil {
		return
	}
	c.admin.Handle(kernel.AdminHandler{Path: "/controller", Methods: []string{"GET"}, Doc: "controller: leader, peers, elections, broker groups (master, epoch, SyncStateSet)",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { kernel.WriteJSON(w, http.StatusOK, c.Status()) })})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{c})
	c.admin.Handle(kernel.AdminHandler{Path: "/metrics/controller", Methods: []string{"GET"}, Doc: "controller Prometheus metrics",
		Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
}
