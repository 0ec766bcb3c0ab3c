// Package external makes an installed replication-mode plugin (kind "ha",
// run by kernel/pluginhost) a replication mode like the built-ins: module
// ha.<name>, an ha.Replicator that the broker builds, swaps in and out of
// its slot, and waits on for every send. docs/plugins.md describes it.
//
// The data path stays in mqd. The plugin answers the slave membership with
// a policy (how many slaves, and which, must confirm a write); a watcher
// here turns the policy and the slaves' confirmations into a watermark, the
// highest offset that counts as replicated, and sends wait on it with the
// same waiters as SYNC_MASTER (ha.Waiters). The plugin hears from mqd only
// when a slave comes or goes, never per message.
//
// Failing safe: while the plugin is down (crashed, restarting) there is no
// policy, the watermark does not move, and sends wait up to
// store.syncFlushTimeout and answer FLUSH_SLAVE_TIMEOUT: a mode that
// promised synchronous acknowledgement never silently becomes asynchronous.
package external

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/transport"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/plugins/sdk/pluginpb"
	"github.com/mqd/mqd/storage"
)

func init() {
	pluginhost.RegisterKind("ha", func(dir string, e pluginhost.Entry) kernel.Module { return &Mode{dir: dir, entry: e} })
}

// Mode is the replication mode of one installed plugin.
type Mode struct {
	dir   string
	entry pluginhost.Entry

	log     zerolog.Logger
	values  map[string]string // the plugin's keys, without the plugin.<name>. prefix; under streamMu
	timeout time.Duration
	src     ha.Source
	proc    atomic.Pointer[pluginhost.Process] // set once started; read by the stream goroutines
	waiters *ha.Waiters

	policy atomic.Pointer[policy] // the plugin's current; nil while it has none
	mark   atomic.Int64           // the watermark, computed by watch
	markCh atomic.Pointer[chan struct{}]
	kick   chan struct{} // wakes watch: the policy changed

	// streamMu guards the policy stream, its generation (a policy or an end
	// from an older stream is ignored), the connection and values.
	streamMu     sync.Mutex
	streamCancel context.CancelFunc
	streamGen    uint64
	conn         *grpc.ClientConn

	messages atomic.Int64 // host<->plugin messages (memberships sent, policies received)
	stopOnce sync.Once
	stop     chan struct{}
	watching sync.WaitGroup
}

type policy struct {
	minAcks  int
	required []string
	reason   string
}

// MQDModule implements kernel.Module.
func (m *Mode) MQDModule() kernel.ModuleInfo {
	dir, e := m.dir, m.entry
	return kernel.ModuleInfo{ID: kernel.ModuleID(e.ModuleID()), External: e.Path(dir),
		New: func() kernel.Module { return &Mode{dir: dir, entry: e} }}
}

// Provision reads the plugin's keys and store.syncFlushTimeout.
func (m *Mode) Provision(ctx kernel.Context) error {
	m.log = ctx.Logger
	m.values = m.entry.Values(ctx.Config)
	m.timeout = time.Duration(ctx.Config.Int64("store.syncFlushTimeout")) * time.Millisecond
	return nil
}

// Validate checks the settings.
func (m *Mode) Validate() error {
	if m.timeout <= 0 {
		return fmt.Errorf("store.syncFlushTimeout must be positive")
	}
	return nil
}

// Role implements ha.Replicator: sends wait for slaves, as under SYNC_MASTER.
func (*Mode) Role() string { return storage.RoleSyncMaster }

// Attach implements ha.Replicator.
func (m *Mode) Attach(src ha.Source) { m.src = src }

// Start starts the plugin (its first start must succeed: a changed binary,
// refused keys or a plugin that says it is something else fail the start)
// and the watcher of its policy.
func (m *Mode) Start() error {
	if m.src == nil {
		return errors.New("not attached to a replication transport")
	}
	m.stop = make(chan struct{})
	m.kick = make(chan struct{}, 1)
	m.mark.Store(-1)
	m.waiters = ha.NewWaiters(m.watermarkNow, func() [3]<-chan struct{} {
		return [3]<-chan struct{}{m.markChanged(), m.src.AckChanged()}
	}, m.timeout)
	m.watching.Add(1)
	go m.watch()
	proc, err := pluginhost.Start(m.dir, m.entry, m.log, pluginhost.Hooks{Started: m.started, Down: m.down})
	if err != nil {
		m.stopOnce.Do(func() { close(m.stop) })
		m.watching.Wait()
		return err
	}
	m.proc.Store(proc)
	return nil
}

// started configures a (re)started plugin and opens its policy stream.
func (m *Mode) started(ctx context.Context, conn *grpc.ClientConn) error {
	select {
	case <-m.stop:
		return errors.New("the mode is stopping")
	default:
	}
	m.streamMu.Lock()
	values := m.values
	m.streamMu.Unlock()
	if _, err := pluginpb.NewPluginClient(conn).Configure(ctx, &pluginpb.ConfigureRequest{Values: values}); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := pluginpb.NewReplicationClient(conn).Policy(sctx)
	if err != nil {
		cancel()
		return fmt.Errorf("open the policy stream: %w", err)
	}
	m.streamMu.Lock()
	if m.streamCancel != nil {
		m.streamCancel()
	}
	m.streamGen++
	gen := m.streamGen
	m.streamCancel, m.conn = cancel, conn
	m.streamMu.Unlock()
	go m.sendMemberships(sctx, stream)
	go m.receivePolicies(gen, stream)
	return nil
}

// down: the plugin is gone; no policy until it is back.
func (m *Mode) down(error) {
	m.streamMu.Lock()
	if m.streamCancel != nil {
		m.streamCancel()
		m.streamCancel = nil
	}
	m.streamGen++ // whatever the old stream still delivers is ignored
	m.conn = nil
	m.policy.Store(nil)
	m.streamMu.Unlock()
	m.wake()
}

// applyPolicy takes a policy from the stream of generation gen, unless a
// newer stream (or the plugin's end) replaced it meanwhile.
func (m *Mode) applyPolicy(gen uint64, p *policy) {
	m.streamMu.Lock()
	current := gen == m.streamGen
	if current {
		m.policy.Store(p)
	}
	m.streamMu.Unlock()
	if current {
		m.wake()
	}
}

func (m *Mode) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// sendMemberships tells the plugin the slaves at the start and whenever
// they change.
func (m *Mode) sendMemberships(ctx context.Context, stream pluginpb.Replication_PolicyClient) {
	var buf []transport.SlaveAck
	for {
		ch := m.src.MembersChanged()
		buf = m.src.Confirmed(buf[:0])
		msg := &pluginpb.Membership{}
		for _, s := range buf {
			msg.Slaves = append(msg.Slaves, &pluginpb.Slave{Addr: s.Addr, Confirmed: s.Confirmed})
		}
		if err := stream.Send(msg); err != nil {
			return // the stream ended: the plugin is down or the mode stopped
		}
		m.messages.Add(1)
		select {
		case <-ch:
		case <-ctx.Done():
			_ = stream.CloseSend()
			return
		}
	}
}

// receivePolicies applies each policy the plugin sends. A stream that ends
// while it is still the current one (the plugin process lives on but
// dropped it) leaves no policy in force: sends fail safe, and the plugin is
// restarted so that a new stream opens.
func (m *Mode) receivePolicies(gen uint64, stream pluginpb.Replication_PolicyClient) {
	for {
		p, err := stream.Recv()
		if err != nil {
			m.streamMu.Lock()
			current := gen == m.streamGen
			if current {
				m.policy.Store(nil)
			}
			m.streamMu.Unlock()
			if current {
				m.wake()
				select {
				case <-m.stop:
				default:
					m.log.Error().Err(err).Msg("the plugin ended its policy stream; restarting it (sends fail safe meanwhile)")
					if proc := m.proc.Load(); proc != nil {
						proc.Restart()
					}
				}
			}
			return
		}
		m.messages.Add(1)
		next := &policy{minAcks: int(p.GetMinAcks()), required: p.GetRequired(), reason: p.GetReason()}
		m.log.Info().Int("minAcks", next.minAcks).Strs("required", next.required).Str("reason", next.reason).Msg("replication policy from the plugin")
		m.applyPolicy(gen, next)
	}
}

// watch recomputes the watermark whenever a slave confirms, a slave comes or
// goes, or the policy changes, and wakes the waiting sends when it rose.
func (m *Mode) watch() {
	defer m.watching.Done()
	var buf []transport.SlaveAck
	var offs []int64
	for {
		confirmed, members := m.src.ConfirmChanged(), m.src.MembersChanged()
		if anyOne(m.policy.Load()) {
			confirmed = nil // watermarkNow reads the transport's own highest confirmation
		}
		var mark int64
		mark, buf, offs = m.watermark(buf, offs)
		if old := m.mark.Swap(mark); old != mark {
			if ch := m.markCh.Swap(nil); ch != nil {
				close(*ch)
			}
		}
		select {
		case <-confirmed:
		case <-members:
		case <-m.kick:
		case <-m.stop:
			return
		}
	}
}

// watermark is the highest offset the current policy counts as replicated:
// the minAcks-th highest confirmation, and no more than any required slave
// confirmed; -1 while there is no policy or too few slaves.
func (m *Mode) watermark(buf []transport.SlaveAck, offs []int64) (int64, []transport.SlaveAck, []int64) {
	p := m.policy.Load()
	if p == nil {
		return -1, buf, offs
	}
	if p.minAcks == 0 {
		return math.MaxInt64, buf, offs
	}
	buf = m.src.Confirmed(buf[:0])
	offs = offs[:0]
	limit := int64(math.MaxInt64)
	for _, r := range p.required {
		i := slices.IndexFunc(buf, func(s transport.SlaveAck) bool { return s.Addr == r })
		if i < 0 {
			return -1, buf, offs
		}
		limit = min(limit, buf[i].Confirmed)
	}
	if len(buf) < p.minAcks {
		return -1, buf, offs
	}
	for _, s := range buf {
		offs = append(offs, s.Confirmed)
	}
	slices.SortFunc(offs, func(a, b int64) int { return cmp.Compare(b, a) })
	return min(offs[p.minAcks-1], limit), buf, offs
}

// anyOne reports a policy that any single slave's confirmation satisfies:
// its watermark is the highest confirmation, which the transport keeps.
func anyOne(p *policy) bool { return p != nil && p.minAcks == 1 && len(p.required) == 0 }

// watermarkNow is what the waiting sends compare against: for a one-of-any
// policy the transport's highest confirmation (no hop through the watcher,
// so such a plugin costs what SYNC_MASTER costs), else the watcher's mark.
func (m *Mode) watermarkNow() int64 {
	if anyOne(m.policy.Load()) {
		return m.src.AckedOffset()
	}
	return m.mark.Load()
}

func (m *Mode) markChanged() <-chan struct{} {
	for {
		if ch := m.markCh.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		if m.markCh.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// Await implements ha.Replicator.
func (m *Mode) Await(end int64) storage.PutStatus {
	if p := m.policy.Load(); p != nil && p.minAcks == 0 {
		return storage.PutOK
	}
	m.src.Notify()
	return m.waiters.Wait(end)
}

// Ready implements ha.Replicator: the plugin answered with a policy, and the
// policy counts everything up to end as replicated.
func (m *Mode) Ready(end int64) error {
	p := m.policy.Load()
	if p == nil {
		return fmt.Errorf("plugin %s has sent no replication policy yet", m.entry.Name)
	}
	if mark := m.watermarkNow(); mark < end {
		return fmt.Errorf("plugin %s's policy (%s) counts offset %d as replicated, %d bytes short of %d", m.entry.Name, p.reason, mark, end-max(mark, 0), end)
	}
	return nil
}

// Reconfigure applies changed plugin keys to the running plugin: every
// value is checked first (dryRun) and applied only when the check passed,
// so a reload is refused before anything changed.
func (m *Mode) Reconfigure(ctx context.Context, next *config.Config, dryRun bool) error {
	values := m.entry.Values(next)
	m.streamMu.Lock()
	conn := m.conn
	m.streamMu.Unlock()
	if conn == nil {
		return fmt.Errorf("plugin %s is not running; its keys can change once it is back", m.entry.Name)
	}
	if !dryRun {
		// Set before the plugin applies them: a restart in between
		// configures the new process with the new values too.
		m.streamMu.Lock()
		m.values = values
		m.streamMu.Unlock()
	}
	if _, err := pluginpb.NewPluginClient(conn).Configure(ctx, &pluginpb.ConfigureRequest{Values: values, DryRun: dryRun}); err != nil {
		return fmt.Errorf("plugin %s refused its keys: %w", m.entry.Name, err)
	}
	return nil
}

// Status is what /ha shows of the mode.
type Status struct {
	Plugin   pluginhost.Status `json:"plugin"`
	Policy   string            `json:"policy"`
	MinAcks  int               `json:"minAcks"`
	Messages int64             `json:"messages"`
	Mark     int64             `json:"watermark"`
}

// Status reports the plugin and its policy.
func (m *Mode) Status() Status {
	st := Status{Messages: m.messages.Load(), Mark: m.watermarkNow(), Policy: "none (plugin down or not answered yet)"}
	if proc := m.proc.Load(); proc != nil {
		st.Plugin = proc.Status()
	}
	if p := m.policy.Load(); p != nil {
		st.Policy, st.MinAcks = p.reason, p.minAcks
	}
	return st
}

// Stop ends the waits (FLUSH_SLAVE_TIMEOUT), the stream and the plugin.
func (m *Mode) Stop(kernel.StopContext) error {
	if m.stop == nil {
		return nil
	}
	m.waiters.Stop()
	m.stopOnce.Do(func() { close(m.stop) })
	m.watching.Wait()
	// The plugin first (no restart can open a stream after this), then
	// its stream.
	if proc := m.proc.Load(); proc != nil {
		proc.Stop()
	}
	m.down(nil)
	return nil
}

var _ ha.Replicator = (*Mode)(nil)
