package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mqd/mqd/tests"
)

// TestTransactionAgainstCluster runs transaction mode briefly: some local
// transactions stay UNKNOWN, so the broker checks them back, and the listener
// verifies each check against what the message body says it should see.
func TestTransactionAgainstCluster(t *testing.T) {
	if raceEnabled {
		t.Skip("rocketmq-client-go has data races of its own (see raceEnabled)")
	}
	c := tests.StartCluster(t, tests.ClusterOptions{Broker: []string{"broker.metricsAddr="}})
	topic := tests.UniqueName("BenchTx")
	tests.NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 4)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"transaction", "-n", c.NameSrvAddr, "-t", topic, "-w", "4", "-s", "64",
		"--sr", "0.1", "-d", "2s", "-o", "json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	var sum TransactionSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if sum.Mode != "transaction" || sum.Sent == 0 || sum.SendFailed != 0 || sum.UnexpectedCheck != 0 || sum.Latency.P50 <= 0 {
		t.Fatalf("summary %+v", sum)
	}
	if !strings.Contains(errOut.String(), "Send TPS:") || !strings.Contains(errOut.String(), "unexpectedCheck: ") {
		t.Fatalf("interval lines missing:\n%s", errOut.String())
	}
}
