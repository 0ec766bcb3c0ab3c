// Package tests is mqd's compatibility suite: it runs name servers and brokers
// (in-process through the kernel, or as real mqd processes) and drives them
// with the unmodified official RocketMQ Go client over real TCP on 127.0.0.1.
// This file holds the in-process harness; process.go runs the mqd binary;
// clients.go wraps the official client for the tests. docs/faults.md maps the
// fault scenarios to the tests here and in tests/cluster.
//
// Run it without -race: the official client has data races of its own (the
// pull consumer's PullFrom against its rebalance, client Shutdown against
// in-flight calls), which the race detector reports as failures of the test.
package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	_ "github.com/mqd/mqd/kernel/logging" // registers the log.* keys the default profile sets
	"github.com/mqd/mqd/kernel/porttest"
	_ "github.com/mqd/mqd/plugins/all" // the modules mqd ships
)

// ClusterOptions tune StartCluster.
type ClusterOptions struct {
	// Broker and Namesrv are extra "key=value" settings (dotted mqd paths or
	// RocketMQ names of the role), applied after the harness's own.
	Broker  []string
	Namesrv []string
	// DataDir is the broker's storePathRootDir; "" means a fresh t.TempDir().
	DataDir string
}

// Cluster is a name server and a broker running in this process, each in its
// own kernel (the name server starts first so the broker can be told its
// address, since both listen on ports chosen by the OS).
type Cluster struct {
	// NameSrvAddr is the name server's host:port on 127.0.0.1.
	NameSrvAddr string
	// BrokerAddr is the broker's advertised host:port (brokerIP1 = 127.0.0.1).
	BrokerAddr string
	// DataDir is the broker's storePathRootDir.
	DataDir string

	t        testing.TB
	opts     ClusterOptions
	logs     *logBuffer
	mu       sync.Mutex
	nsKernel *kernel.Kernel
	brKernel *kernel.Kernel
}

// StartCluster starts a name server and a broker on free ports with their data
// under a temporary directory; t.Cleanup stops both.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: opts, logs: newLogBuffer()}
	if opts.DataDir == "" {
		c.DataDir = t.TempDir()
	} else {
		c.DataDir = opts.DataDir
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", c.logs.String())
		}
	})
	t.Cleanup(c.Stop)

	nsSets := append([]string{
		"namesrv.listenPort=0",
		"namesrv.kvConfigPath=" + filepath.Join(t.TempDir(), "kvConfig.json"),
	}, opts.Namesrv...)
	k, err := c.startKernel("namesrv", nsSets, "app.namesrv")
	if err != nil {
		t.Fatalf("start name server: %v", err)
	}
	c.nsKernel = k
	c.NameSrvAddr = loopbackAddr(moduleAddr(k, "app.namesrv"))
	if c.NameSrvAddr == "" {
		t.Fatalf("name server module reports no address")
	}
	if err := c.startBroker(FreePort(t)); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	return c
}

// EngineEnv names the environment variable that runs the suite's brokers on
// another store engine (store.engine, e.g. badger); empty: the default.
// tests/engines runs the whole suite once more that way.
const EngineEnv = "MQD_TEST_ENGINE"

// Engine is the store engine the suite's brokers run on ("" for the default).
func Engine() string { return os.Getenv(EngineEnv) }

// RequireReplication skips a test of master/slave replication when the
// suite runs on an engine that cannot replicate (storage.Replicable).
func RequireReplication(t testing.TB) {
	t.Helper()
	if e := Engine(); e == "badger" || e == "storage.badger" {
		t.Skipf("store engine %s cannot replicate", e)
	}
}

// startBroker starts the broker kernel; port 0 lets the OS choose.
func (c *Cluster) startBroker(port int) error {
	sets := []string{
		"broker.listenPort=" + strconv.Itoa(port),
		"broker.brokerIP1=127.0.0.1",
		"broker.namesrvAddr=" + c.NameSrvAddr,
		"store.storePathRootDir=" + c.DataDir,
	}
	if e := Engine(); e != "" {
		sets = append(sets, "store.engine="+e)
	}
	sets = append(sets, c.opts.Broker...)
	k, err := c.startKernel("broker", sets, "app.broker")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.brKernel = k
	c.mu.Unlock()
	c.BrokerAddr = moduleAddr(k, "app.broker")
	if c.BrokerAddr == "" {
		return fmt.Errorf("broker module reports no address")
	}
	return nil
}

func (c *Cluster) startKernel(role string, sets []string, app kernel.ModuleID) (*kernel.Kernel, error) {
	cfg, err := config.Load(config.LoadOptions{Role: role, Env: []string{}, Sets: sets})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	logger := zerolog.New(c.logs).Level(zerolog.InfoLevel).With().Timestamp().Str("kernel", role).Logger()
	k := kernel.New(cfg, logger)
	if err := k.Load(context.Background(), app); err != nil {
		return nil, err
	}
	if err := k.Start(); err != nil {
		return nil, err
	}
	return k, nil
}

// RestartBroker stops the broker and starts it again on the same port and data
// directory, the way an operator restarts mqbroker.
func (c *Cluster) RestartBroker() {
	c.t.Helper()
	_, portStr, _ := net.SplitHostPort(c.BrokerAddr)
	port, _ := strconv.Atoi(portStr)
	c.stopKernel(&c.brKernel)
	if err := c.startBroker(port); err != nil {
		c.t.Fatalf("restart broker: %v", err)
	}
}

// Stop stops the broker, then the name server. It is safe to call twice.
func (c *Cluster) Stop() {
	c.stopKernel(&c.brKernel)
	c.stopKernel(&c.nsKernel)
}

func (c *Cluster) stopKernel(kp **kernel.Kernel) {
	c.mu.Lock()
	k := *kp
	*kp = nil
	c.mu.Unlock()
	if k == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := k.Stop(ctx); err != nil {
		c.t.Errorf("stop: %v", err)
	}
}

// Module returns the loaded module with the given ID (for tests that need a
// look inside, such as the broker's store).
func (c *Cluster) Module(id kernel.ModuleID) kernel.Module {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range []*kernel.Kernel{c.nsKernel, c.brKernel} {
		if k == nil {
			continue
		}
		for _, m := range k.Loaded() {
			if m.MQDModule().ID == id {
				return m
			}
		}
	}
	return nil
}

// moduleAddr returns Addr() of the loaded module id.
func moduleAddr(k *kernel.Kernel, id kernel.ModuleID) string {
	for _, m := range k.Loaded() {
		if m.MQDModule().ID != id {
			continue
		}
		if a, ok := m.(interface{ Addr() string }); ok {
			return a.Addr()
		}
	}
	return ""
}

// loopbackAddr turns a listen address such as "[::]:9876" or ":9876" into
// "127.0.0.1:9876", which clients can dial.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// FreePort returns a TCP port that was free a moment ago, for processes that
// must keep their port across a restart. The broker also opens listenPort+1
// (HA) and, with the admin endpoint on "auto", listenPort+2, so the port and
// the two after it are checked. Ports come from below Linux's ephemeral range
// (32768-60999): a port the OS hands out for outgoing connections could be
// taken by any client socket between the check and the broker's (re)start.
func FreePort(t testing.TB) int {
	t.Helper()
	return porttest.Free(t, 3)
}

// logBuffer keeps the last lines written to it, for dumping into the test log
// when a test fails. It is safe for concurrent use and never blocks the writer
// on the test.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
	start int // ring start once full
	full  bool
}

const logBufferLines = 4000

func newLogBuffer() *logBuffer { return &logBuffer{lines: make([]string, 0, 256)} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		line = strings.TrimRight(line, "\n")
		if !b.full && len(b.lines) < logBufferLines {
			b.lines = append(b.lines, line)
			continue
		}
		b.full = true
		b.lines[b.start] = line
		b.start = (b.start + 1) % logBufferLines
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	if b.full {
		fmt.Fprintf(&sb, "(earlier lines dropped; last %d kept)\n", logBufferLines)
	}
	for i := range b.lines {
		sb.WriteString(b.lines[(b.start+i)%len(b.lines)])
		sb.WriteByte('\n')
	}
	return sb.String()
}
