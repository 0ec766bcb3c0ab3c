package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
)

// daemon is a running mqd whose JSON log lines arrive on lines.
type daemon struct {
	cmd     *exec.Cmd
	lines   chan map[string]any
	done    chan struct{} // closed once the process has been waited for
	waitErr error
}

func startDaemon(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(mqdBin, append(args, "--log-format", "json")...)
	cmd.Dir = dir
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MQD_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan map[string]any, 100), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"message": "non-JSON: " + sc.Text()}
			}
			d.lines <- m
		}
		close(d.lines)
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails harmlessly once it has exited
		for range d.lines {
		}
		<-d.done
	})
	return d
}

// waitFor returns the first log line with the message, failing after 20 s or
// when the process exits.
func (d *daemon) waitFor(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-d.lines:
			if !ok {
				t.Fatalf("mqd exited before logging %q", msg)
			}
			if m["message"] == msg {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q log line within 20 s", msg)
		}
	}
}

func (d *daemon) wait(t *testing.T) int {
	t.Helper()
	for range d.lines {
	}
	select {
	case <-d.done:
		err := d.waitErr
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(40 * time.Second):
		t.Fatal("mqd did not exit")
	}
	return -1
}

// TestEmbeddedDaemonLifecycle runs the embedded default on free ports: both apps
// listen, "ready" follows, SIGHUP is answered with a warning and SIGTERM stops
// it with exit 0. Data goes under ./data of the working directory.
func TestEmbeddedDaemonLifecycle(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, "--set", "namesrv.listenPort=0", "--set", "broker.listenPort=0")
	roles := map[string]bool{}
	for len(roles) < 2 {
		m := d.waitFor(t, "listening")
		roles[m["role"].(string)] = true
	}
	if !roles["namesrv"] || !roles["broker"] {
		t.Fatalf("listening roles = %v", roles)
	}
	ready := d.waitFor(t, "ready")
	if ready["mode"] != "embedded" {
		t.Errorf("ready = %v", ready)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "reload: configuration unchanged")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "stopping")
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "store")); err != nil {
		t.Errorf("no ./data/store: %v", err)
	}
}

func TestNamesrvDaemonStopsOnSIGINT(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "namesrv", "--set", "listenPort=0")
	if m := d.waitFor(t, "listening"); m["role"] != "namesrv" {
		t.Errorf("listening = %v", m)
	}
	d.waitFor(t, "ready")
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
}

// TestStandaloneController: `mqd controller` (like mqcontroller) serves the
// controller's requests on its peer address, leads a group of one, and
// stops on SIGTERM.
func TestStandaloneController(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemon(t, t.TempDir(), "controller", "--set", "controllerDLegerPeers=n0-"+addr,
		"--set", "controllerDLegerSelfId=n0", "--set", "controllerStorePath=./ctrl", "--set", "listenPort=0")
	d.waitFor(t, "ready")
	d.waitFor(t, "controller became leader")
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, addr, remoting.NewRequest(remoting.ControllerGetMetadataInfo, nil, nil))
	if err != nil || resp.Code != remoting.Success || resp.Ext("controllerLeaderId") != "n0" || resp.Ext("controllerLeaderAddress") != addr {
		t.Fatalf("GET_METADATA_INFO: %v %+v", err, resp)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}
