package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mqd/mqd/kernel/logging"
	"github.com/mqd/mqd/plugins/sdk/pluginpb"
)

// Timing of a plugin's life.
const (
	startTimeout = 10 * time.Second // go-plugin's handshake
	helloTimeout = 5 * time.Second
	// Restart back-off: 100 ms, doubling to 5 s; a plugin that ran this
	// long before it exited starts again from the shortest pause.
	backoffMin   = 100 * time.Millisecond
	backoffMax   = 5 * time.Second
	backoffReset = 10 * time.Second
	exitPoll     = 50 * time.Millisecond
)

// HostVersion is what Hello tells plugins about the host (set by the binary).
var HostVersion = "mqd"

// running is one started plugin process.
type running struct {
	pc      *plugin.Client
	conn    *grpc.ClientConn
	hello   *pluginpb.HelloReply
	pid     int
	started time.Time
	release chan struct{} // ends the goroutine holding the forking thread
	once    sync.Once
}

func (r *running) end() {
	if r.pc != nil {
		r.pc.Kill()
	}
	r.once.Do(func() { close(r.release) })
}

// launch starts the plugin binary at path, checked against sum (hex
// SHA-256) before it runs, and completes go-plugin's handshake.
func launch(path, sum string, logger hclog.Logger) (*running, error) {
	checksum, err := hex.DecodeString(sum)
	if err != nil || len(checksum) != sha256.Size {
		return nil, fmt.Errorf("recorded checksum %q is not a SHA-256", sum)
	}
	cmd := exec.Command(path)
	// Killed with the host, however the host ends (go-plugin would leave
	// it running after a SIGKILL of mqd).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "MQD_PLUGIN_HOST_PID="+fmt.Sprint(os.Getpid()))
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  pluginpb.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{pluginpb.ProtocolVersion: {pluginpb.GoPluginName: &pluginpb.GoPlugin{}}},
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: checksum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
		StartTimeout:     startTimeout,
	}
	r := &running{release: make(chan struct{}), started: time.Now()}
	done := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the thread that forked
		// the child ends, not the process: fork on a locked thread and keep
		// it until the plugin is done with. Never unlocked, so the runtime
		// ends the thread with this goroutine rather than reusing it.
		runtime.LockOSThread()
		r.pc = plugin.NewClient(cfg)
		rpc, err := r.pc.Client()
		if err == nil {
			var raw any
			if raw, err = rpc.Dispense(pluginpb.GoPluginName); err == nil {
				r.conn = raw.(*grpc.ClientConn)
			}
		}
		done <- err
		if err != nil {
			return
		}
		<-r.release
	}()
	if err := <-done; err != nil {
		r.end()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, fmt.Errorf("refused to start: the binary is not the one installed (SHA-256 differs from the manifest; run mqd plugin verify)")
		}
		return nil, err
	}
	if rc := r.pc.ReattachConfig(); rc != nil {
		r.pid = rc.Pid
	}
	return r, nil
}

// hello asks a started plugin what it is.
func (r *running) sayHello() error {
	ctx, cancel := context.WithTimeout(context.Background(), helloTimeout)
	defer cancel()
	h, err := pluginpb.NewPluginClient(r.conn).Hello(ctx, &pluginpb.HelloRequest{ProtocolVersion: pluginpb.ProtocolVersion, HostVersion: HostVersion})
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	r.hello = h
	return nil
}

// probe starts a binary once to read its Hello (install).
func probe(path, sum string) (*pluginpb.HelloReply, error) {
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: os.Stderr, Level: hclog.Warn})
	r, err := launch(path, sum, logger)
	if err != nil {
		return nil, err
	}
	defer r.end()
	if err := r.sayHello(); err != nil {
		return nil, err
	}
	return r.hello, nil
}

// Hooks connect a Process to the module using it.
type Hooks struct {
	// Started runs after every start of the plugin, once its Hello matched
	// the manifest: the module configures the plugin and opens its streams.
	// An error counts as a failed start.
	Started func(ctx context.Context, conn *grpc.ClientConn) error
	// Down runs when the plugin exited or a restart failed; the module
	// fails safe until Started runs again.
	Down func(err error)
}

// Process is a supervised plugin: started, restarted with back-off when it
// exits, stopped with Stop.
type Process struct {
	entry Entry
	dir   string
	log   zerolog.Logger
	hooks Hooks
	lock  *os.File // shared flock on the binary while loaded (Remove refuses)

	mu  sync.Mutex
	cur *running

	state    atomic.Pointer[string]
	crashes  atomic.Int64
	restarts atomic.Int64
	lastErr  atomic.Pointer[string]
	since    atomic.Int64 // unix ms of the last state change

	stop chan struct{}
	done chan struct{}
}

// Plugin states.
const (
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateStopped    = "stopped"
)

var (
	loadedMu sync.Mutex
	loaded   = map[string]*Process{}
)

// Start starts an installed plugin and supervises it until Stop. The first
// start is synchronous: its error (a changed binary, a plugin that says it
// is something else, a failed Started hook) is returned and nothing keeps
// running.
func Start(dir string, e Entry, log zerolog.Logger, hooks Hooks) (*Process, error) {
	p := &Process{entry: e, dir: dir, log: log.With().Str("plugin", e.Name).Logger(), hooks: hooks,
		stop: make(chan struct{}), done: make(chan struct{})}
	lock, err := os.Open(e.Path(dir))
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w (install it with mqd plugin install)", e.Name, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH); err != nil {
		lock.Close()
		return nil, err
	}
	p.lock = lock
	r, err := p.startOnce()
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("plugin %s: %w", e.Name, err)
	}
	p.cur = r
	p.setState(StateRunning)
	loadedMu.Lock()
	loaded[e.Name] = p
	loadedMu.Unlock()
	go p.supervise(r)
	return p, nil
}

func (p *Process) setState(s string) {
	p.state.Store(&s)
	p.since.Store(time.Now().UnixMilli())
}

// startOnce launches the binary, checks its Hello against the manifest and
// runs the Started hook.
func (p *Process) startOnce() (*running, error) {
	r, err := launch(p.entry.Path(p.dir), p.entry.SHA256, logging.HCLog(p.log, "plugin."+p.entry.Name, hclog.NoLevel))
	if err != nil {
		return nil, err
	}
	if err := r.sayHello(); err != nil {
		r.end()
		return nil, err
	}
	if r.hello.GetKind() != p.entry.Kind || r.hello.GetName() != p.entry.Name {
		r.end()
		return nil, fmt.Errorf("the binary says it is %s.%s, installed as %s", r.hello.GetKind(), r.hello.GetName(), p.entry.ModuleID())
	}
	if p.hooks.Started != nil {
		ctx, cancel := context.WithTimeout(context.Background(), helloTimeout)
		err := p.hooks.Started(ctx, r.conn)
		cancel()
		if err != nil {
			r.end()
			return nil, err
		}
	}
	p.log.Info().Int("pid", r.pid).Str("version", r.hello.GetVersion()).Msg("plugin started")
	return r, nil
}

// supervise restarts the plugin whenever it exits, until Stop.
func (p *Process) supervise(r *running) {
	defer close(p.done)
	tick := time.NewTicker(exitPoll)
	defer tick.Stop()
	streak := 0 // exits in a row, each soon after its start
	for {
		for !r.pc.Exited() {
			select {
			case <-p.stop:
				r.end()
				return
			case <-tick.C:
			}
		}
		r.end()
		ran := time.Since(r.started)
		p.crashes.Add(1)
		err := fmt.Errorf("plugin process %d exited after %v", r.pid, ran.Round(time.Millisecond))
		p.fail(err)
		if ran >= backoffReset {
			streak = 0
		}
		streak++
		backoff := min(backoffMin<<min(streak-1, 6), backoffMax)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(backoff):
			}
			nr, err := p.startOnce()
			if err == nil {
				p.mu.Lock()
				p.cur, r = nr, nr
				p.mu.Unlock()
				p.restarts.Add(1)
				p.setState(StateRunning)
				break
			}
			p.fail(fmt.Errorf("restart: %w", err))
			backoff = min(backoff*2, backoffMax)
		}
	}
}

func (p *Process) fail(err error) {
	msg := err.Error()
	p.lastErr.Store(&msg)
	p.setState(StateRestarting)
	p.log.Error().Err(err).Int64("crashes", p.crashes.Load()).Msg("plugin down; restarting it with back-off, its module fails safe meanwhile")
	if p.hooks.Down != nil {
		p.hooks.Down(err)
	}
}

// Restart ends the running plugin process; the supervisor starts it again
// as after a crash (a module calls it when the plugin misbehaves without
// exiting, e.g. drops its stream).
func (p *Process) Restart() {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	if r != nil && r.pc != nil {
		r.pc.Kill()
	}
}

// Stop ends supervision and the plugin process.
func (p *Process) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.setState(StateStopped)
	loadedMu.Lock()
	if loaded[p.entry.Name] == p {
		delete(loaded, p.entry.Name)
	}
	loadedMu.Unlock()
	p.lock.Close()
}

// Status describes a loaded plugin for `mqd plugin list`, /plugins and /metrics.
type Status struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Version   string `json:"version"`
	State     string `json:"state"`
	PID       int    `json:"pid"`
	Crashes   int64  `json:"crashes"`
	Restarts  int64  `json:"restarts"`
	LastError string `json:"lastError,omitempty"`
	Since     int64  `json:"since"` // unix ms of the last state change
}

// Status reports the plugin's state.
func (p *Process) Status() Status {
	s := Status{Name: p.entry.Name, Kind: p.entry.Kind, Version: p.entry.Version,
		State: *p.state.Load(), Crashes: p.crashes.Load(), Restarts: p.restarts.Load(), Since: p.since.Load()}
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	p.mu.Lock()
	if p.cur != nil && s.State == StateRunning {
		s.PID = p.cur.pid
	}
	p.mu.Unlock()
	return s
}

// Loaded lists the plugins this process runs, by name.
func Loaded() []Status {
	loadedMu.Lock()
	ps := make([]*Process, 0, len(loaded))
	for _, p := range loaded {
		ps = append(ps, p)
	}
	loadedMu.Unlock()
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
