package cli

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/waittest"
	_ "github.com/mqd/mqd/plugins/all" // app.namesrv, app.controller, app.broker
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/tests"
)

// The controller-mode commands run against a name server with an embedded
// controller (enableControllerInNamesrv) and a broker in controller mode,
// each in its own kernel in this process, as `mqd namesrv` and `mqd broker`
// would run them.

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// controllerCluster is a name server embedding a controller, and broker-a
// in controller mode.
type controllerCluster struct {
	ns         string // name server address
	controller string // the controller's peer address
	broker     string // broker-a's address
}

// startKernel loads and starts one module in a kernel of role; t.Cleanup
// stops it.
func startKernel(t *testing.T, logs *syncBuffer, role string, id kernel.ModuleID, sets ...string) *kernel.Kernel {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Role: role, Env: []string{}, Sets: sets})
	if err != nil {
		t.Fatalf("%s config: %v", role, err)
	}
	k := kernel.New(cfg, zerolog.New(logs).With().Timestamp().Str("kernel", role).Logger())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := k.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", role, err)
		}
	})
	if err := k.Load(context.Background(), id); err != nil {
		t.Fatalf("load %s: %v", role, err)
	}
	if err := k.Start(); err != nil {
		t.Fatalf("start %s: %v", role, err)
	}
	return k
}

func startControllerCluster(t *testing.T) *controllerCluster {
	t.Helper()
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	cc := &controllerCluster{controller: "127.0.0.1:" + strconv.Itoa(tests.FreePort(t))}
	k := startKernel(t, logs, "namesrv", "app.namesrv",
		"namesrv.listenPort=0",
		"namesrv.kvConfigPath="+filepath.Join(t.TempDir(), "kvConfig.json"),
		"namesrv.enableControllerInNamesrv=true",
		"controller.controllerDLegerPeers=n0-"+cc.controller,
		"controller.controllerDLegerSelfId=n0",
		"controller.controllerStorePath="+t.TempDir())
	for _, m := range k.Loaded() {
		if a, ok := m.(interface{ Addr() string }); ok && m.MQDModule().ID == "app.namesrv" {
			_, port, _ := net.SplitHostPort(a.Addr())
			cc.ns = "127.0.0.1:" + port
		}
	}
	if cc.ns == "" {
		t.Fatal("name server reports no address")
	}
	port := tests.FreePort(t)
	cc.broker = "127.0.0.1:" + strconv.Itoa(port)
	// Start returns once the controller has given the broker its role.
	startKernel(t, logs, "broker", "app.broker",
		"broker.listenPort="+strconv.Itoa(port),
		"broker.brokerIP1=127.0.0.1",
		"broker.namesrvAddr="+cc.ns,
		"broker.metricsAddr=127.0.0.1:0",
		"store.storePathRootDir="+t.TempDir(),
		"broker.enableControllerMode=true",
		"broker.controllerAddr="+cc.controller)
	return cc
}

// waitOutput runs a command until it succeeds with output that ok accepts.
func waitOutput(t *testing.T, ns string, ok func(string) bool, args ...string) string {
	t.Helper()
	var out, errs string
	var code int
	waittest.For(t, 30*time.Second, func() bool {
		out, errs, code = mqadmin(t, ns, args...)
		return code == 0 && ok(out)
	}, "mqadmin %s: last exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errs)
	return out
}

func TestControllerCommands(t *testing.T) {
	cc := startControllerCluster(t)
	ns := cc.ns

	t.Run("getControllerMetaData", func(t *testing.T) {
		want := "\n#ControllerGroup\tgroup1\n#ControllerLeaderId\tn0\n#ControllerLeaderAddress\t" + cc.controller +
			"\n#Peer:\tn0:" + cc.controller + "\n"
		// The controller serves on its peer port and on the name server's.
		for _, addr := range []string{cc.controller, ns} {
			if out := must(t, "", "getControllerMetaData", "-a", " "+addr+" "); out != want {
				t.Errorf("-a %s:\n got %q\nwant %q", addr, out, want)
			}
		}
		_, errs, code := mqadmin(t, "", "getControllerMetaData")
		if code != 2 || !strings.Contains(errs, `"controllerAddress" not set`) {
			t.Errorf("without -a: exit %d, stderr %q", code, errs)
		}
	})

	t.Run("getSyncStateSet", func(t *testing.T) {
		want := "\n#brokerName\tbroker-a\n#MasterBrokerId\t1\n#MasterAddr\t" + cc.broker +
			"\n#MasterEpoch\t1\n#SyncStateSetEpoch\t1\n#SyncStateSetNums\t1\n" +
			"\nInSyncReplica:\tReplicaIdentity{brokerName='broker-a', brokerId=1, brokerAddress='" + cc.broker + "', alive=true}\n"
		// -a takes the first of a list; -b needs no name server.
		waitOutput(t, "", func(out string) bool { return out == want },
			"getSyncStateSet", "-a", cc.controller+";127.0.0.1:1", "-b", "broker-a")
		// -c takes the broker names from the name server.
		waitOutput(t, ns, func(out string) bool { return out == want },
			"getSyncStateSet", "-a", cc.controller, "-c", "DefaultCluster")
		// An unknown broker name is no entry.
		if out := must(t, "", "getSyncStateSet", "-a", cc.controller, "-b", "nope"); out != "" {
			t.Errorf("unknown broker name: %q", out)
		}
		_, errs, code := mqadmin(t, ns, "getSyncStateSet", "-a", cc.controller, "-c", "NoSuchCluster")
		if code != 1 || !strings.Contains(errs, errNoCluster) {
			t.Errorf("unknown cluster: exit %d, stderr %q", code, errs)
		}
		_, errs, code = mqadmin(t, ns, "getSyncStateSet", "-a", cc.controller)
		if code != 2 || !strings.Contains(errs, "[brokerName clusterName]") {
			t.Errorf("neither -b nor -c: exit %d, stderr %q", code, errs)
		}
	})

	t.Run("getBrokerEpoch", func(t *testing.T) {
		// The master reports broker id 0 (MixAll.MASTER_ID), and its one
		// epoch ends at the commit log's max offset.
		re := regexp.MustCompile("^\n#clusterName\tDefaultCluster\n#brokerName\tbroker-a\n#brokerAddr\t" + regexp.QuoteMeta(cc.broker) +
			"\n#brokerId\t0\n#Epoch: EpochEntry\\{epoch=1, startOffset=0, endOffset=[0-9]+\\}\n$")
		out := waitOutput(t, ns, re.MatchString, "getBrokerEpoch", "-b", "broker-a")
		if got := must(t, ns, "getBrokerEpoch", "-c", "DefaultCluster"); !re.MatchString(got) {
			t.Errorf("-c DefaultCluster:\n%q", got)
		}
		if got := must(t, ns, "getBrokerEpoch", "-c", "NoSuchCluster"); got != "[error] "+errNoCluster {
			t.Errorf("unknown cluster: %q", got)
		}
		if got := must(t, ns, "getBrokerEpoch", "-b", "nope"); got != "" {
			t.Errorf("unknown broker name: %q", got)
		}
		t.Logf("getBrokerEpoch:%s", out)
	})

	t.Run("electMaster", func(t *testing.T) {
		// broker-a's replica 1 is master already: the controller answers
		// CONTROLLER_MASTER_STILL_EXIST, which fails the command.
		for _, bn := range [][]string{{"-bn", "broker-a"}, {"-bn=broker-a"}, {"--brokerName", "broker-a"}} {
			args := append([]string{"electMaster", "-a", cc.controller, "-b", "1", "-c", "DefaultCluster"}, bn...)
			out, errs, code := mqadmin(t, "", args...)
			if code != 1 || out != "" || strings.Count(errs, "\n") != 1 ||
				!strings.Contains(errs, "answered code 2011 (CONTROLLER_MASTER_STILL_EXIST): The old master 1 is still alive") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", bn, code, out, errs)
			}
		}
		// A replica that is not registered cannot be elected.
		_, errs, code := mqadmin(t, "", "electMaster", "-a", cc.controller, "-b", "7", "-bn", "broker-a", "-c", "DefaultCluster")
		if code != 1 || !strings.Contains(errs, "(CONTROLLER_ELECT_MASTER_FAILED)") {
			t.Errorf("electMaster -b 7: exit %d, stderr %q", code, errs)
		}
	})

	t.Run("getSyncStateSet -i", func(t *testing.T) {
		// -i repeats until the command's context ends.
		out := &syncBuffer{}
		e := &env{out: out, errOut: out, getenv: func(string) string { return "" }, now: time.Now}
		root := newRoot(e)
		ctx, cancel := context.WithCancel(context.Background())
		root.SetContext(ctx)
		done := make(chan int, 1)
		go func() {
			done <- cmdline.Execute(root, []string{"getSyncStateSet", "-a", cc.controller, "-b", "broker-a", "-i", "1"}, out, out)
		}()
		waittest.For(t, 10*time.Second, func() bool { return strings.Count(out.String(), "#brokerName\tbroker-a") >= 2 }, "two rounds")
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d: %s", code, out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("getSyncStateSet -i did not stop with its context")
		}
		e.admin().Close()
	})
}

// TestElectMasterOutput checks electMaster's output on a successful election
// against a stand-in controller that answers as RocketMQ's does, with
// fastjson's bare integer keys in the body.
func TestElectMasterOutput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := remoting.NewServer(remoting.ServerConfig{Logger: zerolog.Nop()})
	var mu sync.Mutex
	var got map[string]string
	srv.Handle(remoting.ControllerGetMetadataInfo, func(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
		r := remoting.NewResponse(remoting.Success, "")
		r.ExtFields = remoting.FieldsOf(map[string]string{"group": "g", "controllerLeaderId": "n0", "controllerLeaderAddress": addr,
			"isLeader": "true", "peers": "n0:" + addr + ";"})
		return r
	})
	srv.Handle(remoting.ControllerElectMaster, func(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
		mu.Lock()
		got = req.ExtFields.Map()
		mu.Unlock()
		r := remoting.NewResponse(remoting.Success, "")
		r.ExtFields = remoting.FieldsOf(map[string]string{"masterBrokerId": "2", "masterAddress": "127.0.0.1:30921", "masterEpoch": "3", "syncStateSetEpoch": "4"})
		r.Body = []byte(`{"brokerMemberGroup":{"brokerAddrs":{2:"127.0.0.1:30921",1:"127.0.0.1:30911"},"brokerName":"broker-a","cluster":"DefaultCluster"},"syncStateSet":[2]}`)
		return r
	})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	out := must(t, "", "electMaster", "-a", addr, "-b", "2", "-bn", "broker-a", "-c", "DefaultCluster")
	want := "\n#ClusterName\tDefaultCluster\n#BrokerName\tbroker-a\n#BrokerMasterAddr\t127.0.0.1:30921\n#MasterEpoch\t3\n#SyncStateSetEpoch\t4\n" +
		"\t#Broker\t1\t127.0.0.1:30911\n\t#Broker\t2\t127.0.0.1:30921\n"
	if out != want {
		t.Errorf("output\n got %q\nwant %q", out, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["invokeTime"] == "" {
		t.Errorf("no invokeTime in %v", got)
	}
	delete(got, "invokeTime")
	if want := map[string]string{"clusterName": "DefaultCluster", "brokerName": "broker-a", "brokerId": "2", "designateElect": "true"}; !reflect.DeepEqual(got, want) {
		t.Errorf("request ext fields %v, want %v", got, want)
	}
}

func TestExpandJavaShort(t *testing.T) {
	root := newRoot(&env{})
	for _, tc := range []struct{ in, want []string }{
		{[]string{"electMaster", "-bn", "x", "-b", "1"}, []string{"electMaster", "--brokerName", "x", "-b", "1"}},
		{[]string{"-n", "h:1", "electMaster", "-bn=x"}, []string{"-n", "h:1", "electMaster", "--brokerName=x"}},
		{[]string{"electMaster", "--", "-bn"}, []string{"electMaster", "--", "-bn"}},
		// Other commands keep -bn (pflag reads -b n there).
		{[]string{"getSyncStateSet", "-bn"}, []string{"getSyncStateSet", "-bn"}},
	} {
		if got := expandJavaShort(root, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.in, got, tc.want)
		}
	}
}
