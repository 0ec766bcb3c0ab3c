package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mqd/mqd/kernel/porttest"
)

// freePort returns a port whose next two are free too (a broker also opens
// listenPort+1 for HA and +2 for the admin endpoint), from below Linux's
// ephemeral range so that no client socket takes it before the daemon starts.
func freePort(t *testing.T) int {
	t.Helper()
	return porttest.Free(t, 3)
}

// TestAdminEndpointSubcommands runs a broker-only daemon on a chosen port and
// asks its admin endpoint (broker port + 2) for health, modules and the live
// configuration through mqd's own subcommands; a non-loopback admin address
// without a token keeps the daemon from starting.
func TestAdminEndpointSubcommands(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	props := filepath.Join(dir, "broker.properties")
	writeProps := func(text string) {
		t.Helper()
		if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeProps("brokerName=ops-a\nautoCreateTopicEnable=true\n")
	d := startDaemon(t, dir, "broker", "-c", props, "-n", "127.0.0.1:1", "--set", "broker.listenPort="+strconv.Itoa(port),
		"--set", "broker.metricsAddr=")
	d.waitFor(t, "ready")
	addr := "127.0.0.1:" + strconv.Itoa(port+2)

	r := run(t, "", nil, "health", "--admin", addr).mustSucceed(t)
	contains(t, "mqd health", r.stdout, addr+": ready", "admin.http", "app.broker", "started")
	// --addr, the earlier name for health, plugins and config print --live,
	// still works but is no longer shown.
	r = run(t, "", nil, "health", "--addr", addr).mustSucceed(t)
	contains(t, "mqd health --addr", r.stdout, addr+": ready")
	if r := run(t, "", nil, "health", "--help").mustSucceed(t); strings.Contains(r.stdout, "--addr") {
		t.Errorf("health --help shows the deprecated --addr:\n%s", r.stdout)
	}
	r = run(t, "", nil, "plugins", "--addr", addr).mustSucceed(t)
	contains(t, "mqd plugins", r.stdout, `"id": "app.broker"`, `"started": true`)
	r = run(t, "", nil, "config", "print", "--live", "--addr", addr).mustSucceed(t)
	contains(t, "mqd config print --live", r.stdout, `"broker.listenPort"`, `"value": `+strconv.Itoa(port), `"source": "flag --set"`)
	// Without --addr, the address is derived from the same flags as the daemon's.
	r = run(t, "", nil, "health", "--role", "broker", "--set", "broker.listenPort="+strconv.Itoa(port)).mustSucceed(t)
	contains(t, "mqd health (derived address)", r.stdout, addr+": ready")

	// mqd reload: a live key applies; a key that cannot change live is
	// refused with the reason and nothing changes.
	writeProps("brokerName=ops-a\nautoCreateTopicEnable=false\n")
	r = run(t, "", nil, "reload", "--addr", addr).mustSucceed(t)
	contains(t, "mqd reload (live key)", r.stdout, `"changed":["broker.autoCreateTopicEnable"]`)
	r = run(t, "", nil, "config", "print", "--live", "--addr", addr).mustSucceed(t)
	if i := strings.Index(r.stdout, `"broker.autoCreateTopicEnable"`); i < 0 || !strings.Contains(r.stdout[i:min(len(r.stdout), i+200)], `"value": false`) {
		t.Fatalf("the running configuration does not show the reloaded value:\n%s", r.stdout)
	}
	writeProps("brokerName=ops-b\nautoCreateTopicEnable=true\n")
	r = run(t, "", nil, "reload", "--admin", addr)
	if r.code != 1 || !strings.Contains(r.stdout, "broker.brokerName") || !strings.Contains(r.stdout, "cannot change on a running process") {
		t.Fatalf("reload of a non-live key: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// mqd swap: without a connected slave the sync mode cannot catch up, so
	// the swap is refused with the reason and the async mode stays.
	r = run(t, "", nil, "swap", "ha", "sync", "--admin", addr)
	if r.code != 1 || !strings.Contains(r.stdout, "no slave is connected") || !strings.Contains(r.stderr, "swap ha sync refused") {
		t.Fatalf("swap to sync without a slave: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "swap", "ha", "async", "--admin", addr).mustSucceed(t)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	r = run(t, "", nil, "health", "--addr", addr)
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("health of a stopped daemon: exit %d, stderr %q", r.code, r.stderr)
	}

	r = run(t, "", nil, "broker", "-n", "127.0.0.1:1", "--set", "broker.listenPort=0", "--set", "admin.listen=0.0.0.0:0")
	if r.code == 0 || !strings.Contains(r.stderr, "admin.allowRemote=true") {
		t.Fatalf("non-loopback admin without a token: exit %d, stderr %q", r.code, r.stderr)
	}
}
