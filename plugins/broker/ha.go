package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/transport"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Master/slave replication in the broker (docs/replication.md). A master serves the
// HA transport on haListenPort and holds its replication mode (ha.async for
// ASYNC_MASTER, ha.sync for SYNC_MASTER) in a kernel slot, so the mode can be
// swapped on the running broker (swapRole): every send of a master waits on the
// current mode after its append. A slave (brokerRole SLAVE, brokerId > 0)
// follows the master named by haMasterAddress or learned from the name
// servers' registration answer, refuses writes (its store does), rebuilds its
// consume queues from the replicated records and copies the master's metadata
// on a timer (slave.go).

func init() {
	config.Register(
		config.Key{Path: "broker.slaveReadEnable", Role: "broker", RocketMQ: []string{"slaveReadEnable"}, Default: false,
			Doc: "let the master send consumers that read far behind (accessMessageInMemoryMaxRatio) to a slave"},
		config.Key{Path: "broker.slaveSyncInterval", Default: int64(10000),
			Doc: "slave: period of copying topics, consumer offsets, delay offsets and subscription groups from the master, ms"},
	)
}

// haService is the broker's replication state.
type haService struct {
	b   *Broker
	log zerolog.Logger
	// cfg is the configuration modes are built from: the start's, then each
	// applied reload's (swaps read it from admin requests concurrently).
	cfg  atomic.Pointer[config.Config]
	opts ha.Options

	slaveRead    bool
	syncInterval time.Duration
	syncTimeout  time.Duration

	role atomic.Pointer[string]
	repl storage.Replicable // nil: the engine cannot replicate

	// master
	replicator ha.Replicator // built at Provision, owned by slot after Start
	slot       *kernel.Slot[ha.Replicator]
	master     *transport.Master
	haLn       net.Listener
	swapMu     sync.Mutex

	// slave
	slave      *transport.Slave
	masterAddr atomic.Pointer[string] // the master's remoting address
	syncer     *slaveSyncer

	admin *kernel.AdminRegistry
}

// provisionHA reads the ha.* keys and builds the replication mode of a master.
func (b *Broker) provisionHA(ctx kernel.Context) error {
	h := &haService{b: b, log: b.log, opts: ha.DefaultOptions()}
	h.cfg.Store(ctx.Config)
	if err := ctx.Config.Unmarshal("ha", &h.opts); err != nil {
		return fmt.Errorf("ha options: %w", err)
	}
	if err := h.opts.Validate(); err != nil {
		return err
	}
	h.slaveRead = ctx.Config.Bool("broker.slaveReadEnable")
	h.syncInterval = time.Duration(ctx.Config.Int64("broker.slaveSyncInterval")) * time.Millisecond
	if h.syncInterval <= 0 {
		return fmt.Errorf("broker.slaveSyncInterval must be positive")
	}
	h.syncTimeout = time.Duration(b.storeCfg.SyncFlushTimeout) * time.Millisecond
	role := strings.ToUpper(strings.TrimSpace(b.storeCfg.BrokerRole))
	h.role.Store(&role)
	empty := ""
	h.masterAddr.Store(&empty)
	h.repl, _ = b.store.(storage.Replicable)
	h.admin = ctx.Admin()
	b.ha = h
	switch role {
	case storage.RoleSlave:
		if b.cfg.BrokerID <= 0 {
			return fmt.Errorf("brokerRole SLAVE needs brokerId > 0, got %d", b.cfg.BrokerID)
		}
		if h.repl == nil {
			return fmt.Errorf("brokerRole SLAVE: store.engine %s cannot replicate", ctx.Config.String("store.engine"))
		}
		return nil
	case storage.RoleSyncMaster, storage.RoleAsyncMaster:
		if b.cfg.BrokerID != 0 {
			// RocketMQ's BrokerStartup does the same for master roles.
			b.log.Warn().Int64("brokerId", b.cfg.BrokerID).Str("brokerRole", role).Msg("a master's brokerId is 0; using 0")
			b.cfg.BrokerID = 0
		}
		if h.repl == nil {
			if role == storage.RoleSyncMaster {
				return fmt.Errorf("brokerRole SYNC_MASTER: store.engine %s cannot replicate", ctx.Config.String("store.engine"))
			}
			b.log.Info().Msg("store engine cannot replicate: no HA port")
			return nil
		}
		id, err := ha.ModuleForMode(h.modeFor(ctx.Config))
		if err != nil {
			return err
		}
		m, err := kernel.Build(ctx, ctx.Config, ctx.Logger.With().Str("module", string(id)).Logger(), id)
		if err != nil {
			return err
		}
		r, ok := m.(ha.Replicator)
		if !ok {
			return fmt.Errorf("ha.mode: %s is not a replication mode", id)
		}
		h.replicator = r
		mode := r.Role()
		h.role.Store(&mode)
		return nil
	}
	return fmt.Errorf("store.brokerRole %q is not ASYNC_MASTER, SYNC_MASTER or SLAVE", role)
}

// modeFor is the replication mode a master runs with config c: ha.mode when
// set (a built-in or an installed plugin), else the built-in of brokerRole.
func (h *haService) modeFor(c *config.Config) string {
	if m := strings.TrimSpace(c.String("ha.mode")); m != "" {
		return m
	}
	if strings.EqualFold(strings.TrimSpace(c.String("store.brokerRole")), storage.RoleSyncMaster) {
		return "sync"
	}
	return "async"
}

// Role is the broker's current role.
func (h *haService) Role() string { return *h.role.Load() }

// haPort is the replication port: haListenPort, else listenPort+1, else (for
// listenPort 0) any free port.
func (h *haService) haPort() int {
	if h.opts.ListenPort > 0 {
		return h.opts.ListenPort
	}
	if h.b.cfg.ListenPort > 0 {
		return h.b.cfg.ListenPort + 1
	}
	return 0
}

func (h *haService) transportOptions() transport.Options {
	o := transport.Options{BatchSize: h.opts.TransferBatchSize, Heartbeat: h.opts.Heartbeat(),
		Housekeeping: h.opts.Housekeeping(), Reconnect: h.opts.Reconnect(), TLS: h.b.sec.ClientTLS, Logger: h.log}
	if rm := h.b.controlled; rm != nil {
		o.BrokerID = rm.brokerID.Load() // the master's SyncStateSet knows replicas by id
	}
	return o
}

// internalPut appends a message the broker derives itself (a delayed or
// timer delivery, a transaction op record or check copy). A fenced
// controller-mode master does not write them either: the replica that
// replaces it makes them from its own state.
func (b *Broker) internalPut(m *message.Message) storage.PutResult {
	if rm := b.controlled; rm != nil {
		if st, err := rm.admitInternal(); st != storage.PutOK {
			return storage.PutResult{Status: st, Err: err}
		}
	}
	return b.store.Put(m)
}

// clientPut appends a message a client waits on, unless refusePut refuses.
func (b *Broker) clientPut(m *message.Message) storage.PutResult {
	if res, refused := b.refusePut(); refused {
		return res
	}
	return b.store.Put(m)
}

// clientPutBatch is clientPut for a batch.
func (b *Broker) clientPutBatch(ms []message.Message) storage.PutResult {
	if res, refused := b.refusePut(); refused {
		return res
	}
	return b.store.PutBatch(ms)
}

// refusePut is the check before a client's append on a master: a fenced
// controller-mode master, or a mode that refuses (ha.insync with too few
// replicas in sync), answers without appending.
func (b *Broker) refusePut() (storage.PutResult, bool) {
	if rm := b.controlled; rm != nil {
		if st, err := rm.admit(); st != storage.PutOK {
			return storage.PutResult{Status: st, Err: err}, true
		}
	}
	h := b.ha
	if h == nil || h.slot == nil {
		return storage.PutResult{}, false
	}
	if a, ok := any(h.slot.Current()).(ha.Admitter); ok {
		if st := a.Admit(); st != storage.PutOK {
			return storage.PutResult{Status: st, Err: errors.New("in-sync replicas not enough")}, true
		}
	}
	return storage.PutResult{}, false
}

// startHA opens the HA port of a master, or starts following the master.
func (b *Broker) startHA() error {
	h := b.ha
	if h == nil || h.repl == nil {
		return nil
	}
	if h.Role() == storage.RoleSlave {
		// The syncer exists before the first replicated record is dispatched:
		// the arrival listener asks it about unknown topics (slave.go).
		h.syncer = newSlaveSyncer(b)
		h.slave = transport.NewSlave(h.repl, h.transportOptions())
		if h.opts.MasterAddress != "" {
			h.slave.SetMasterAddr(h.opts.MasterAddress)
		}
		h.slave.Start()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			h.syncer.run(b.stop)
		}()
		b.registerHAAdmin(h.admin)
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(h.haPort())))
	if err != nil {
		return fmt.Errorf("HA listen on port %d (haListenPort): %w", h.haPort(), err)
	}
	ln = h.b.sec.Listen(ln) // the HA port has the remoting port's TLS mode
	h.haLn = ln
	h.master = transport.NewMaster(h.repl, h.transportOptions())
	h.replicator.Attach(h.master)
	if err := kernel.StartModule(h.replicator); err != nil {
		ln.Close()
		return fmt.Errorf("%s: start: %w", h.replicator.MQDModule().ID, err)
	}
	h.slot = kernel.NewSlot[ha.Replicator]("ha", h.replicator)
	h.master.Serve(ln)
	b.registerHAAdmin(h.admin)
	b.log.Info().Str("haAddr", ln.Addr().String()).Str("brokerRole", h.Role()).
		Str("mode", string(h.replicator.MQDModule().ID)).Msg("HA port listening")
	return nil
}

// stopHA ends replication once no send is in progress any more.
func (b *Broker) stopHA(ctx context.Context) {
	h := b.ha
	if h == nil {
		return
	}
	if h.slot != nil {
		if err := h.slot.Close(ctx); err != nil {
			b.log.Warn().Err(err).Msg("stop replication mode")
		}
	} else if h.replicator != nil {
		_ = kernel.RetireModule(ctx, h.replicator)
	}
	if h.master != nil {
		h.master.Close()
	}
	if h.slave != nil {
		h.slave.Stop()
	}
	if b.controlled != nil && h.admin != nil {
		// The broker of the next role registers its own; a slave must
		// not keep serving its predecessor's /swap.
		h.admin.Remove("/ha")
		h.admin.Remove("/swap")
	}
}

// haServerAddrActual is the advertised HA address once the port is open.
func (b *Broker) haServerAddrActual() string {
	h := b.ha
	if h == nil || h.haLn == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(b.addr)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(h.haLn.Addr().(*net.TCPAddr).Port))
}

// awaitReplica waits, after a successful append on a master, until the
// current replication mode counts the message replicated; the mode's status
// replaces PUT_OK (RocketMQ: the replica status overrides the flush status).
// Messages sent with WAIT=false are not waited for, as in RocketMQ.
func (b *Broker) awaitReplica(res *storage.PutResult, props string) {
	h := b.ha
	if h == nil || h.slot == nil || !res.Status.Stored() {
		return
	}
	h.master.Notify()
	if message.Property(props, message.PropertyWaitStoreMsgOK) == "false" {
		return
	}
	l := h.slot.Acquire()
	st := l.Value.Await(res.CommitLogOffset + int64(res.WroteBytes))
	l.Release()
	if st != storage.PutOK {
		res.Status = st
	}
}

// onRegisterAnswer takes the master's addresses from the registry's answer
// to a slave's registration (RocketMQ: masterAddr and haServerAddr).
func (b *Broker) onRegisterAnswer(ma, haAddr string) {
	h := b.ha
	if h == nil || h.Role() != storage.RoleSlave {
		return
	}
	if ma != "" {
		if old := h.masterAddr.Swap(&ma); *old != ma {
			b.log.Info().Str("master", ma).Msg("master address from the name server")
			if h.syncer != nil {
				h.syncer.kick()
			}
		}
	}
	if h.opts.MasterAddress == "" && h.slave != nil && haAddr != "" {
		h.slave.SetMasterAddr(haAddr)
	}
}

// slaveReadCheck refuses reads on a slave whose log diverged from its master's.
func (b *Broker) slaveReadCheck() *remoting.Command {
	h := b.ha
	if h == nil || h.slave == nil {
		return nil
	}
	if err := h.slave.Diverged(); err != nil {
		return remoting.NewResponse(remoting.SystemError, "this slave's commit log diverged from its master's; reads are refused until it is repaired: "+err.Error())
	}
	return nil
}

// suggestBrokerID is the suggestWhichBrokerId of a pull answer: with
// slaveReadEnable, a consumer far behind is sent to slave 1
// (whichBrokerWhenConsumeSlowly); otherwise the master.
func (b *Broker) suggestBrokerID(res *storage.GetResult) string {
	h := b.ha
	if h != nil && h.slaveRead && res != nil && res.SuggestPullingFromSlave && h.Role() != storage.RoleSlave {
		return "1"
	}
	return "0"
}

// errControllerMode is the answer to a role or mode change on a broker in
// controller mode: the controller decides the role, allAckInSyncStateSet
// the mode (docs/controller.md).
var errControllerMode = errors.New("controller mode: the controller assigns the role and allAckInSyncStateSet decides the replication mode; use mqadmin electMaster")

// errRoleNotLive is the answer to a change between master and slave roles.
var errRoleNotLive = errors.New("brokerRole can change live only between ASYNC_MASTER and SYNC_MASTER; " +
	"a master becomes a slave (or the other way) with a restart and a matching brokerId")

// SwapRole switches a running master between ASYNC_MASTER and SYNC_MASTER
// (SIGHUP, updateBrokerConfig -k brokerRole): the swap of SwapMode to the
// role's built-in mode. Between master and slave it is refused.
func (b *Broker) SwapRole(ctx context.Context, role string) (kernel.SwapReport, error) {
	h := b.ha
	role = strings.ToUpper(strings.TrimSpace(role))
	if h == nil {
		return kernel.SwapReport{}, errors.New("replication is not provisioned")
	}
	if b.controlled != nil {
		return kernel.SwapReport{}, errControllerMode
	}
	cur := h.Role()
	if role != storage.RoleAsyncMaster && role != storage.RoleSyncMaster && role != storage.RoleSlave {
		return kernel.SwapReport{}, fmt.Errorf("brokerRole %q is not ASYNC_MASTER, SYNC_MASTER or SLAVE", role)
	}
	if role == storage.RoleSlave || cur == storage.RoleSlave {
		if role == cur {
			return kernel.SwapReport{}, nil
		}
		return kernel.SwapReport{}, fmt.Errorf("brokerRole %s -> %s: %w", cur, role, errRoleNotLive)
	}
	id, err := ha.ModuleForRole(role)
	if err != nil {
		return kernel.SwapReport{}, err
	}
	return b.swapMode(ctx, id, h.cfg.Load())
}

// SwapMode switches a running master to another replication mode: a
// built-in one (sync, async) or an installed plugin's (quorum), by name or
// module ID. The new mode is built and started beside the current one,
// waits (at most ha.swapCatchUpTimeout) until it counts everything stored
// when the swap began as replicated, and then takes over; the old mode
// finishes the sends waiting on it. On any failure the current mode stays
// and the error says why. On success the broker re-registers with the name
// servers.
func (b *Broker) SwapMode(ctx context.Context, mode string) (kernel.SwapReport, error) {
	if b.ha == nil {
		return kernel.SwapReport{}, errors.New("replication is not provisioned")
	}
	if b.controlled != nil {
		return kernel.SwapReport{}, errControllerMode
	}
	if b.ha.Role() == storage.RoleSlave {
		return kernel.SwapReport{}, fmt.Errorf("a slave has no replication mode: %w", errRoleNotLive)
	}
	id, err := ha.ModuleForMode(mode)
	if err != nil {
		return kernel.SwapReport{}, err
	}
	return b.swapMode(ctx, id, b.ha.cfg.Load())
}

// swapMode swaps to module id built from cfg.
func (b *Broker) swapMode(ctx context.Context, id kernel.ModuleID, cfg *config.Config) (kernel.SwapReport, error) {
	h := b.ha
	if h.slot == nil {
		return kernel.SwapReport{}, fmt.Errorf("replication mode -> %s: this broker has no replication (store engine)", id)
	}
	h.swapMu.Lock()
	defer h.swapMu.Unlock()
	cur := h.slot.CurrentID()
	if id == cur {
		return kernel.SwapReport{Slot: "ha", From: cur, To: cur}, nil
	}
	m, err := kernel.Build(ctx, cfg, h.log.With().Str("module", string(id)).Logger(), id)
	if err != nil {
		return kernel.SwapReport{}, fmt.Errorf("build %s: %w", id, err)
	}
	next, ok := m.(ha.Replicator)
	if !ok {
		return kernel.SwapReport{}, fmt.Errorf("%s is not a replication mode", id)
	}
	role := next.Role()
	// A mode that waits for slaves can only catch up with a connected
	// slave: say so at once instead of waiting out the catch-up bound.
	if role == storage.RoleSyncMaster && h.master.SlaveCount() == 0 {
		_ = kernel.RetireModule(ctx, next)
		return kernel.SwapReport{}, fmt.Errorf("replication mode %s -> %s: no slave is connected to catch up; %s stays", cur, id, cur)
	}
	next.Attach(h.master)
	// Ready once a slave has confirmed what was stored when the swap began;
	// then the backlog that the load kept adding meanwhile is chased a few
	// rounds more while it exceeds one transfer batch, so that the first
	// sends under a sync mode do not all wait for it.
	// The chase never makes a swap fail: once the start is confirmed, a
	// round not confirmed within a quarter of the catch-up bound (a slave
	// slower than the load, or gone) ends it and the swap goes ahead.
	target := h.repl.MaxPhyOffset()
	chase := 3
	var started time.Time // when the slave confirmed the swap's start
	rep, err := h.slot.Swap(ctx, kernel.SwapPlan[ha.Replicator]{
		Next: next,
		Ready: func(r ha.Replicator) error {
			if err := r.Ready(target); err != nil {
				if started.IsZero() || time.Since(started) < h.opts.CatchUp()/4 {
					return err
				}
				return nil
			}
			if started.IsZero() {
				started = time.Now()
			}
			end := h.repl.MaxPhyOffset()
			if backlog := end - h.master.AckedOffset(); chase > 0 && backlog > int64(h.opts.TransferBatchSize) {
				chase--
				target = end
				return fmt.Errorf("slave confirmed the swap's start; %d bytes stored since still to confirm", backlog)
			}
			return nil
		},
		CatchUp: h.opts.CatchUp(),
		Drain:   h.syncTimeout + time.Second,
	})
	if !rep.Switched {
		b.log.Warn().Err(err).Str("mode", string(cur)).Str("wanted", string(id)).Msg("replication mode swap abandoned")
		return rep, err
	}
	h.role.Store(&role)
	b.log.Info().Str("from", string(cur)).Str("to", string(id)).Str("brokerRole", role).Dur("catchUp", rep.CatchUp).Dur("drain", rep.Drain).
		Err(err).Msg("replication mode swapped")
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.registerAll() // the name servers learn of the change at once
	}()
	return rep, err
}

// updateRole applies brokerRole from UPDATE_BROKER_CONFIG (mqadmin
// updateBrokerConfig -k brokerRole): a swap of the replication mode, bounded
// as a SIGHUP reload is; RocketMQ 4.9.8 flips ASYNC_MASTER and SYNC_MASTER the
// same way.
func (b *Broker) updateRole(role string) error {
	if b.ha == nil {
		return errors.New("replication is not provisioned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.ha.opts.CatchUp()+b.ha.syncTimeout+10*time.Second)
	defer cancel()
	_, err := b.SwapRole(ctx, role)
	if err != nil && strings.ToUpper(strings.TrimSpace(role)) == b.ha.Role() {
		return nil // switched; the warning (a slow drain) is logged by SwapRole
	}
	return err
}

// updateMode applies ha.mode from UPDATE_BROKER_CONFIG, bounded as updateRole.
func (b *Broker) updateMode(mode string) error {
	if b.ha == nil {
		return errors.New("replication is not provisioned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.ha.opts.CatchUp()+b.ha.syncTimeout+10*time.Second)
	defer cancel()
	rep, err := b.SwapMode(ctx, mode)
	if err != nil && rep.Switched {
		return nil // switched; the warning (a slow drain) is logged by SwapMode
	}
	return err
}

// HAStatus describes replication for status tools.
type HAStatus struct {
	Role          string                `json:"brokerRole"`
	Mode          string                `json:"mode,omitempty"`
	HAAddr        string                `json:"haAddr,omitempty"`
	MaxPhyOffset  int64                 `json:"maxPhyOffset"`
	AckedOffset   int64                 `json:"ackedOffset,omitempty"`
	Slaves        []transport.SlaveInfo `json:"slaves,omitempty"`
	MasterAddr    string                `json:"masterAddr,omitempty"`
	MasterHAAddr  string                `json:"masterHaAddr,omitempty"`
	Connected     bool                  `json:"connected,omitempty"`
	MasterOffset  int64                 `json:"masterOffset,omitempty"`
	Diverged      string                `json:"diverged,omitempty"`
	SlaveBehindBy int64                 `json:"slaveBehindBytes,omitempty"`
}

// HAStatus reports the replication state.
func (b *Broker) HAStatus() HAStatus {
	h := b.ha
	if h == nil {
		return HAStatus{}
	}
	st := HAStatus{Role: h.Role()}
	if h.repl != nil {
		st.MaxPhyOffset = h.repl.MaxPhyOffset()
	}
	if h.slot != nil {
		st.Mode = string(h.slot.CurrentID())
		st.HAAddr = b.haServerAddrActual()
		st.AckedOffset = h.master.AckedOffset()
		st.Slaves = h.master.Slaves()
	}
	if h.slave != nil {
		st.MasterAddr = *h.masterAddr.Load()
		st.MasterHAAddr = h.slave.MasterAddr()
		st.Connected = h.slave.Connected()
		st.MasterOffset = h.slave.MasterOffset()
		if err := h.slave.Diverged(); err != nil {
			st.Diverged = err.Error()
		}
		if st.MasterOffset > st.MaxPhyOffset {
			st.SlaveBehindBy = st.MasterOffset - st.MaxPhyOffset
		}
	}
	return st
}

// registerHAAdmin adds the operator endpoints: GET /ha (replication status)
// and, on a master, POST /swap?slot=ha&to=<mode> (what `mqd swap ha sync`
// calls), answering the swap report or the reason the swap was abandoned.
func (b *Broker) registerHAAdmin(reg *kernel.AdminRegistry) {
	if reg == nil || b.ha == nil {
		return
	}
	reg.Handle(kernel.AdminHandler{Path: "/ha", Methods: []string{"GET"}, Doc: "replication status (role, mode, slaves, lag)",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { kernel.WriteJSON(w, http.StatusOK, b.HAStatus()) })})
	if b.ha.slot == nil {
		return
	}
	reg.Handle(kernel.AdminHandler{Path: "/swap", Methods: []string{"POST"}, Doc: "swap the replication mode: POST /swap?slot=ha&to=sync|async|<installed ha plugin>",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s := r.URL.Query().Get("slot"); s != "" && s != "ha" {
				kernel.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no swappable slot " + strconv.Quote(s) + " (known: ha)"})
				return
			}
			to := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("to")))
			switch to {
			case "sync_master":
				to = "sync"
			case "async_master":
				to = "async"
			}
			if _, err := ha.ModuleForMode(to); err != nil {
				kernel.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "to=: " + err.Error()})
				return
			}
			rep, err := b.SwapMode(r.Context(), to)
			if err != nil && !rep.Switched {
				kernel.WriteJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "report": rep})
				return
			}
			out := map[string]any{"report": rep, "brokerRole": b.ha.Role()}
			if err != nil {
				out["warning"] = err.Error()
			}
			kernel.WriteJSON(w, http.StatusOK, out)
		})})
}
