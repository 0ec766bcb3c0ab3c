package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/kernel/pluginhost/plugintest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/tests"
)

// Out-of-process replication plugins in real processes (docs/plugins.md):
// plugins/quorum built, installed with `mqd plugin install`, and used by a
// master with two slaves through ha.mode=quorum or a swap.

// runMQD runs the mqd binary to its end and returns its exit code and output.
func runMQD(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tests.MQDBinary(t), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("mqd %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

// installQuorum builds plugins/quorum and installs it with the CLI into a
// fresh plugin directory, which it returns.
func installQuorum(t *testing.T) string {
	t.Helper()
	src := plugintest.Build(t, "./plugins/quorum", t.TempDir())
	dir := filepath.Join(t.TempDir(), "plugins")
	code, out := runMQD(t, "plugin", "install", src, "--dir", dir)
	if code != 0 || !strings.Contains(out, "installed quorum") || !strings.Contains(out, "plugin.quorum.acks") {
		t.Fatalf("mqd plugin install: exit %d\n%s", code, out)
	}
	return dir
}

// adminAddrOf is the admin endpoint of p's current run.
func adminAddrOf(t *testing.T, p *tests.Process) string {
	t.Helper()
	m := adminAddrRe.FindAllStringSubmatch(p.Logs(), -1)
	if len(m) == 0 {
		t.Fatal("no admin endpoint in the logs")
	}
	return m[len(m)-1][1]
}

// pluginStatus reads GET /plugins/external of p.
func pluginStatus(t *testing.T, p *tests.Process, name string) pluginhost.Status {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + adminAddrOf(t, p) + "/plugins/external")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sts []pluginhost.Status
	if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	return pluginhost.Status{}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func sendStatus(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, body string) primitive.SendStatus {
	t.Helper()
	res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
	if err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
	return res.Status
}

// TestQuorumPlugin: a SYNC master whose mode is ha.quorum (K=1) with two
// slaves acknowledges with one slave down and answers FLUSH_SLAVE_TIMEOUT
// with both down; the plugin SIGKILLed is restarted; `mqd plugin remove`
// is refused while it runs; mqd SIGKILLed leaves no plugin process; a
// tampered binary is reported by `mqd plugin verify` and refused at start.
func TestQuorumPlugin(t *testing.T) {
	dir := installQuorum(t)
	c := Start(t, Options{Mode: "sync", Namesrvs: 1, Brokers: []string{"broker-a", "broker-a-s"},
		BrokerExtra: map[string][]string{"broker-a": {"plugins.dir=" + dir, "ha.mode=quorum", "plugin.quorum.acks=1", "store.syncFlushTimeout=1000"}}})
	m := c.Master("a")
	s2 := c.AddBroker(t, "broker-a-s2", "broker-a-s", "brokerId=2")
	waitLog(t, m, "HA: slave accepted", 2, 30*time.Second)
	if !strings.Contains(m.Logs(), `"mode":"ha.quorum"`) {
		t.Fatal("the master does not say it runs ha.quorum")
	}
	topic := tests.UniqueName("QUORUM")
	c.CreateTopic(t, "a", topic, 4)
	p := tests.NewProducer(t, c.NS(), producer.WithRetry(0))
	if st := sendStatus(t, p, topic, "both up"); st != primitive.SendOK {
		t.Fatalf("two slaves: %v", st)
	}

	// The plugin is in use: it cannot be removed, and list shows it running.
	if code, out := runMQD(t, "plugin", "remove", "quorum", "--dir", dir); code != 1 || !strings.Contains(out, "in use") {
		t.Fatalf("plugin remove while in use: exit %d\n%s", code, out)
	}
	if code, out := runMQD(t, "plugin", "list", "--dir", dir, "--admin", adminAddrOf(t, m)); code != 0 || !strings.Contains(out, "running") {
		t.Fatalf("plugin list: exit %d\n%s", code, out)
	}

	s2.Kill()
	if st := sendStatus(t, p, topic, "one slave down"); st != primitive.SendOK {
		t.Fatalf("K=1 with one of two slaves down: %v", st)
	}
	c.Slave("a").Kill()
	if st := sendStatus(t, p, topic, "both down"); st != primitive.SendFlushSlaveTimeout {
		t.Fatalf("K=1 with both slaves down: %v, want FLUSH_SLAVE_TIMEOUT", st)
	}
	c.Slave("a").Restart()
	tests.WaitFor(t, 30*time.Second, func() bool { return sendStatus(t, p, topic, "slave back") == primitive.SendOK }, "SEND_OK once a slave is back")

	// The plugin SIGKILLed is restarted.
	st := pluginStatus(t, m, "quorum")
	if st.State != pluginhost.StateRunning || !alive(st.PID) {
		t.Fatalf("plugin status %+v", st)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var st2 pluginhost.Status
	tests.WaitFor(t, 30*time.Second, func() bool {
		st2 = pluginStatus(t, m, "quorum")
		return st2.Crashes == 1 && st2.State == pluginhost.StateRunning && st2.PID != st.PID
	}, "plugin restarted after SIGKILL")
	tests.WaitFor(t, 30*time.Second, func() bool { return sendStatus(t, p, topic, "after plugin restart") == primitive.SendOK }, "SEND_OK after the plugin restart")
	if !strings.Contains(m.Logs(), "plugin down; restarting it") {
		t.Fatal("the crash is not in the log")
	}
	resp, err := http.Get("http://" + adminAddrOf(t, m) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`mqd_plugin_crashes_total{kind="ha",plugin="quorum"} 1`, `mqd_plugin_up{kind="ha",plugin="quorum"} 1`} {
		if !strings.Contains(string(metrics), line) {
			t.Fatalf("/metrics lacks %s", line)
		}
	}

	// mqd SIGKILLed: its plugin goes too.
	m.Kill()
	tests.WaitFor(t, 5*time.Second, func() bool { return !alive(st2.PID) }, "plugin process %d gone after mqd was SIGKILLed", st2.PID)

	// A tampered binary: verify reports it, a start refuses it.
	f, err := os.OpenFile(filepath.Join(dir, "mqd-plugin-quorum"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	if code, out := runMQD(t, "plugin", "verify", "--dir", dir); code != 1 || !strings.Contains(out, "MISMATCH quorum") {
		t.Fatalf("plugin verify after tampering: exit %d\n%s", code, out)
	}
	code, out := runMQD(t, "broker", "-c", c.Files["broker-a"], "-n", c.NamesrvArg,
		"--set", "plugins.dir="+dir, "--set", "ha.mode=quorum",
		"--set", "listenPort="+strconv.Itoa(tests.FreePort(t)), "--set", "haListenPort="+strconv.Itoa(tests.FreePort(t)),
		"--set", "storePathRootDir="+filepath.Join(t.TempDir(), "store"), "--set", "admin.listen=")
	if code == 0 || !strings.Contains(out, "not the one installed") {
		t.Fatalf("broker start with a tampered plugin: exit %d\n%s", code, out)
	}
}

// TestQuorumSwapUnderLoad: an ASYNC_MASTER with two slaves swaps to the
// plugin's mode and back four times while 64 Go-client senders send, by each
// of the four ways an operator has (mqd swap, updateBrokerConfig -k
// ha.mode, SIGHUP after editing the file): no send fails and every
// acknowledged message is consumed.
func TestQuorumSwapUnderLoad(t *testing.T) {
	dir := installQuorum(t)
	c := Start(t, Options{Mode: "async", Namesrvs: 1, Brokers: []string{"broker-a", "broker-a-s"},
		BrokerExtra: map[string][]string{"broker-a": {"plugins.dir=" + dir}}})
	m := c.Master("a")
	c.AddBroker(t, "broker-a-s2", "broker-a-s", "brokerId=2")
	waitLog(t, m, "HA: slave accepted", 2, 30*time.Second)
	topic := tests.UniqueName("QUORUM_SWAP")
	c.CreateTopic(t, "a", topic, 8)
	admin := adminAddrOf(t, m)

	stop := make(chan struct{})
	l, wg := runLoad(t, c.NS(), topic, 64, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= 500 }, "500 SEND_OK before the swaps")
	swaps := 0
	swapped := func(to string) {
		t.Helper()
		swaps++
		waitLog(t, m, "replication mode swapped", swaps, 60*time.Second)
		if st, _ := haStatus(t, m); st.Mode != to {
			t.Fatalf("mode after swap %d: %q, want %s", swaps, st.Mode, to)
		}
		at := okCount(l)
		tests.WaitFor(t, 30*time.Second, func() bool { return okCount(l) >= at+300 }, "300 SEND_OK under %s", to)
	}

	if code, out := runMQD(t, "swap", "ha", "quorum", "--admin", admin); code != 0 {
		t.Fatalf("mqd swap ha quorum: exit %d\n%s", code, out)
	}
	swapped("ha.quorum")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	resp, err := newRemote(t).c.Invoke(ctx, m.BrokerAddr, remoting.NewRequest(remoting.UpdateBrokerConfig, nil, []byte("ha.mode=async\n")))
	cancel()
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("updateBrokerConfig ha.mode=async: %v %+v", err, resp)
	}
	swapped("ha.async")

	data, err := os.ReadFile(c.Files["broker-a"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Files["broker-a"], append(data, []byte("\nha.mode=quorum\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	swapped("ha.quorum")

	if code, out := runMQD(t, "swap", "ha", "async", "--admin", admin); code != 0 {
		t.Fatalf("mqd swap ha async: exit %d\n%s", code, out)
	}
	swapped("ha.async")

	close(stop)
	wg.Wait()
	stopped = true
	l.mu.Lock()
	failed := append([]string(nil), l.failed...)
	want := l.ok
	l.mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d failed sends across the swaps, first: %s", len(failed), failed[0])
	}
	if strings.Contains(m.Logs(), "swap abandoned") || strings.Contains(m.Logs(), "reload refused") {
		t.Fatal("a swap was abandoned or a reload refused")
	}
	t.Logf("%d sends, 0 failed, across 4 swaps", len(want))
	consumeAll(t, c.NS(), topic, want, 90*time.Second)
}

var haAddrRe = regexp.MustCompile(`"haAddr":"([^"]+)"`)

// TestStaticDiscovery: a SYNC_MASTER's slave that finds its master through
// discovery.static, built in and out of process (plugins/staticdiscovery
// installed as discovery.extstatic), with no name server telling it:
// it replicates (sends get SEND_OK from the SYNC_MASTER) and copies the
// master's topic configs.
func TestStaticDiscovery(t *testing.T) {
	for _, mode := range []string{"static", "extstatic"} {
		t.Run(mode, func(t *testing.T) {
			c := Start(t, Options{Mode: "sync", Namesrvs: 1, Brokers: []string{"broker-a"}})
			m := c.Master("a")
			ha := haAddrRe.FindStringSubmatch(m.Logs())
			if ha == nil {
				t.Fatal("no HA address in the master's log")
			}
			_, port, err := net.SplitHostPort(ha[1])
			if err != nil {
				t.Fatal(err)
			}
			haAddr := "127.0.0.1:" + port
			extra := []string{"discovery.mode=" + mode, "namesrvAddr="}
			if mode == "static" {
				extra = append(extra, "discovery.static.masterAddr="+m.BrokerAddr, "discovery.static.masterHaAddr="+haAddr)
			} else {
				src := plugintest.Build(t, "./plugins/staticdiscovery", t.TempDir())
				dir := filepath.Join(t.TempDir(), "plugins")
				if code, out := runMQD(t, "plugin", "install", src, "--dir", dir); code != 0 {
					t.Fatalf("install: exit %d\n%s", code, out)
				}
				extra = append(extra, "plugins.dir="+dir, "plugin.extstatic.masterAddr="+m.BrokerAddr, "plugin.extstatic.masterHaAddr="+haAddr)
			}
			s := c.AddBroker(t, "broker-a-s", "broker-a-s", extra...)
			waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
			topic := tests.UniqueName("STATIC_DISC")
			c.CreateTopic(t, "a", topic, 4)
			p := tests.NewProducer(t, c.NS(), producer.WithRetry(0))
			if st := sendStatus(t, p, topic, "replicated"); st != primitive.SendOK {
				t.Fatalf("SYNC_MASTER with a statically found slave: %v", st)
			}
			tests.WaitFor(t, 30*time.Second, func() bool {
				data, _ := os.ReadFile(filepath.Join(c.Stores["broker-a-s"], "config", "topics.json"))
				return strings.Contains(string(data), topic)
			}, "the slave copied the master's topic configs")
			if strings.Contains(s.Logs(), "register broker") {
				t.Fatal("a statically configured slave tried to register with name servers")
			}
		})
	}
}
