package tests

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines of a process's life: it must log "ready" within readyTimeout of
// being started, and exit within stopTimeout of SIGTERM before it is killed.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// MQDBinary builds cmd/mqd once per test binary and returns its path. Cleanup
// removes the build directory (call it from TestMain after m.Run).
func MQDBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mqd-tests-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "mqd")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/mqd/mqd/cmd/mqd")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mqd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("%v", buildErr)
	}
	return buildPath
}

// CleanupBinary removes what MQDBinary built.
func CleanupBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Process is a running mqd binary whose JSON log lines on stderr the harness
// reads: each app logs "listening" with its "role" and "addr" (the broker also
// "advertised"), and the process logs "ready" once everything is up.
type Process struct {
	// NameSrvAddr and BrokerAddr are the dialable addresses taken from the
	// "listening" lines of the current run ("" for a role it does not run).
	NameSrvAddr string
	BrokerAddr  string

	t    testing.TB
	args []string
	dir  string // working directory: ./data of a default config lands here
	logs *logBuffer
	runs int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
	err  error         // exit status of the current run
}

// StartProcess starts mqd with args and waits for its "ready" line. t.Cleanup
// stops it (SIGTERM, then SIGKILL after a deadline) and, if the test failed,
// copies its log into the test log.
func StartProcess(t testing.TB, args ...string) *Process {
	t.Helper()
	bin := MQDBinary(t)
	if e := Engine(); e != "" && len(args) > 0 {
		// A broker, alone or embedded, on the engine under test; later
		// --set values (a test's own) still win.
		engine := []string{"--set", "store.engine=" + e}
		switch {
		case args[0] == "broker":
			args = append(append([]string{"broker"}, engine...), args[1:]...)
		case strings.HasPrefix(args[0], "-"): // embedded
			args = append(engine, args...)
		}
	}
	p := &Process{t: t, args: append([]string{bin}, args...), dir: t.TempDir(), logs: newLogBuffer()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mqd %s logs:\n%s", strings.Join(args, " "), p.logs.String())
		}
	})
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("stop mqd: %v", err)
		}
	})
	if err := p.start(); err != nil {
		t.Fatalf("start mqd %s: %v", strings.Join(args, " "), err)
	}
	return p
}

func (p *Process) start() error {
	p.runs++
	fmt.Fprintf(p.logs, "----- run %d: %s\n", p.runs, strings.Join(p.args, " "))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Dir = p.dir
	cmd.Env = cleanEnv()
	cmd.Stdout = p.logs
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()

	ready := make(chan struct{})
	var addrMu sync.Mutex
	var nsAddr, brAddr string
	go func() {
		// Read every line until EOF, then reap the process: Wait must not run
		// before the pipe is drained.
		readLogLines(stderr, p.logs, func(rec map[string]any) {
			switch rec["message"] {
			case "listening":
				addr, _ := rec["addr"].(string)
				if adv, ok := rec["advertised"].(string); ok && adv != "" {
					addr = adv
				}
				addrMu.Lock()
				switch rec["role"] {
				case "namesrv":
					nsAddr = loopbackAddr(addr)
				case "broker":
					brAddr = loopbackAddr(addr)
				}
				addrMu.Unlock()
			case "ready":
				select {
				case <-ready:
				default:
					close(ready)
				}
			}
		})
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		addrMu.Lock()
		p.NameSrvAddr, p.BrokerAddr = nsAddr, brAddr
		addrMu.Unlock()
		return nil
	case <-done:
		return fmt.Errorf("exited before ready: %v", p.exitErr())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("not ready within %s", readyTimeout)
	}
}

// readLogLines copies r into logs line by line and hands each JSON object line
// to onRecord.
func readLogLines(r io.Reader, logs io.Writer, onRecord func(map[string]any)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		logs.Write([]byte(string(line) + "\n")) // copy: line aliases the scanner's buffer
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil {
			onRecord(rec)
		}
	}
	// Drain whatever remains (an over-long line) so the child never blocks.
	_, _ = io.Copy(logs, r)
}

// cleanEnv is the test's environment without MQD_* variables, so that a
// developer's shell cannot change what the tests run.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MQD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after
// stopTimeout). It fails the test if the process did not exit cleanly.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Fatalf("stop mqd: %v", err)
	}
}

func (p *Process) stop() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return p.finish(fmt.Errorf("had exited by itself: %v", p.exitErr()))
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return p.finish(p.exitErr())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return p.finish(fmt.Errorf("did not exit within %s of SIGTERM; killed", stopTimeout))
	}
}

func (p *Process) finish(err error) error {
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
	return err
}

// Kill sends SIGKILL and waits for the process to be gone: a crash, with
// nothing flushed by the process itself.
func (p *Process) Kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		p.t.Fatalf("kill mqd: not running")
	}
	_ = cmd.Process.Kill()
	<-done
	var ee *exec.ExitError
	if err := p.exitErr(); err != nil && !errors.As(err, &ee) {
		p.t.Fatalf("kill mqd: %v", err)
	}
	p.finish(nil)
}

// Restart starts the process again with the same arguments and working
// directory (so the same data), after Stop or Kill.
func (p *Process) Restart() {
	p.t.Helper()
	p.RestartWith()
}

// RestartWith is Restart with more arguments, appended to the first run's
// for this run and later ones (a later --set wins: a slave restarted with
// --set brokerId=0 --set brokerRole=ASYNC_MASTER is promoted).
func (p *Process) RestartWith(extra ...string) {
	p.t.Helper()
	p.mu.Lock()
	running := p.cmd != nil
	p.mu.Unlock()
	if running {
		p.t.Fatalf("restart mqd: still running; Stop or Kill it first")
	}
	p.args = append(p.args, extra...)
	if err := p.start(); err != nil {
		p.t.Fatalf("restart mqd: %v", err)
	}
}

// Logs returns what the process has logged so far, all runs together.
func (p *Process) Logs() string { return p.logs.String() }
