package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mqd/mqd/plugins/broker"
	"github.com/mqd/mqd/tests"
)

var (
	intervalLine = regexp.MustCompile(`^Current Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} Send TPS: (\d+) Max RT\(ms\): \d+ Average RT\(ms\): +\d+\.\d{3} Send Failed: (\d+) Response Failed: (\d+)$`)
	completeLine = regexp.MustCompile(`^\[Complete\] Send Total: (\d+) Send TPS: (\d+) Max RT\(ms\): \d+ Average RT\(ms\): +\d+\.\d{3} Send Failed: 0 Response Failed: 0$`)
	latencyLine  = regexp.MustCompile(`^Send RT\(ms\): p50=\d+\.\d{3} p90=\d+\.\d{3} p99=\d+\.\d{3} p99\.9=\d+\.\d{3} max=\d+\.\d{3} `)
	consumerLine = regexp.MustCompile(`^Current Time: \d{13} TPS: \d+ FAIL: 0 AVG\(B2C\) RT\(ms\): +\d+\.\d{3} AVG\(S2C\) RT\(ms\): +\d+\.\d{3} MAX\(B2C\) RT\(ms\): \d+ MAX\(S2C\) RT\(ms\): \d+$`)
)

// TestProducerAgainstCluster runs the producer for about two seconds against an
// in-process name server and broker and checks RocketMQ's line format, the
// summary, the JSON summary, and then the consumer reading what was sent.
func TestProducerAgainstCluster(t *testing.T) {
	if raceEnabled {
		t.Skip("rocketmq-client-go has data races of its own (see raceEnabled)")
	}
	c := tests.StartCluster(t, tests.ClusterOptions{})
	topic := tests.UniqueName("Bench")
	tests.NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 4)

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"producer", "-n", c.NameSrvAddr, "-t", topic, "-w", "8", "-s", "256", "-d", "2s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var intervals int
	var sawComplete, sawLatency bool
	for _, l := range lines {
		switch {
		case intervalLine.MatchString(l):
			intervals++
			m := intervalLine.FindStringSubmatch(l)
			if m[2] != "0" || m[3] != "0" {
				t.Errorf("failures reported: %s", l)
			}
		case completeLine.MatchString(l):
			sawComplete = true
			total, _ := strconv.Atoi(completeLine.FindStringSubmatch(l)[1])
			if total == 0 {
				t.Errorf("nothing sent: %s", l)
			}
		case latencyLine.MatchString(l):
			sawLatency = true
		case strings.HasPrefix(l, "topic: "+topic+" threadCount: 8 messageSize: 256 "),
			l == "delayEnable: false delayLevel: 1", l == "asyncEnable: false", l == "batchSize: 1 producers: 1 client: go":
		default:
			t.Errorf("unexpected output line %q", l)
		}
	}
	if intervals < 1 || !sawComplete || !sawLatency {
		t.Fatalf("want per-second lines, a [Complete] line and a latency line; got:\n%s", out.String())
	}
	t.Logf("producer output:\n%s", out.String())

	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"producer", "-n", c.NameSrvAddr, "-t", topic, "-w", "4", "-s", "64", "-d", "1s", "--batch", "4", "--tag", "T", "-o", "json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("json run: exit %d\nstderr:\n%s", code, errOut.String())
	}
	var sum ProducerSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("json summary: %v\n%s", err, out.String())
	}
	if sum.Sent == 0 || sum.Sent%4 != 0 || sum.SendFailed != 0 || sum.Latency.P99 <= 0 || sum.Batch != 4 {
		t.Errorf("json summary %+v", sum)
	}

	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"consumer", "-n", c.NameSrvAddr, "-t", topic, "-g", tests.UniqueName("BenchG"), "--from", "first", "-d", "2s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("consumer: exit %d\nstderr:\n%s", code, errOut.String())
	}
	cl := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(cl) < 6 || cl[1] != "Consumer Started." || !consumerLine.MatchString(cl[2]) || !strings.HasPrefix(cl[len(cl)-3], "[Complete] Consume Total: ") {
		t.Fatalf("consumer output:\n%s", out.String())
	}
	if strings.HasPrefix(cl[len(cl)-3], "[Complete] Consume Total: 0 ") {
		t.Errorf("consumer read nothing:\n%s", out.String())
	}
	t.Logf("consumer output:\n%s", out.String())
}

// TestNativeProducerAgainstCluster runs the producer with the native client:
// single and batch sends, several connections, and a topic that does not
// exist yet (auto-created through TBW102).
func TestNativeProducerAgainstCluster(t *testing.T) {
	c := tests.StartCluster(t, tests.ClusterOptions{})
	for _, batch := range []string{"1", "4"} {
		var out, errOut bytes.Buffer
		newTopic := tests.UniqueName("BenchNative")
		code := run(context.Background(), []string{"producer", "--client", "native", "-p", "2", "-n", c.NameSrvAddr, "-t", newTopic, "-w", "4", "-s", "64", "-d", "1s", "--batch", batch, "-o", "json"}, &out, &errOut)
		if code != 0 {
			t.Fatalf("native run (batch %s): exit %d\nstderr:\n%s", batch, code, errOut.String())
		}
		var ns ProducerSummary
		if err := json.Unmarshal(out.Bytes(), &ns); err != nil {
			t.Fatalf("native json summary: %v\n%s", err, out.String())
		}
		if ns.Sent == 0 || ns.SendFailed != 0 || ns.ResponseFailed != 0 {
			t.Errorf("native summary (batch %s) %+v\nstderr:\n%s", batch, ns, errOut.String())
		}
	}
}

// TestNativeProducerRequestsAndTopics: --requests stops the run after that
// many requests, and --topics spreads them over topics the broker
// auto-creates, each queue of each topic in turn.
func TestNativeProducerRequestsAndTopics(t *testing.T) {
	c := tests.StartCluster(t, tests.ClusterOptions{})
	var out, errOut bytes.Buffer
	prefix := tests.UniqueName("BenchMany")
	const topics, requests = 5, 20
	code := run(context.Background(), []string{"producer", "--client", "native", "-n", c.NameSrvAddr, "-t", prefix, "-w", "3", "-s", "64",
		"-d", "10m", "--topics", fmt.Sprint(topics), "--requests", fmt.Sprint(requests), "-o", "json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut.String())
	}
	var ns ProducerSummary
	if err := json.Unmarshal(out.Bytes(), &ns); err != nil {
		t.Fatalf("json summary: %v\n%s", err, out.String())
	}
	if ns.Sent != requests || ns.Requests != requests || ns.SendFailed != 0 || ns.ResponseFailed != 0 {
		t.Fatalf("summary %+v, want %d messages sent and nothing failed\nstderr:\n%s", ns, requests, errOut.String())
	}
	st := c.Module("app.broker").(*broker.Broker).Store()
	for i := range topics {
		topic := fmt.Sprintf("%s-%05d", prefix, i)
		var total int64
		for q := range int32(16) {
			total += st.MaxOffset(topic, q)
		}
		if total != requests/topics {
			t.Errorf("%s holds %d messages, want %d", topic, total, requests/topics)
		}
	}
}

// TestNativeConsumerAgainstCluster: the native consumer pulls every queue
// from the first offset and stops after --messages.
func TestNativeConsumerAgainstCluster(t *testing.T) {
	c := tests.StartCluster(t, tests.ClusterOptions{})
	topic := tests.UniqueName("BenchConsume")
	const n = 300
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"producer", "--client", "native", "-n", c.NameSrvAddr, "-t", topic, "-w", "4", "-s", "64",
		"--batch", "3", "--requests", fmt.Sprint(n / 3), "-o", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("producer: exit %d\nstderr:\n%s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code := run(context.Background(), []string{"consumer", "--client", "native", "-n", c.NameSrvAddr, "-t", topic, "--from", "first",
		"--messages", fmt.Sprint(n), "-d", "10m", "-o", "json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("consumer: exit %d\nstderr:\n%s", code, errOut.String())
	}
	var cs ConsumerSummary
	if err := json.Unmarshal(out.Bytes(), &cs); err != nil {
		t.Fatalf("json summary: %v\n%s", err, out.String())
	}
	if cs.Consumed != n || cs.TPS <= 0 {
		t.Fatalf("consumer summary %+v, want %d consumed\nstderr:\n%s", cs, n, errOut.String())
	}
	// And the topic holds exactly as many.
	st := c.Module("app.broker").(*broker.Broker).Store()
	var stored int64
	for q := range int32(16) {
		stored += st.MaxOffset(topic, q)
	}
	if stored != n {
		t.Fatalf("%s holds %d messages, want %d", topic, stored, n)
	}
}

// TestUsageErrors: a wrong command line exits 2 with one line saying why and
// one pointing at --help, before anything connects.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"producer", "-w", "0"},
		{"producer", "--requests", "-1"},
		{"producer", "-o", "xml"},
		{"producer", "extra"},
		{"producer", "--bogus"},
		{"consumer", "--from", "middle"},
		{"consumer", "--client", "java"},
		{"consumer", "--messages", "-5"},
		{"transaction", "--sr", "0.6", "--su", "0.6"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		if code != 2 || !strings.HasPrefix(errOut.String(), "mqbench") || strings.Count(errOut.String(), "\n") != 2 ||
			!strings.Contains(errOut.String(), "--help' for usage") {
			t.Errorf("mqbench %v: exit %d, stderr %q; want 2 and two lines", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"producer", "--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--batch") {
		t.Errorf("producer --help: exit %d, stdout %q", code, out.String())
	}
}
