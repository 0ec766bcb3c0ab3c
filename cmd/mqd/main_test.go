package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mqd/mqd/configs"
)

// mqdBin is the binary under test, built once by TestMain.
var mqdBin string

const testVersion = "v0.0.0-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mqd-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mqdBin = filepath.Join(dir, "mqd")
	build := exec.Command(goTool(), "build", "-o", mqdBin, "-ldflags", "-X main.version="+testVersion, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mqd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs mqd with args in dir (a fresh temp dir if ""), with the environment
// cleared of MQD_* variables plus extraEnv.
func run(t *testing.T, dir string, extraEnv []string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(mqdBin, args...)
	cmd.Dir = dir
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MQD_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mqd %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

func TestVersion(t *testing.T) {
	r := run(t, "", nil, "version").mustSucceed(t)
	if !strings.HasPrefix(r.stdout, "mqd "+testVersion) {
		t.Errorf("version = %q", r.stdout)
	}
	contains(t, "version", r.stdout, runtime.Version())
}

func TestHelpAndUsageErrors(t *testing.T) {
	r := run(t, "", nil, "help").mustSucceed(t)
	contains(t, "help", r.stdout, "mqd broker", "mqd config print", "dev", "completion")
	run(t, "", nil, "--help").mustSucceed(t)
	r = run(t, "", nil, "config", "print", "--help").mustSucceed(t)
	contains(t, "config print --help", r.stdout, "--role", "--live", "--admin")
	r = run(t, "", nil, "completion", "bash").mustSucceed(t)
	contains(t, "completion bash", r.stdout, "bash completion")
	// What the completion scripts ask for: values of flags and arguments.
	r = run(t, "", nil, "__complete", "config", "print", "--role", "").mustSucceed(t)
	contains(t, "completing --role", r.stdout, "embedded\nbroker\nnamesrv\n")
	r = run(t, "", nil, "__complete", "swap", "ha", "").mustSucceed(t)
	contains(t, "completing swap ha", r.stdout, "sync\nasync\n")

	// A usage mistake exits 2 with one line naming the command and a pointer
	// to --help, as mqadmin and mqbench do.
	for _, args := range [][]string{
		{"bogus"}, {"--bogus"}, {"config"}, {"config", "show"}, {"namesrv", "-n", "x:1"}, {"version", "extra"},
		{"swap"}, {"swap", "ha", "Fast/er"}, {"swap", "db", "sync"}, {"reload", "extra"}, {"config", "print", "--role", "client"},
		{"config", "print", "--live", "--format", "properties"}, {"broker", "--set"},
	} {
		r := run(t, "", nil, args...)
		if r.code != 2 {
			t.Errorf("mqd %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stderr, "mqd") || !strings.Contains(r.stderr, "--help' for usage") || strings.Count(r.stderr, "\n") != 2 {
			t.Errorf("mqd %v: stderr %q", args, r.stderr)
		}
	}
}

// seedCopy copies the seed broker-a.properties (absolute /usr/local paths,
// a trailing space after a number) into a temp dir.
func seedCopy(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "kernel", "config", "testdata", "broker-a.properties"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "broker-a.properties")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrintSeedFile(t *testing.T) {
	seed := seedCopy(t)
	dir := t.TempDir()
	r := run(t, dir, []string{"MQD_BROKER_BROKERCLUSTERNAME=EnvCluster"},
		"config", "print", "--role", "broker", "--format", "properties", "-c", seed, "--set", "brokerName=broker-z", "--set", "store.deleteWhen=03").mustSucceed(t)
	contains(t, "config print", r.stdout,
		"store.mappedFileSizeCommitLog = 1073741824  # file "+seed+"\n",
		"store.storePathRootDir = /usr/local/rocketmq/data/store  # file "+seed+"\n",
		"broker.namesrvAddr = 10.211.55.4:9876;10.211.55.5:9876;10.211.55.6:9876  # file "+seed+"\n",
		"broker.brokerName = broker-z  # flag --set\n",
		"store.deleteWhen = 03  # flag --set\n",
		"broker.brokerClusterName = EnvCluster  # env MQD_BROKER_BROKERCLUSTERNAME\n",
		"log.level = info  # profile default\n",
	)
	if strings.Contains(r.stdout, "namesrv.") {
		t.Errorf("--role broker printed name server keys")
	}
	contains(t, "stderr", r.stderr, "accepted but not implemented", "sendMessageThreadPoolNums")
	if n := strings.Count(r.stderr, "\n"); n != 1 {
		t.Errorf("stderr has %d lines, want one warning:\n%s", n, r.stderr)
	}
	// Printing the configuration creates nothing, here or at the file's paths.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("config print created %v", entries)
	}
}

func TestConfigPrintRocketMQNamesInEnvAndSet(t *testing.T) {
	r := run(t, "", []string{"MQD_LISTENPORT=20911"}, "config", "print", "--role", "broker", "--format", "properties", "--set", "namesrvAddr=ns:9876").mustSucceed(t)
	contains(t, "config print", r.stdout,
		"broker.listenPort = 20911  # env MQD_LISTENPORT\n",
		"broker.namesrvAddr = ns:9876  # flag --set\n")
	r = run(t, "", nil, "config", "print", "--role", "namesrv", "--format", "properties", "--set", "listenPort=19876").mustSucceed(t)
	contains(t, "config print", r.stdout, "namesrv.listenPort = 19876  # flag --set\n")
}

func TestConfigPrintEmbeddedNamesrvAddr(t *testing.T) {
	r := run(t, "", nil, "config", "print", "--format", "properties", "--set", "namesrv.listenPort=19876").mustSucceed(t)
	contains(t, "config print", r.stdout,
		"broker.namesrvAddr = 127.0.0.1:19876  # embedded (namesrv.listenPort)\n",
		"namesrv.listenPort = 19876  # flag --set\n",
		"broker.listenPort = 10911  # profile default\n",
		"store.storePathRootDir = ./data/store  # profile default\n")
	r = run(t, "", nil, "config", "print", "--format", "properties", "-n", "10.0.0.1:9876").mustSucceed(t)
	contains(t, "config print", r.stdout, "broker.namesrvAddr = 10.0.0.1:9876  # flag -n\n")
	r = run(t, "", nil, "config", "print").mustSucceed(t)
	contains(t, "config print table", r.stdout, "KEY", "VALUE", "SOURCE", "broker.namesrvAddr")
}

func TestUnknownKeyFails(t *testing.T) {
	r := run(t, "", nil, "config", "print", "--role", "broker", "--set", "listenPot=1")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	contains(t, "stderr", r.stderr, `unknown key "listenPot"`, `did you mean "listenPort"?`)
	if strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "goroutine") {
		t.Errorf("want one error line, got:\n%s", r.stderr)
	}

	// The daemon refuses to start on a misspelt key in a properties file.
	bad := filepath.Join(t.TempDir(), "broker.properties")
	if err := os.WriteFile(bad, []byte("brokerName=b\nautoCreateTopicEnabel=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", nil, "broker", "-c", bad)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	contains(t, "stderr", r.stderr, bad+" line 2", `did you mean "autoCreateTopicEnable"?`)

	r = run(t, "", []string{"MQD_BROKER_LISTENPROT=1"}, "config", "print")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	contains(t, "stderr", r.stderr, "env MQD_BROKER_LISTENPROT", "did you mean MQD_BROKER_LISTENPORT?")

	r = run(t, "", nil, "config", "print", "--set", "broker.listenPort=abc")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	contains(t, "stderr", r.stderr, "broker.listenPort", `"abc"`, "flag --set")
}

func TestShippedProfilesAndSamplesLoad(t *testing.T) {
	for _, p := range configs.Profiles() {
		r := run(t, "", nil, "config", "print", "--format", "properties", "--profile", p)
		if r.code != 0 {
			t.Errorf("profile %s: exit %d: %s", p, r.code, r.stderr)
		}
	}
	r := run(t, "", nil, "config", "print", "--format", "properties", "--profile", "dev").mustSucceed(t)
	contains(t, "dev profile", r.stdout, "log.level = debug  # profile dev\n")
	r = run(t, "", nil, "config", "print", "--profile", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown profile") {
		t.Errorf("unknown profile: exit %d, %s", r.code, r.stderr)
	}

	for sample, role := range map[string]string{"broker.conf": "broker", "namesrv.properties": "namesrv"} {
		// run works in a temp dir, so the path must be absolute.
		abs, _ := filepath.Abs(filepath.Join("..", "..", "configs", "rocketmq", sample))
		r := run(t, "", nil, "config", "print", "--role", role, "-c", abs)
		if r.code != 0 {
			t.Errorf("sample %s: exit %d: %s", sample, r.code, r.stderr)
		}
	}
}

// TestControllerSamplesLoad: the controller-mode layout under
// configs/controller loads without unknown keys, in each role.
func TestControllerSamplesLoad(t *testing.T) {
	dir := filepath.Join("..", "..", "configs", "controller")
	for _, c := range []struct{ role, file, want string }{
		{"namesrv", "namesrv-n1.properties", "controller.controllerDLegerSelfId"},
		{"controller", "namesrv-n2.properties", "controller.controllerDLegerPeers"},
		{"broker", "broker-a-n0.properties", "broker.enableControllerMode"},
	} {
		abs, err := filepath.Abs(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		r := run(t, "", nil, "config", "print", "--role", c.role, "-c", abs).mustSucceed(t)
		contains(t, c.file, r.stdout, c.want)
		if strings.Contains(r.stderr, "not implemented") || strings.Contains(r.stderr, "unknown") {
			t.Errorf("%s: %s", c.file, r.stderr)
		}
	}
	r := run(t, "", nil, "controller", "--help").mustSucceed(t)
	contains(t, "mqd controller --help", r.stdout, "mqcontroller")
}
