package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
	"github.com/mqd/mqd/plugins/broker"
	"github.com/mqd/mqd/tests"
)

// These tests run mqadmin's commands through Main against an in-process name
// server and broker (tests.StartCluster) over real TCP, and check the tables
// against what the broker holds and the header lines against the Java tool's
// (testdata/*.golden, captured from RocketMQ 4.9.8's mqadmin).

func startCluster(t *testing.T) *tests.Cluster {
	t.Helper()
	// metricsAddr on a free port: the default 5557 is shared by every test.
	return tests.StartCluster(t, tests.ClusterOptions{Broker: []string{"broker.metricsAddr=127.0.0.1:0"}})
}

// mqadmin runs one command and returns stdout, stderr and the exit status.
func mqadmin(t *testing.T, ns string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{}, args...)
	if ns != "" {
		all = append(all, "-n", ns)
	}
	code := Main(all, IO{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return out.String(), errb.String(), code
}

// must runs a command that must succeed.
func must(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, errs, code := mqadmin(t, ns, args...)
	if code != 0 {
		t.Fatalf("mqadmin %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// mustOrUnsupported is must, but skips when the broker does not serve a code
// another part of mqd provides (REQUEST_CODE_NOT_SUPPORTED).
func golden(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(data), "\n")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func createTopic(t *testing.T, c *tests.Cluster, queues string) string {
	t.Helper()
	topic := tests.UniqueName("OpsT")
	must(t, c.NameSrvAddr, "updateTopic", "-c", "DefaultCluster", "-t", topic, "-r", queues, "-w", queues)
	tests.NewAdmin(t, c.NameSrvAddr).WaitRoute(topic, 1)
	return topic
}

func TestClusterListMatchesRocketMQ(t *testing.T) {
	c := startCluster(t)
	out := must(t, c.NameSrvAddr, "clusterList")
	if got, want := firstLine(out), golden(t, "clusterList"); got != want {
		t.Fatalf("header\n got %q\nwant %q", got, want)
	}
	row := lines(out)[1]
	for _, want := range []string{"DefaultCluster", "broker-a", c.BrokerAddr, "V4_9_8", "0.00(0,0ms)"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	out = must(t, c.NameSrvAddr, "clusterList", "-m")
	if got, want := firstLine(out), golden(t, "clusterList-m"); got != want {
		t.Fatalf("-m header\n got %q\nwant %q", got, want)
	}
	var rows []brokerRow
	if err := json.Unmarshal([]byte(must(t, c.NameSrvAddr, "clusterList", "-o", "json")), &rows); err != nil || len(rows) != 1 || rows[0].Addr != c.BrokerAddr {
		t.Fatalf("json rows %+v, err %v", rows, err)
	}
	out = must(t, c.NameSrvAddr, "brokerStatus", "-b", c.BrokerAddr)
	if !strings.Contains(out, "brokerVersionDesc               : V4_9_8\n") {
		t.Fatalf("brokerStatus:\n%s", out)
	}
}

func TestTopicCommands(t *testing.T) {
	msgBodyDir = t.TempDir() // queryMsgById writes message bodies there
	c := startCluster(t)
	ns := c.NameSrvAddr
	topic := createTopic(t, c, "3")
	if out := must(t, ns, "topicList"); !strings.Contains("\n"+out, "\n"+topic+"\n") {
		t.Fatalf("topicList lacks %s:\n%s", topic, out)
	}
	out := must(t, ns, "topicRoute", "-t", topic, "-l")
	l := lines(out)
	if !strings.HasPrefix(l[0], "#ClusterName                                  #BrokerName") || !strings.Contains(l[1], "{0="+c.BrokerAddr+"}") {
		t.Fatalf("topicRoute -l:\n%s", out)
	}
	if f := strings.Fields(l[1]); f[3] != "3" || f[4] != "3" || f[5] != "6" {
		t.Fatalf("route row %q: want 3 read, 3 write queues, perm 6", l[1])
	}
	out = must(t, ns, "topicRoute", "-t", topic)
	if !strings.Contains(out, "\"brokerAddrs\":{0:\""+c.BrokerAddr+"\"\n") {
		t.Fatalf("topicRoute JSON not in fastjson's pretty form:\n%s", out)
	}

	// A message sent with mqadmin shows in topicStatus, queryMsgById and
	// consumeMessage at the offsets the broker reports.
	var res admin.SendResult
	if err := json.Unmarshal([]byte(must(t, ns, "sendMessage", "-t", topic, "-p", "hello-ops", "-k", "opskey", "-c", "tagA", "-b", "broker-a", "-i", "1", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "SEND_OK" || res.QueueID != 1 || res.QueueOffset != 0 {
		t.Fatalf("send result %+v", res)
	}
	out = must(t, ns, "queryMsgById", "-i", res.OffsetMsgID)
	for _, want := range []string{"OffsetID:            " + res.OffsetMsgID, "Topic:               " + topic, "Tags:                [tagA]",
		"Keys:                [opskey]", "Queue ID:            1", "Queue Offset:        0", "Store Host:          " + c.BrokerAddr} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("queryMsgById lacks %q:\n%s", want, out)
		}
	}
	out = must(t, ns, "queryMsgByOffset", "-t", topic, "-b", "broker-a", "-i", "1", "-o", "0")
	if !strings.Contains(out, "OffsetID:            "+res.OffsetMsgID+"\n") {
		t.Fatalf("queryMsgByOffset:\n%s", out)
	}
	var msgs []msgJSON
	if err := json.Unmarshal([]byte(must(t, ns, "consumeMessage", "-t", topic, "-b", "broker-a", "-i", "1", "--output", "json")), &msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Body != "hello-ops" || msgs[0].Properties["KEYS"] != "opskey" {
		t.Fatalf("consumeMessage: %+v", msgs)
	}

	t.Run("topicStatus", func(t *testing.T) {
		out := must(t, ns, "topicStatus", "-t", topic)
		if got, want := firstLine(out), golden(t, "topicStatus"); got != want {
			t.Fatalf("header\n got %q\nwant %q", got, want)
		}
		f := strings.Fields(lines(out)[2]) // queue 1
		if f[0] != "broker-a" || f[1] != "1" || f[2] != "0" || f[3] != "1" {
			t.Fatalf("queue 1 row %q: want min 0 max 1", lines(out)[2])
		}
	})
	t.Run("queryMsgByKey", func(t *testing.T) {
		// The index is built behind the commit log (as RocketMQ's reput
		// does), so a key becomes queryable shortly after the send.
		var out string
		tests.WaitFor(t, 10*time.Second, func() bool {
			out = must(t, ns, "queryMsgByKey", "-t", topic, "-k", "opskey")
			return len(lines(out)) > 1
		}, "the key is indexed")
		l := lines(out)
		if l[0] != fmt.Sprintf("%-50s %4s %40s", "#Message ID", "#QID", "#Offset") || len(l) != 2 ||
			!strings.HasPrefix(l[1], res.OffsetMsgID) {
			t.Fatalf("queryMsgByKey:\n%s", out)
		}
	})
	t.Run("topicList -c", func(t *testing.T) {
		out := must(t, ns, "topicList", "-c")
		if got, want := firstLine(out), golden(t, "topicList-c"); got != want {
			t.Fatalf("header\n got %q\nwant %q", got, want)
		}
		if !strings.Contains(out, "DefaultCluster        "+topic) {
			t.Fatalf("topicList -c lacks %s:\n%s", topic, out)
		}
	})

	out = must(t, ns, "deleteTopic", "-t", topic, "-c", "DefaultCluster")
	if out != "delete topic ["+topic+"] from cluster [DefaultCluster] success.\ndelete topic ["+topic+"] from NameServer success.\n" {
		t.Fatalf("deleteTopic:\n%s", out)
	}
	if out := must(t, ns, "topicList"); strings.Contains("\n"+out, "\n"+topic+"\n") {
		t.Fatalf("topicList still has %s", topic)
	}
}

func TestBrokerConfigCommands(t *testing.T) {
	c := startCluster(t)
	ns := c.NameSrvAddr
	out := must(t, ns, "getBrokerConfig", "-b", c.BrokerAddr)
	if firstLine(out) != "============"+c.BrokerAddr+"============" ||
		!strings.Contains(out, "\nautoCreateTopicEnable                             =  true\n") {
		t.Fatalf("getBrokerConfig:\n%s", out)
	}
	out = must(t, ns, "updateBrokerConfig", "-c", "DefaultCluster", "-k", "autoCreateTopicEnable", "-v", "false")
	if out != "update broker config success, "+c.BrokerAddr+"\n" {
		t.Fatalf("updateBrokerConfig: %q", out)
	}
	if out := must(t, ns, "getBrokerConfig", "-b", c.BrokerAddr); !strings.Contains(out, "\nautoCreateTopicEnable                             =  false\n") {
		t.Fatalf("the update does not show:\n%s", out)
	}
	// The change acts: a send to an unknown topic is no longer auto-created.
	_, errs, code := mqadmin(t, ns, "sendMessage", "-t", tests.UniqueName("NoAuto"), "-p", "x")
	if code == 0 {
		t.Fatalf("send to a new topic succeeded with autoCreateTopicEnable=false")
	}
	_ = errs
	// A swap that cannot complete (no slave to catch up) is refused at once,
	// with the reason, and the role stays.
	_, errs, code = mqadmin(t, ns, "updateBrokerConfig", "-b", c.BrokerAddr, "-k", "brokerRole", "-v", "SYNC_MASTER")
	if code != 1 || !strings.Contains(errs, "no slave is connected") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("brokerRole update: exit %d, stderr %q", code, errs)
	}
	_, errs, code = mqadmin(t, ns, "updateBrokerConfig", "-b", c.BrokerAddr, "-k", "maxMessageSize", "-v", "1")
	if code != 1 || !strings.Contains(errs, "runtime-updatable keys") {
		t.Fatalf("maxMessageSize update: exit %d, stderr %q", code, errs)
	}
	var cfg map[string]string
	if err := json.Unmarshal([]byte(must(t, ns, "getBrokerConfig", "-b", c.BrokerAddr, "-o", "json")), &cfg); err != nil || cfg["maxMessageSize"] != "4194304" {
		t.Fatalf("json config maxMessageSize=%q err %v", cfg["maxMessageSize"], err)
	}
}

func TestGroupAndPermCommands(t *testing.T) {
	c := startCluster(t)
	ns := c.NameSrvAddr
	out := must(t, ns, "updateSubGroup", "-b", c.BrokerAddr, "-g", "OpsGroup", "-r", "3")
	if !strings.HasPrefix(out, "create subscription group to "+c.BrokerAddr+" success.\nSubscriptionGroupConfig [groupName=OpsGroup, consumeEnable=true") ||
		!strings.Contains(out, "retryMaxTimes=3") {
		t.Fatalf("updateSubGroup:\n%s", out)
	}
	out = must(t, ns, "deleteSubGroup", "-b", c.BrokerAddr, "-g", "OpsGroup")
	if out != "delete subscription group [OpsGroup] from broker ["+c.BrokerAddr+"] success.\n" {
		t.Fatalf("deleteSubGroup: %q", out)
	}

	topic := createTopic(t, c, "2")
	permOf := func() string {
		return strings.Fields(lines(must(t, ns, "topicRoute", "-t", topic, "-l"))[1])[5]
	}
	out = must(t, ns, "wipeWritePerm", "-b", "broker-a")
	if !strings.HasPrefix(out, "wipe write perm of broker[broker-a] in name server["+ns+"] OK, ") {
		t.Fatalf("wipeWritePerm: %q", out)
	}
	if p := permOf(); p != "4" {
		t.Fatalf("perm after wipe = %s, want 4", p)
	}
	must(t, ns, "addWritePerm", "-b", "broker-a")
	if p := permOf(); p != "6" {
		t.Fatalf("perm after add = %s, want 6", p)
	}
}

func TestConsumerCommands(t *testing.T) {
	c := startCluster(t)
	ns := c.NameSrvAddr
	topic := createTopic(t, c, "2")
	group := tests.UniqueName("OpsCG")
	p := tests.NewProducer(t, ns)
	tests.SendN(t, p, topic, "", "m", 6)
	pc := tests.StartPushConsumer(t, ns, topic, tests.ConsumerOptions{Group: group, FromFirst: true})
	tests.WaitFor(t, 30*time.Second, func() bool { return pc.Received.Distinct() >= 6 }, "consumer received 6")

	out := must(t, ns, "consumerConnection", "-g", group)
	if !strings.HasPrefix(out, "#ClientId                            #ClientAddr            #Language  #Version\n") ||
		!strings.Contains(out, "\nBelow is subscription:\n#Topic               #SubExpression\n") ||
		!strings.Contains(out, "\n"+topic+strings.Repeat(" ", 20-len(topic)+1)+"*\n") && !strings.Contains(out, "\n"+topic+" *\n") ||
		!strings.Contains(out, "MessageModel: CLUSTERING\n") {
		t.Fatalf("consumerConnection:\n%s", out)
	}

	t.Run("consumerProgress -g", func(t *testing.T) {
		var out string
		// Offsets reach the broker with the client's periodic commit.
		tests.WaitFor(t, 30*time.Second, func() bool {
			var errs string
			var code int
			out, errs, code = mqadmin(t, ns, "consumerProgress", "-g", group)
			if code != 0 && strings.Contains(errs, "REQUEST_CODE_NOT_SUPPORTED") {
				t.Skipf("the broker does not serve GET_CONSUME_STATS yet: %s", errs)
			}
			return code == 0 && strings.Contains(out, "Diff Total: 0\n") && strings.Count(out, topic) == 2
		}, "consumerProgress shows the group caught up")
		if got, want := firstLine(out), golden(t, "consumerProgress-g"); got != want {
			t.Fatalf("header\n got %q\nwant %q", got, want)
		}
		var total int64
		for _, l := range lines(out)[1:] {
			f := strings.Fields(l)
			if len(f) >= 6 && f[0] == topic {
				if f[3] != f[4] {
					t.Errorf("row %q: broker and consumer offsets differ", l)
				}
				n, _ := json.Number(f[3]).Int64()
				total += n
			}
		}
		if total != 6 {
			t.Fatalf("broker offsets sum to %d, want 6:\n%s", total, out)
		}
	})
	t.Run("consumerProgress", func(t *testing.T) {
		out := must(t, ns, "consumerProgress")
		if got, want := firstLine(out), golden(t, "consumerProgress"); got != want {
			t.Fatalf("header\n got %q\nwant %q", got, want)
		}
		if !strings.Contains(out, "\n"+group) || !strings.Contains(out, "PUSH   CLUSTERING") {
			t.Fatalf("consumerProgress lacks the online group:\n%s", out)
		}
	})
	t.Run("statsAll", func(t *testing.T) {
		out := must(t, ns, "statsAll", "-t", topic)
		if firstLine(out) != "#Topic                                                            #Consumer Group                                                  #Accumulation      #InTPS     #OutTPS   #InMsg24Hour  #OutMsg24Hour" {
			t.Fatalf("statsAll header %q", firstLine(out))
		}
		// InMsg24Hour comes from VIEW_BROKER_STATS_DATA TOPIC_PUT_NUMS.
		d, err := admin.New(ns, 0).ViewStats(c.BrokerAddr, "TOPIC_PUT_NUMS", topic)
		if err != nil || d.StatsMinute.Sum != 6 {
			t.Fatalf("TOPIC_PUT_NUMS %s: %+v, %v", topic, d, err)
		}
		d, err = admin.New(ns, 0).ViewStats(c.BrokerAddr, "GROUP_GET_NUMS", topic+"@"+group)
		if err != nil || d.StatsMinute.Sum < 6 {
			t.Fatalf("GROUP_GET_NUMS: %+v, %v", d, err)
		}
		if !strings.Contains(out, topic) {
			t.Fatalf("statsAll lacks %s:\n%s", topic, out)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		b := c.Module("app.broker").(*broker.Broker)
		srv := httptest.NewServer(b.MetricsHandler())
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(data)
		for _, want := range []string{
			`rocketmq_producer_tps{broker="broker-a",cluster="DefaultCluster",topic="` + topic + `"}`,
			`rocketmq_producer_offset{broker="broker-a",cluster="DefaultCluster",topic="` + topic + `"} 6`,
			`rocketmq_consumer_tps{broker="broker-a",cluster="DefaultCluster",group="` + group + `",topic="` + topic + `"}`,
			`rocketmq_consumer_message_size{`, `rocketmq_broker_tps{`, `rocketmq_broker_qps{`,
			`rocketmq_group_diff{countOfOnlineConsumers="1",group="` + group + `",msgModel="CLUSTERING",topic="` + topic + `"}`,
			`rocketmq_brokeruntime_put_tps10{`, `rocketmq_brokeruntime_commitlog_maxoffset{`, `rocketmq_brokeruntime_msg_put_total_today_now{`,
			`mqd_messages_in_total{broker="broker-a",topic="` + topic + `"} 6`, `go_goroutines `,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", text)
		}
	})
	t.Run("resetOffsetByTime", func(t *testing.T) {
		out := must(t, ns, "resetOffsetByTime", "-g", group, "-t", topic, "-s", "0")
		if !strings.HasPrefix(out, "rollback consumer offset by specified group["+group+"], topic["+topic+"], force[true]") {
			t.Fatalf("resetOffsetByTime:\n%s", out)
		}
	})
}

func TestUnreachableNameServer(t *testing.T) {
	out, errs, code := mqadmin(t, "127.0.0.1:1", "clusterList")
	if code != 1 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "mqadmin clusterList: 127.0.0.1:1:") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	_, errs, code = mqadmin(t, "", "topicList")
	if code != 1 || !strings.Contains(errs, "NAMESRV_ADDR") {
		t.Fatalf("no name server: exit %d, stderr %q", code, errs)
	}
	_, errs, code = mqadmin(t, "", "updateTopic", "-t", "x")
	if code != 2 || !strings.Contains(errs, "brokerAddr") {
		t.Fatalf("missing -b/-c: exit %d, stderr %q", code, errs)
	}
}

func TestVersionNames(t *testing.T) {
	for v, want := range map[int32]string{0: "V3_0_0_SNAPSHOT", 317: "V4_5_2", 409: "V4_9_8", 100000: "HIGHER_VERSION"} {
		if got := admin.VersionDesc(v); got != want {
			t.Errorf("VersionDesc(%d) = %s, want %s", v, got, want)
		}
	}
}

// TestUsageExitCodes: mistakes caught before any request exit 2, like mqd's
// and mqbench's; help and completion exit 0.
func TestUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"clusterList", "--bogus"}, {"clusterList", "extra"}, {"topicList", "-o", "xml"}} {
		_, errs, code := mqadmin(t, "", args...)
		if code != 2 || !strings.HasPrefix(errs, "mqadmin") || !strings.Contains(errs, "--help' for usage") {
			t.Errorf("mqadmin %v: exit %d, stderr %q; want 2", args, code, errs)
		}
	}
	for _, args := range [][]string{{"--help"}, {"help", "clusterList"}, {"completion", "bash"}} {
		if out, errs, code := mqadmin(t, "", args...); code != 0 || out == "" {
			t.Errorf("mqadmin %v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// TestACLCredentials (#16): against a broker and name server enforcing ACL,
// mqadmin signs with the account of $ROCKETMQ_HOME/conf/tools.yml, as
// RocketMQ's does, or of --accessKey/--secretKey; admin commands need an
// admin account, and unsigned ones are refused.
func TestACLCredentials(t *testing.T) {
	dir := t.TempDir()
	aclPath := filepath.Join(dir, "plain_acl.yml")
	os.WriteFile(aclPath, []byte("accounts:\n  - accessKey: opsAdmin\n    secretKey: opsSecret1\n    admin: true\n"+
		"  - accessKey: appUser\n    secretKey: appSecret1\n    defaultTopicPerm: PUB|SUB\n"), 0o600)
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, "conf"), 0o755)
	os.WriteFile(filepath.Join(home, "conf", "tools.yml"), []byte("accessKey: opsAdmin\nsecretKey: opsSecret1\n"), 0o600)
	c := tests.StartCluster(t, tests.ClusterOptions{
		Broker:  []string{"broker.metricsAddr=127.0.0.1:0", "aclEnable=true", "acl.file=" + aclPath, "acl.accessKey=opsAdmin", "acl.secretKey=opsSecret1"},
		Namesrv: []string{"aclEnable=true", "acl.file=" + aclPath},
	})
	run := func(env map[string]string, args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := Main(append(args, "-n", c.NameSrvAddr), IO{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
		return out.String() + errb.String(), code
	}
	topic := tests.UniqueName("ACLADMIN")
	if out, code := run(map[string]string{"ROCKETMQ_HOME": home}, "updateTopic", "-b", c.BrokerAddr, "-t", topic); code != 0 {
		t.Fatalf("updateTopic signed with tools.yml: exit %d: %s", code, out)
	}
	if out, code := run(nil, "updateTopic", "-b", c.BrokerAddr, "-t", topic+"2", "--accessKey", "appUser", "--secretKey", "appSecret1"); code == 0 || !strings.Contains(out, "Need admin permission") {
		t.Fatalf("updateTopic as a normal account: exit %d: %s", code, out)
	}
	if out, code := run(nil, "clusterList"); code == 0 || !strings.Contains(out, "No accessKey") {
		t.Fatalf("unsigned clusterList: exit %d: %s", code, out)
	}
	if out, code := run(nil, "clusterList", "--accessKey", "appUser", "--secretKey", "appSecret1"); code != 0 {
		t.Fatalf("clusterList as a normal account: exit %d: %s", code, out)
	}
}
