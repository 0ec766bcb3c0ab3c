package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/fsutil"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/protocols/remoting/secure"
	"github.com/mqd/mqd/storage"
)

// Controller mode (enableControllerMode=true; docs/controller.md): every
// replica of a broker group starts the same way and a controller
// (plugins/controller) decides which one is master. The app.broker module of
// the process is then a supervisor, replicaManager: it gets a broker id from
// the controller, registers, beats, polls its group's state, and runs the
// actual broker — this package's Broker with the role the controller gave —
// in a child kernel that it rebuilds when the role changes. A rebuild is the
// same start a manually promoted slave or a restarted master goes through
// (adopt.go, the store's recovery), so a role change reuses those paths
// instead of a second, in-place one. On top, per role:
//
//   - master: appends its master epoch to the epoch file, maintains the
//     SyncStateSet (shrink: a slave not caught up for haMaxTimeSlaveNotCatchup;
//     expand: a slave caught up twice in a row) through the controller, hands
//     the confirmed set to ha.insync (allAckInSyncStateSet), and fences
//     itself - refuses writes - when the controller leader has not confirmed a
//     heartbeat for half of controllerHeartBeatTimeoutMills, since the
//     controller may then elect another master;
//   - slave: before following, cuts its commit log where it stops agreeing
//     with the master's epochs (what it wrote as an old master and no replica
//     confirmed), then copies the master's epochs as it follows.

func init() {
	k := func(name string, def any, doc string) config.Key {
		return config.Key{Path: "broker." + name, Role: "broker", RocketMQ: []string{name}, Default: def, Doc: doc}
	}
	config.Register(
		k("enableControllerMode", false, "controller mode: a controller (controllerAddr) assigns master and slaves and fails over automatically"),
		k("controllerAddr", "", "controller mode: controller addresses host:port;host:port (their controllerDLegerPeers addresses, or embedding name servers)"),
		k("syncBrokerMetadataPeriod", int64(5000), "controller mode: period of asking the controller for this group's master and SyncStateSet, ms"),
		k("checkSyncStateSetPeriod", int64(5000), "controller mode, master: period of checking which slaves are in sync, ms"),
		k("brokerHeartbeatInterval", int64(1000), "controller mode: heartbeat period to the controllers, ms"),
		k("controllerHeartBeatTimeoutMills", int64(10000), "controller mode: the lease a heartbeat grants; a master unconfirmed for half of it stops accepting writes, ms"),
		k("brokerElectionPriority", int64(math.MaxInt32), "controller mode: among equally caught-up replicas, the smaller value is elected"),
		k("haMaxTimeSlaveNotCatchup", int64(15000), "controller mode: a slave not caught up this long leaves the SyncStateSet, ms"),
		k("allAckInSyncStateSet", false, "controller mode: a send is answered once every replica of the SyncStateSet has it"),
		k("storePathEpochFile", "", "controller mode: the epoch file (empty: <storePathRootDir>/epochFileCheckpoint)"),
		k("storePathBrokerIdentity", "", "controller mode: the file holding the broker id the controller assigned (empty: <storePathRootDir>/brokerIdentity)"),
	)
}

// replicaConfig are the controller-mode keys.
type replicaConfig struct {
	ControllerAddr      string `koanf:"controllerAddr"`
	SyncMetadataPeriod  int64  `koanf:"syncBrokerMetadataPeriod"`
	CheckSyncSetPeriod  int64  `koanf:"checkSyncStateSetPeriod"`
	HeartbeatInterval   int64  `koanf:"brokerHeartbeatInterval"`
	HeartbeatTimeout    int64  `koanf:"controllerHeartBeatTimeoutMills"`
	ElectionPriority    int64  `koanf:"brokerElectionPriority"`
	MaxNotCatchup       int64  `koanf:"haMaxTimeSlaveNotCatchup"`
	AllAck              bool   `koanf:"allAckInSyncStateSet"`
	EpochFile           string `koanf:"storePathEpochFile"`
	BrokerIdentityFile  string `koanf:"storePathBrokerIdentity"`
	EnableControllerMod bool   `koanf:"enableControllerMode"`
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// Roles of a replica in controller mode.
const (
	replicaNone   = ""
	replicaMaster = "master"
	replicaSlave  = "slave"
)

// replicaManager is the supervisor of controller mode.
type replicaManager struct {
	kctx        kernel.Context
	cfgBase     *config.Config
	log         zerolog.Logger
	cfg         replicaConfig
	cluster     string
	brokerName  string
	addr        string // advertised remoting address
	haAddr      string // advertised HA address
	storeRoot   string
	controllers []string
	client      *remoting.Client // to controllers
	peerClient  *remoting.Client // to other brokers of the group
	epochs      *epochFile
	brokerID    atomic.Int64 // 0 until the controller assigned one
	// base is the origin of leaseAt: monotonic time, so that a step of
	// the wall clock cannot stretch a lease.
	base time.Time

	// leaseAt is when the last heartbeat the controller leader confirmed
	// was sent (nanoseconds since base): the master's lease runs from there.
	leaseAt atomic.Int64
	// leaseLost only tracks the lease for its log lines.
	leaseLost atomic.Bool
	// fenced is an explicit fence (a newer epoch seen, a SyncStateSet
	// change refused as stale, no master named): only a rebuild lifts it,
	// unlike the lease, which a confirmation renews.
	fenced   atomic.Bool
	isMaster atomic.Bool // role == replicaMaster, for the lease check
	// waitSlaves is how many slaves every client write of this master
	// waits for (ha.insync's set, pending ones included).
	waitSlaves atomic.Int32
	// knownEpoch is the master epoch of the running role, for the
	// heartbeat goroutine to notice a newer one.
	knownEpoch atomic.Int32
	// leader is the controller that answered as leader last.
	leader atomic.Pointer[string]

	mu           sync.Mutex // role changes and the fields below
	inner        *kernel.Kernel
	role         string
	masterID     int64
	masterEpoch  int32
	masterAddr   string
	masterHAAddr string
	syncSet      []int64 // confirmed by the controller, master included
	syncSetEpoch int32
	pending      map[int64]int64 // expanding: slave -> master offset it must reach
	caughtUp     map[int64]time.Time
	lastMax      int64
	current      atomic.Pointer[Broker]
	roleChanges  atomic.Int64

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// provisionReplicas makes b the supervisor of controller mode.
func (b *Broker) provisionReplicas(ctx kernel.Context) error {
	rm := &replicaManager{kctx: ctx, cfgBase: ctx.Config, base: time.Now(), log: b.log, cluster: b.cfg.BrokerClusterName, brokerName: b.cfg.BrokerName,
		storeRoot: b.storeCfg.StorePathRootDir, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := ctx.Config.Unmarshal("broker", &rm.cfg); err != nil {
		return fmt.Errorf("controller mode config: %w", err)
	}
	for _, a := range strings.Split(rm.cfg.ControllerAddr, ";") {
		if a = strings.TrimSpace(a); a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("controllerAddr %q: %w", a, err)
			}
			rm.controllers = append(rm.controllers, a)
		}
	}
	switch {
	case len(rm.controllers) == 0:
		return errors.New("enableControllerMode needs controllerAddr")
	case b.cfg.ListenPort <= 0:
		return errors.New("enableControllerMode needs a fixed listenPort: the controller hands the address to the other replicas")
	case rm.cfg.HeartbeatInterval <= 0 || rm.cfg.HeartbeatTimeout <= 2*rm.cfg.HeartbeatInterval:
		return fmt.Errorf("controllerHeartBeatTimeoutMills (%d) must exceed twice brokerHeartbeatInterval (%d)", rm.cfg.HeartbeatTimeout, rm.cfg.HeartbeatInterval)
	case rm.cfg.SyncMetadataPeriod <= 0 || rm.cfg.CheckSyncSetPeriod <= 0 || rm.cfg.MaxNotCatchup <= 0:
		return errors.New("syncBrokerMetadataPeriod, checkSyncStateSetPeriod and haMaxTimeSlaveNotCatchup must be positive")
	}
	engine := storage.EngineModule(ctx.Config.String("store.engine"))
	if info, err := kernel.GetModule(kernel.ModuleID(engine)); err != nil {
		return err
	} else if _, ok := info.New().(storage.Replicable); !ok {
		return fmt.Errorf("enableControllerMode: store.engine %s cannot replicate", engine)
	}
	ip := b.cfg.BrokerIP1
	if ip == "" {
		ip = defaultAdvertiseIP()
	}
	rm.addr = net.JoinHostPort(ip, strconv.Itoa(b.cfg.ListenPort))
	haPort := ctx.Config.Int("ha.haListenPort")
	if haPort <= 0 {
		haPort = b.cfg.ListenPort + 1
	}
	rm.haAddr = net.JoinHostPort(ip, strconv.Itoa(haPort))
	if rm.cfg.EpochFile == "" {
		rm.cfg.EpochFile = filepath.Join(rm.storeRoot, epochFileName)
	}
	if rm.cfg.BrokerIdentityFile == "" {
		rm.cfg.BrokerIdentityFile = filepath.Join(rm.storeRoot, "brokerIdentity")
	}
	if err := os.MkdirAll(rm.storeRoot, 0o755); err != nil {
		return err
	}
	ep, err := openEpochFile(rm.cfg.EpochFile)
	if err != nil {
		return err
	}
	rm.epochs = ep
	empty := ""
	rm.leader.Store(&empty)
	b.replicas = rm
	return nil
}

// Current returns the broker serving now: in controller mode the one the
// supervisor runs (nil between roles), otherwise b itself.
func (b *Broker) Current() *Broker {
	if b.replicas != nil {
		return b.replicas.current.Load()
	}
	return b
}

// start registers with the controller and starts the first role, waiting
// at most firstRoleWait for it; the rest happens in the background.
func (rm *replicaManager) start() error {
	// Controllers embedded in an ACL-enforcing name server check the
	// signature on the name server's port; the controller's own port has no
	// TLS, a broker's port may have (docs/security.md).
	cc := remoting.ClientConfig{Logger: rm.log}
	if cr, ok := acl.CredentialsFrom(rm.cfgBase); ok {
		cc.Sign, _ = acl.Signer(cr)
	}
	pc, err := secure.ClientFromConfig(rm.cfgBase, remoting.ClientConfig{Logger: rm.log})
	if err != nil {
		return err
	}
	rm.peerClient = remoting.NewClient(pc)
	rm.client = remoting.NewClient(cc)
	rm.registerAdmin()
	first := make(chan struct{})
	rm.wg.Add(1)
	go func() {
		defer rm.wg.Done()
		rm.run(first)
	}()
	select {
	case <-first:
	case <-time.After(firstRoleWait):
		rm.log.Warn().Strs("controllers", rm.controllers).Msg("controller mode: no role after 30 s; still trying in the background")
	}
	return nil
}

const firstRoleWait = 30 * time.Second

func (rm *replicaManager) stopAll(ctx context.Context) error {
	select {
	case <-rm.stop:
	default:
		close(rm.stop)
	}
	rm.wg.Wait()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	err := rm.stopInnerLocked(ctx)
	rm.client.Close()
	rm.peerClient.Close()
	return err
}

// run is the supervisor's loop.
func (rm *replicaManager) run(first chan struct{}) {
	firstOnce := sync.OnceFunc(func() { close(first) })
	defer firstOnce()
	for rm.brokerID.Load() == 0 {
		if err := rm.obtainBrokerID(); err != nil {
			rm.log.Warn().Err(err).Msg("controller mode: no broker id yet")
			if !rm.sleep(time.Second) {
				return
			}
		}
	}
	// Heartbeats and the lease run apart from role changes, which take
	// as long as a broker's stop and start.
	rm.wg.Add(1)
	go func() {
		defer rm.wg.Done()
		rm.beatLoop()
	}()
	poll := time.NewTicker(ms(rm.cfg.SyncMetadataPeriod))
	defer poll.Stop()
	check := time.NewTicker(ms(rm.cfg.CheckSyncSetPeriod))
	defer check.Stop()
	registered := false
	for {
		if !registered {
			registered = rm.register()
		}
		if registered && rm.sync() {
			firstOnce()
		}
		rm.followEpochs()
	wait:
		select {
		case <-rm.stop:
			return
		case <-check.C:
			rm.checkSyncStateSet()
			goto wait
		case <-poll.C:
		case <-rm.kick:
		}
	}
}

// beatLoop sends heartbeats and watches the master's lease.
func (rm *replicaManager) beatLoop() {
	rm.heartbeat()
	beat := time.NewTicker(ms(rm.cfg.HeartbeatInterval))
	defer beat.Stop()
	lease := time.NewTicker(ms(rm.cfg.HeartbeatInterval) / 4)
	defer lease.Stop()
	for {
		select {
		case <-rm.stop:
			return
		case <-beat.C:
			rm.heartbeat()
		case <-lease.C:
			rm.checkLease()
		}
	}
}

func (rm *replicaManager) sleep(d time.Duration) bool {
	select {
	case <-rm.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// kickSync makes the loop ask the controller now (NOTIFY_BROKER_ROLE_CHANGED).
func (rm *replicaManager) kickSync() {
	select {
	case rm.kick <- struct{}{}:
	default:
	}
}

// invoke sends a request to the controller leader: the last known one
// first, then every controller, until one answers other than
// CONTROLLER_NOT_LEADER.
func (rm *replicaManager) invoke(code int16, ext map[string]string, b []byte) (*remoting.Command, error) {
	order := make([]string, 0, len(rm.controllers)+1)
	if l := *rm.leader.Load(); l != "" {
		order = append(order, l)
	}
	for _, a := range rm.controllers {
		if !slices.Contains(order, a) {
			order = append(order, a)
		}
	}
	var last error
	for _, a := range order {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := rm.client.Invoke(ctx, a, remoting.NewRequest(code, ext, b))
		cancel()
		if err != nil {
			last = err
			continue
		}
		if resp.Code == remoting.ControllerNotLeader {
			last = fmt.Errorf("%s: %s", a, resp.Remark)
			continue
		}
		a := a
		rm.leader.Store(&a)
		return resp, nil
	}
	if last == nil {
		last = errors.New("no controller address")
	}
	return nil, fmt.Errorf("no controller leader answered: %w", last)
}

// obtainBrokerID reads the broker id from the identity file, or gets one
// from the controller (RocketMQ 5's GET_NEXT_BROKER_ID, APPLY_BROKER_ID,
// with a temporary file so that a crash in between retries the same claim).
func (rm *replicaManager) obtainBrokerID() error {
	path := rm.cfg.BrokerIdentityFile
	if b, err := os.ReadFile(path); err == nil {
		parts := strings.Split(strings.TrimSpace(string(b)), "#")
		if len(parts) < 3 {
			return fmt.Errorf("broker identity %s: %q is not cluster#brokerName#brokerId", path, b)
		}
		id, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("broker identity %s: bad broker id %q", path, parts[2])
		}
		if parts[1] != rm.brokerName {
			return fmt.Errorf("broker identity %s belongs to broker %s, not %s", path, parts[1], rm.brokerName)
		}
		rm.brokerID.Store(id)
		return nil
	} else if !os.IsNotExist(err) {
		return err
	}
	temp := path + "-temp"
	var id int64
	var code string
	if b, err := os.ReadFile(temp); err == nil {
		parts := strings.Split(strings.TrimSpace(string(b)), "#")
		if len(parts) == 4 {
			id, _ = strconv.ParseInt(parts[2], 10, 64)
			code = parts[3]
		}
	}
	ext := map[string]string{"clusterName": rm.cluster, "brokerName": rm.brokerName}
	if id <= 0 {
		resp, err := rm.invoke(remoting.ControllerGetNextBrokerID, ext, nil)
		if err != nil {
			return err
		}
		if resp.Code != remoting.Success {
			return fmt.Errorf("GET_NEXT_BROKER_ID: %d %s", resp.Code, resp.Remark)
		}
		if id, err = strconv.ParseInt(resp.Ext("nextBrokerId"), 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("GET_NEXT_BROKER_ID answered %q", resp.Ext("nextBrokerId"))
		}
		var nonce [4]byte
		_, _ = rand.Read(nonce[:])
		code = rm.addr + ";" + strconv.FormatInt(time.Now().UnixMilli(), 10) + hex.EncodeToString(nonce[:])
		if err := fsutil.WriteFile(temp, fmt.Appendf(nil, "%s#%s#%d#%s", rm.cluster, rm.brokerName, id, code), 0o644); err != nil {
			return err
		}
	}
	resp, err := rm.invoke(remoting.ControllerApplyBrokerID, map[string]string{"clusterName": rm.cluster, "brokerName": rm.brokerName,
		"appliedBrokerId": strconv.FormatInt(id, 10), "registerCheckCode": code}, nil)
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		_ = os.Remove(temp) // someone else got it: start over with the next id
		return fmt.Errorf("APPLY_BROKER_ID %d: %d %s", id, resp.Code, resp.Remark)
	}
	if err := fsutil.WriteFile(path, fmt.Appendf(nil, "%s#%s#%d", rm.cluster, rm.brokerName, id), 0o644); err != nil {
		return err
	}
	_ = os.Remove(temp)
	rm.brokerID.Store(id)
	rm.log.Info().Int64("brokerId", id).Str("brokerName", rm.brokerName).Msg("controller mode: broker id assigned")
	return nil
}

// register tells the controller this replica's addresses.
func (rm *replicaManager) register() bool {
	resp, err := rm.invoke(remoting.ControllerRegisterBroker, map[string]string{"clusterName": rm.cluster, "brokerName": rm.brokerName,
		"brokerId": strconv.FormatInt(rm.brokerID.Load(), 10), "brokerAddress": rm.addr, "haServerAddr": rm.haAddr,
		"invokeTime": strconv.FormatInt(time.Now().UnixMilli(), 10)}, nil)
	if err != nil {
		rm.log.Warn().Err(err).Msg("controller mode: register")
		return false
	}
	if resp.Code != remoting.Success {
		rm.log.Warn().Int16("code", resp.Code).Str("remark", resp.Remark).Msg("controller mode: register refused")
		if resp.Code == remoting.ControllerBrokerNeedToBeRegistered {
			// The controller lost this id (its store was reset): claim a new one.
			_ = os.Remove(rm.cfg.BrokerIdentityFile)
			rm.brokerID.Store(0)
			for rm.brokerID.Load() == 0 {
				if err := rm.obtainBrokerID(); err != nil {
					return false
				}
			}
		}
		return false
	}
	return true
}

// heartbeat beats to every controller at once; the leader's confirmation
// (leaseConfirmed: it names this replica master) renews the lease. An
// answer naming a newer master epoch makes the loop ask at once.
func (rm *replicaManager) heartbeat() {
	sent := rm.mono()
	var maxOff int64 = -1
	if cur := rm.current.Load(); cur != nil && cur.ha != nil && cur.ha.repl != nil {
		maxOff = cur.ha.repl.MaxPhyOffset()
	}
	epoch := int64(rm.epochs.LastEpoch())
	if epoch == 0 {
		epoch = -1
	}
	ext := map[string]string{"clusterName": rm.cluster, "brokerName": rm.brokerName, "brokerAddr": rm.addr,
		"brokerId": strconv.FormatInt(rm.brokerID.Load(), 10), "epoch": strconv.FormatInt(epoch, 10), "maxOffset": strconv.FormatInt(maxOff, 10),
		"heartbeatTimeoutMills": strconv.FormatInt(rm.cfg.HeartbeatTimeout, 10), "electionPriority": strconv.FormatInt(rm.cfg.ElectionPriority, 10)}
	var wg sync.WaitGroup
	for _, a := range rm.controllers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), ms(rm.cfg.HeartbeatInterval))
			defer cancel()
			resp, err := rm.client.Invoke(ctx, a, remoting.NewRequest(remoting.BrokerHeartbeat, maps.Clone(ext), nil))
			if err != nil || resp.Code != remoting.Success {
				return
			}
			if resp.Ext("leaseConfirmed") == "true" {
				for {
					old := rm.leaseAt.Load()
					if sent <= old || rm.leaseAt.CompareAndSwap(old, sent) {
						break
					}
				}
			}
			if e, err := strconv.Atoi(resp.Ext("masterEpoch")); err == nil && int32(e) > rm.knownEpoch.Load() {
				rm.kickSync()
			}
		}()
	}
	wg.Wait()
}

// mono is the time since base, for the lease.
func (rm *replicaManager) mono() int64 { return int64(time.Since(rm.base)) }

// leaseLeft is how long a master's lease still runs (<= 0: ended).
func (rm *replicaManager) leaseLeft() time.Duration {
	return ms(rm.cfg.HeartbeatTimeout)/2 - time.Duration(rm.mono()-rm.leaseAt.Load())
}

// checkLease logs when a master's lease ends and when the controller
// leader confirms it again (admit enforces it on every write).
func (rm *replicaManager) checkLease() {
	if !rm.isMaster.Load() {
		return
	}
	if rm.leaseLeft() <= 0 {
		if !rm.leaseLost.Swap(true) {
			if rm.selfFenced() {
				rm.log.Warn().Dur("lease", ms(rm.cfg.HeartbeatTimeout)/2).
					Msg("controller mode: no controller leader confirmed this master's heartbeats; client writes go on (each needs the SyncStateSet's slaves), its own deliveries pause")
			} else {
				rm.log.Error().Dur("lease", ms(rm.cfg.HeartbeatTimeout)/2).
					Msg("controller mode: no controller leader confirmed this master's heartbeats; refusing writes until one does")
			}
		}
		return
	}
	if rm.leaseLost.CompareAndSwap(true, false) {
		rm.log.Info().Msg("controller mode: the controller leader confirms this master again")
	}
}

// sync asks the controller for the group's state and follows it. It
// reports whether this replica has a role.
func (rm *replicaManager) sync() bool {
	resp, err := rm.invoke(remoting.ControllerGetReplicaInfo, map[string]string{"brokerName": rm.brokerName}, nil)
	if err != nil {
		rm.log.Warn().Err(err).Msg("controller mode: replica info")
		return rm.hasRole()
	}
	if resp.Code == remoting.ControllerBrokerMetadataNotExist {
		rm.register()
		return rm.hasRole()
	}
	if resp.Code != remoting.Success {
		rm.log.Warn().Int16("code", resp.Code).Str("remark", resp.Remark).Msg("controller mode: replica info")
		return rm.hasRole()
	}
	info := parseReplicaInfo(resp)
	if info.masterID < 0 {
		// No master: ask to be elected (the controller picks whom it may).
		er, err := rm.invoke(remoting.ControllerElectMaster, map[string]string{"clusterName": rm.cluster, "brokerName": rm.brokerName,
			"brokerId": strconv.FormatInt(rm.brokerID.Load(), 10), "designateElect": "false", "invokeTime": strconv.FormatInt(time.Now().UnixMilli(), 10)}, nil)
		if err != nil || (er.Code != remoting.Success && er.Code != remoting.ControllerMasterStillExist) {
			rm.fenceIfMaster("the controller names no master of this group")
			return rm.hasRole()
		}
		info = parseReplicaInfo(er)
		if info.masterID < 0 {
			return rm.hasRole()
		}
	}
	if err := rm.follow(info); err != nil {
		rm.log.Warn().Err(err).Msg("controller mode: role change failed; retrying")
	}
	return rm.hasRole()
}

// followEpochs copies, on a slave, the master's epochs that its log has
// reached since (prepare copied those up to its end then), so that the
// epoch file stays exact while the slave catches up across an epoch start.
func (rm *replicaManager) followEpochs() {
	rm.mu.Lock()
	role, addr := rm.role, rm.masterAddr
	rm.mu.Unlock()
	cur := rm.current.Load()
	if role != replicaSlave || cur == nil || cur.ha == nil || cur.ha.repl == nil {
		return
	}
	cache, err := rm.fetchEpochs(cur, addr)
	if err != nil {
		return // the master is away; the next poll tries again
	}
	if err := rm.epochs.Follow(cache, cur.ha.repl.MaxPhyOffset()); err != nil {
		rm.log.Warn().Err(err).Msg("controller mode: epoch file")
	}
}

func (rm *replicaManager) hasRole() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.role != replicaNone
}

func (rm *replicaManager) fenceIfMaster(why string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.role == replicaMaster && !rm.fenced.Swap(true) {
		rm.log.Error().Str("reason", why).Msg("controller mode: refusing writes")
	}
}

// replicaState is a group's master and SyncStateSet as the controller
// answers them.
type replicaState struct {
	masterID     int64
	masterAddr   string
	masterHAAddr string
	masterEpoch  int32
	set          []int64
	setEpoch     int32
}

func parseReplicaInfo(resp *remoting.Command) replicaState {
	st := replicaState{masterID: -1}
	if v := resp.Ext("masterBrokerId"); v != "" && v != "null" {
		st.masterID, _ = strconv.ParseInt(v, 10, 64)
	}
	st.masterAddr = resp.Ext("masterAddress")
	st.masterHAAddr = resp.Ext("masterHaAddress")
	e, _ := strconv.Atoi(resp.Ext("masterEpoch"))
	st.masterEpoch = int32(e)
	var set body.SyncStateSet
	if len(resp.Body) > 0 && body.Unmarshal(resp.Body, &set) == nil {
		st.set, st.setEpoch = set.SyncStateSet, set.SyncStateSetEpoch
	}
	if se := resp.Ext("syncStateSetEpoch"); se != "" {
		if v, err := strconv.Atoi(se); err == nil && int32(v) > st.setEpoch {
			st.setEpoch = int32(v)
		}
	}
	return st
}

// follow applies the controller's view: a newer master epoch changes the
// role (rebuilding the broker), a newer SyncStateSet reaches the mode.
func (rm *replicaManager) follow(st replicaState) error {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if st.masterEpoch < rm.masterEpoch {
		return nil // stale answer
	}
	switch {
	case st.masterID == rm.brokerID.Load():
		if rm.role != replicaMaster || st.masterEpoch != rm.masterEpoch {
			return rm.becomeLocked(replicaMaster, st)
		}
		if st.setEpoch > rm.syncSetEpoch {
			rm.syncSet, rm.syncSetEpoch = st.set, st.setEpoch
			rm.pushSyncSetLocked()
		}
	default:
		if rm.role != replicaSlave || st.masterEpoch != rm.masterEpoch || st.masterAddr != rm.masterAddr {
			return rm.becomeLocked(replicaSlave, st)
		}
	}
	return nil
}

// becomeLocked rebuilds the broker in role.
func (rm *replicaManager) becomeLocked(role string, st replicaState) error {
	if rm.role == replicaMaster && role != replicaMaster {
		rm.fenced.Store(true) // no write may land on the old master while it steps down
	}
	rm.log.Info().Str("from", orNone(rm.role)).Str("to", role).Int64("brokerId", rm.brokerID.Load()).Int64("masterId", st.masterID).
		Str("masterAddr", st.masterAddr).Int32("masterEpoch", st.masterEpoch).Msg("controller mode: role change")
	if cur := rm.current.Load(); cur != nil {
		cur.keepRegistration.Store(true) // the next role's registration replaces it
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := rm.stopInnerLocked(stopCtx)
	cancel()
	if err != nil {
		rm.log.Warn().Err(err).Msg("controller mode: stopping the previous role")
	}
	rm.role = replicaNone
	rm.isMaster.Store(false)
	rm.waitSlaves.Store(0)
	prev := rm.masterEpoch
	rm.masterID, rm.masterEpoch, rm.masterAddr, rm.masterHAAddr = st.masterID, st.masterEpoch, st.masterAddr, st.masterHAAddr
	rm.syncSet, rm.syncSetEpoch = st.set, st.setEpoch
	rm.pending, rm.caughtUp, rm.lastMax = map[int64]int64{}, map[int64]time.Time{}, 0
	// No lease is assumed from the election: the answer that named this
	// replica may be older than the controller's next decision (a master
	// restarted just before its lease would have ended). Writes wait for the
	// first heartbeat the leader confirms for the new epoch, sent as soon as
	// the broker has recorded it (prepare), below.
	rm.leaseAt.Store(rm.mono() - int64(ms(rm.cfg.HeartbeatTimeout)))
	if err := rm.startInnerLocked(role); err != nil {
		rm.masterEpoch = prev // retried at the next sync
		return err
	}
	if role == replicaMaster {
		rm.heartbeat()
	}
	rm.role = role
	rm.leaseLost.Store(false)
	rm.knownEpoch.Store(rm.masterEpoch)
	rm.roleChanges.Add(1)
	rm.isMaster.Store(role == replicaMaster)
	rm.fenced.Store(false)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// startInnerLocked builds and starts the broker of role in a child kernel.
func (rm *replicaManager) startInnerLocked(role string) error {
	cfg := rm.cfgBase.Clone()
	set := func(k string, v any) error { return cfg.Set(k, v, "controller mode") }
	var errs []error
	errs = append(errs, set("broker.enableControllerMode", false))
	if role == replicaMaster {
		errs = append(errs, set("broker.brokerId", 0))
		mrole := strings.ToUpper(cfg.String("store.brokerRole"))
		if rm.cfg.AllAck {
			mrole = storage.RoleSyncMaster
			errs = append(errs, set("ha.mode", string(ha.InSyncID)))
		} else if mrole != storage.RoleSyncMaster {
			mrole = storage.RoleAsyncMaster
		}
		errs = append(errs, set("store.brokerRole", mrole))
	} else {
		errs = append(errs, set("broker.brokerId", rm.brokerID.Load()), set("store.brokerRole", storage.RoleSlave),
			set("ha.haMasterAddress", rm.masterHAAddr))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	k := rm.kctx.NewKernel(cfg, rm.log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.Load(ctx, "app.broker"); err != nil {
		return err
	}
	var inner *Broker
	for _, m := range k.Loaded() {
		if b, ok := m.(*Broker); ok {
			inner = b
		}
	}
	if inner == nil {
		_ = k.Stop(ctx)
		return errors.New("controller mode: the child kernel holds no broker")
	}
	inner.controlled = rm
	if err := k.Start(); err != nil {
		return err
	}
	rm.inner = k
	rm.current.Store(inner)
	return nil
}

func (rm *replicaManager) stopInnerLocked(ctx context.Context) error {
	if rm.inner == nil {
		return nil
	}
	rm.current.Store(nil)
	err := rm.inner.Stop(ctx)
	rm.inner = nil
	return err
}

// prepare runs in the role's broker after its store opened and before it
// serves (Broker.Start): a master records its epoch at the log's end; a
// slave cuts its log where it leaves the master's history.
func (rm *replicaManager) prepare(b *Broker) error {
	repl := b.ha.repl
	if repl == nil {
		return errors.New("controller mode: the store cannot replicate")
	}
	b.topics.setStateVersion(int64(rm.masterEpoch))
	if b.ha.Role() != storage.RoleSlave {
		return rm.epochs.Begin(rm.masterEpoch, repl.MaxPhyOffset())
	}
	addr := rm.masterAddr
	b.ha.masterAddr.Store(&addr)
	cache, err := rm.fetchEpochs(b, rm.masterAddr)
	if err != nil {
		return fmt.Errorf("epochs of master %s: %w", rm.masterAddr, err)
	}
	// Compare only with the master of the epoch the controller named: one
	// that has not begun it yet (still rebuilding), or an old master that
	// still answers, would give a history that is not the one to follow.
	if n := len(cache); n == 0 || cache[n-1].Epoch != rm.masterEpoch {
		last := int32(0)
		if n > 0 {
			last = cache[n-1].Epoch
		}
		return fmt.Errorf("master %s is at epoch %d, not yet %d; retrying", rm.masterAddr, last, rm.masterEpoch)
	}
	local := rm.epochs.Entries(repl.MaxPhyOffset())
	end := repl.MaxPhyOffset()
	point := end
	if len(local) > 0 {
		p, ok := consistentPoint(local, cache)
		if !ok {
			p = repl.MinPhyOffset() // nothing in common that can be proven: copy anew
		}
		point = min(p, end)
	} else if len(cache) > 0 && end > cache[0].StartOffset {
		// A log from before controller mode (or whose epoch file was
		// lost): only what precedes the first epoch is shared for sure.
		point = cache[0].StartOffset
	}
	if point < end {
		rm.log.Warn().Int64("from", point).Int64("to", end).Int64("bytes", end-point).Str("master", rm.masterAddr).
			Msg("controller mode: cutting this replica's commit log where it leaves the master's history (written as an old master, never confirmed)")
		if err := repl.TruncateRaw(point); err != nil {
			return fmt.Errorf("truncate at %d: %w", point, err)
		}
	}
	return rm.epochs.Follow(cache, repl.MaxPhyOffset())
}

// fetchEpochs asks a broker for its epoch cache (GET_BROKER_EPOCH_CACHE);
// the last entry ends at its max offset.
func (rm *replicaManager) fetchEpochs(b *Broker, addr string) ([]EpochEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := rm.peerClient.Invoke(ctx, addr, remoting.NewRequest(remoting.GetBrokerEpochCache, nil, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, fmt.Errorf("%d %s", resp.Code, resp.Remark)
	}
	var c body.EpochEntryCache
	if err := body.Unmarshal(resp.Body, &c); err != nil {
		return nil, err
	}
	out := make([]EpochEntry, len(c.EpochList))
	for i, e := range c.EpochList {
		out[i] = EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset, EndOffset: e.EndOffset}
	}
	if n := len(out); n > 0 {
		out[n-1].EndOffset = c.MaxOffset
	}
	return out, nil
}

// started runs in the role's broker once its replication mode runs and
// before it serves: the mode learns the SyncStateSet before the first write
// (ha.insync refuses writes until it knows it).
func (rm *replicaManager) started(b *Broker) {
	if b.ha != nil && b.ha.Role() != storage.RoleSlave {
		rm.pushSyncSetTo(b)
	}
}

// pushSyncSetLocked hands the slaves writes wait for to ha.insync: the
// confirmed set and the slaves being added.
func (rm *replicaManager) pushSyncSetLocked() {
	if cur := rm.current.Load(); cur != nil {
		rm.pushSyncSetTo(cur)
	}
}

func (rm *replicaManager) pushSyncSetTo(cur *Broker) {
	if cur.ha == nil || cur.ha.slot == nil {
		return
	}
	setter, ok := any(cur.ha.slot.Current()).(ha.SyncStateSetter)
	if !ok {
		return
	}
	var slaves []int64
	for _, id := range rm.syncSet {
		if id != rm.brokerID.Load() {
			slaves = append(slaves, id)
		}
	}
	for id := range rm.pending {
		if !slices.Contains(slaves, id) {
			slaves = append(slaves, id)
		}
	}
	setter.SetSyncStateSet(slaves)
	rm.waitSlaves.Store(int32(len(slaves)))
}

// checkSyncStateSet is the master's periodic look at its slaves: one whose
// confirmations reached the master's end as it was at the previous check is
// caught up. A member not caught up for haMaxTimeSlaveNotCatchup leaves the
// set. A connected non-member that is caught up first becomes pending -
// writes wait for it from then on - and joins at the next check if it has
// confirmed everything stored when it became pending: so every write ever
// acknowledged is on it when the controller lists it.
func (rm *replicaManager) checkSyncStateSet() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	cur := rm.current.Load()
	if rm.role != replicaMaster || cur == nil || cur.ha == nil || cur.ha.master == nil || rm.fenced.Load() {
		return
	}
	now := time.Now()
	end := cur.ha.repl.MaxPhyOffset()
	acks := cur.ha.master.Confirmed(nil)
	best := map[int64]int64{}
	for _, a := range acks {
		if v, seen := best[a.BrokerID]; a.BrokerID > 0 && (!seen || a.Confirmed > v) {
			best[a.BrokerID] = a.Confirmed
		}
	}
	for id, off := range best {
		if off >= rm.lastMax {
			rm.caughtUp[id] = now
		}
	}
	next := []int64{rm.brokerID.Load()}
	for _, id := range rm.syncSet {
		if id == rm.brokerID.Load() {
			continue
		}
		t, seen := rm.caughtUp[id]
		if !seen {
			rm.caughtUp[id], t = now, now // the period runs from this master's start
		}
		if now.Sub(t) <= ms(rm.cfg.MaxNotCatchup) {
			next = append(next, id)
		}
	}
	pushed := false
	var added []int64
	for id := range rm.pending {
		if _, connected := best[id]; !connected {
			delete(rm.pending, id) // gone: writes must not wait for it
			pushed = true
		}
	}
	for id, off := range best {
		if slices.Contains(rm.syncSet, id) {
			continue
		}
		mark, pending := rm.pending[id]
		switch {
		case pending && off >= mark:
			next = append(next, id)
		case pending:
			delete(rm.pending, id) // fell behind again
			pushed = true
		case off >= rm.lastMax:
			added = append(added, id)
			rm.pending[id] = math.MaxInt64 // marked below, once writes wait for it
			pushed = true
		}
	}
	rm.lastMax = end
	if pushed {
		rm.pushSyncSetLocked()
	}
	// The mark is taken after the push: every write answered before it
	// ends at or below it, every write after it waits for the new slave.
	mark := cur.ha.repl.MaxPhyOffset()
	for _, id := range added {
		rm.pending[id] = mark
	}
	slices.Sort(next)
	cur2 := slices.Clone(rm.syncSet)
	slices.Sort(cur2)
	if slices.Equal(next, cur2) {
		return
	}
	setBody, _ := body.Marshal(body.SyncStateSet{SyncStateSet: next, SyncStateSetEpoch: rm.syncSetEpoch})
	resp, err := rm.invoke(remoting.ControllerAlterSyncStateSet, map[string]string{"brokerName": rm.brokerName,
		"masterBrokerId": strconv.FormatInt(rm.brokerID.Load(), 10), "masterEpoch": strconv.Itoa(int(rm.masterEpoch)),
		"invokeTime": strconv.FormatInt(now.UnixMilli(), 10)}, setBody)
	if err != nil || resp.Code != remoting.Success {
		ev := rm.log.Warn().Ints64("want", next).Ints64("have", rm.syncSet)
		if err != nil {
			ev = ev.Err(err)
		} else {
			ev = ev.Int16("code", resp.Code).Str("remark", resp.Remark)
		}
		ev.Msg("controller mode: SyncStateSet change refused")
		if resp != nil && (resp.Code == remoting.ControllerFencedMasterEpoch || resp.Code == remoting.ControllerInvalidMaster) {
			rm.fenced.Store(true)
			rm.kickSync()
		}
		return
	}
	var got body.SyncStateSet
	if body.Unmarshal(resp.Body, &got) != nil {
		got = body.SyncStateSet{SyncStateSet: next, SyncStateSetEpoch: rm.syncSetEpoch + 1}
	}
	rm.syncSet, rm.syncSetEpoch = got.SyncStateSet, got.SyncStateSetEpoch
	for _, id := range got.SyncStateSet {
		delete(rm.pending, id)
	}
	rm.pushSyncSetLocked()
	rm.log.Info().Ints64("syncStateSet", rm.syncSet).Int32("syncStateSetEpoch", rm.syncSetEpoch).Msg("controller mode: SyncStateSet changed")
}

// ReplicaStatus is controller mode as GET /replicas and /metrics show it.
type ReplicaStatus struct {
	BrokerID          int64        `json:"brokerId"`
	Role              string       `json:"role"`
	MasterID          int64        `json:"masterId"`
	MasterAddr        string       `json:"masterAddr,omitempty"`
	MasterEpoch       int32        `json:"masterEpoch"`
	SyncStateSet      []int64      `json:"syncStateSet,omitempty"`
	SyncStateSetEpoch int32        `json:"syncStateSetEpoch"`
	Pending           []int64      `json:"pendingInSync,omitempty"`
	Fenced            bool         `json:"fenced"`
	LeaseAge          string       `json:"leaseAge,omitempty"`
	RoleChanges       int64        `json:"roleChanges"`
	Controllers       []string     `json:"controllers"`
	ControllerLeader  string       `json:"controllerLeader,omitempty"`
	Epochs            []EpochEntry `json:"epochs"`
}

// Status reports controller mode.
func (rm *replicaManager) Status() ReplicaStatus {
	var max int64
	if cur := rm.current.Load(); cur != nil && cur.ha != nil && cur.ha.repl != nil {
		max = cur.ha.repl.MaxPhyOffset()
	}
	st := ReplicaStatus{BrokerID: rm.brokerID.Load(), Controllers: rm.controllers, ControllerLeader: *rm.leader.Load(),
		RoleChanges: rm.roleChanges.Load(), Epochs: rm.epochs.Entries(max)}
	if rm.isMaster.Load() {
		_, why := rm.admit()
		st.Fenced = why != nil
		st.LeaseAge = time.Duration(rm.mono() - rm.leaseAt.Load()).Round(time.Millisecond).String()
	}
	if rm.mu.TryLock() { // a role change holds it for a while: report without
		defer rm.mu.Unlock()
		st.Role = orNone(rm.role)
		st.MasterID, st.MasterAddr, st.MasterEpoch = rm.masterID, rm.masterAddr, rm.masterEpoch
		st.SyncStateSet, st.SyncStateSetEpoch = slices.Clone(rm.syncSet), rm.syncSetEpoch
		for id := range rm.pending {
			st.Pending = append(st.Pending, id)
		}
	} else {
		st.Role = "changing"
	}
	return st
}

// registerAdmin adds GET /replicas.
func (rm *replicaManager) registerAdmin() {
	reg := rm.kctx.Admin()
	if reg == nil {
		return
	}
	reg.Handle(kernel.AdminHandler{Path: "/replicas", Methods: []string{"GET"}, Doc: "controller mode: broker id, role, master epoch, SyncStateSet, lease, epochs",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { kernel.WriteJSON(w, http.StatusOK, rm.Status()) })})
}

// selfFenced reports whether every client write of this master needs
// another replica's confirmation (allAckInSyncStateSet with a slave in the
// set): then a deposed master cannot answer SEND_OK, since the replica
// elected in its place stops confirming, and the lease need not stop its
// writes - so a controller outage does not stop them either.
func (rm *replicaManager) selfFenced() bool {
	return rm.cfg.AllAck && rm.waitSlaves.Load() > 0
}

// admit refuses client writes on a fenced master, and on a master whose
// lease ran out unless it is self-fenced, checked on every write (a process
// resumed after SIGSTOP serves requests before its timers fire).
func (rm *replicaManager) admit() (storage.PutStatus, error) {
	return rm.admitWrite(rm.selfFenced())
}

// admitInternal is admit for appends no client waits on (schedule and
// timer deliveries, transaction records): they are not confirmed by the
// SyncStateSet, so the lease always applies to them.
func (rm *replicaManager) admitInternal() (storage.PutStatus, error) {
	return rm.admitWrite(false)
}

func (rm *replicaManager) admitWrite(exemptLease bool) (storage.PutStatus, error) {
	if rm.fenced.Load() {
		return storage.PutServiceNotAvailable, errors.New("this replica is not the master of the current epoch; writes are refused")
	}
	if rm.isMaster.Load() && !exemptLease && rm.leaseLeft() <= 0 {
		return storage.PutServiceNotAvailable, errors.New("this master's controller lease is not confirmed; writes are refused until a controller leader confirms it")
	}
	return storage.PutOK, nil
}

// handleGetBrokerEpochCache serves GET_BROKER_EPOCH_CACHE (mqadmin
// getBrokerEpoch, and a replica rejoining as slave).
func (b *Broker) handleGetBrokerEpochCache(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	rm := b.controlled
	if rm == nil || b.ha == nil || b.ha.repl == nil {
		return remoting.NewResponse(remoting.SystemError, "this request only for controllerMode ")
	}
	max := b.ha.repl.MaxPhyOffset()
	entries := rm.epochs.Entries(max)
	out := body.EpochEntryCache{BrokerID: b.cfg.BrokerID, BrokerName: b.cfg.BrokerName, ClusterName: b.cfg.BrokerClusterName,
		EpochList: make([]body.EpochEntry, len(entries)), MaxOffset: max}
	for i, e := range entries {
		out.EpochList[i] = body.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset, EndOffset: e.EndOffset}
	}
	if n := len(out.EpochList); n > 0 {
		out.EpochList[n-1].EndOffset = math.MaxInt64
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body, _ = body.Marshal(out)
	return resp
}

// handleNotifyRoleChanged serves NOTIFY_BROKER_ROLE_CHANGED: the
// supervisor asks the controller at once.
func (b *Broker) handleNotifyRoleChanged(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	if b.controlled == nil {
		return remoting.NewResponse(remoting.SystemError, "this request only for controllerMode ")
	}
	b.controlled.kickSync()
	return remoting.NewResponse(remoting.Success, "")
}
