package tests

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/plugins/broker"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// startSlave starts, in this process, a slave (brokerId 1) of the cluster's
// broker, registered with the same name server; its logs go to a buffer of
// their own. t.Cleanup stops it.
func startSlave(t *testing.T, c *Cluster, extra ...string) (*broker.Broker, *logBuffer) {
	t.Helper()
	sets := append([]string{
		"broker.listenPort=" + strconv.Itoa(FreePort(t)),
		"broker.brokerIP1=127.0.0.1",
		"broker.namesrvAddr=" + c.NameSrvAddr,
		"store.storePathRootDir=" + t.TempDir(),
		"store.brokerRole=SLAVE",
		"broker.brokerId=1",
	}, extra...)
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, Sets: sets})
	if err != nil {
		t.Fatalf("slave config: %v", err)
	}
	logs := newLogBuffer()
	k := kernel.New(cfg, zerolog.New(logs).Level(zerolog.InfoLevel).With().Timestamp().Str("kernel", "slave").Logger())
	if err := k.Load(context.Background(), "app.broker"); err != nil {
		t.Fatalf("load slave: %v", err)
	}
	if err := k.Start(); err != nil {
		t.Fatalf("start slave: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := k.Stop(ctx); err != nil {
			t.Errorf("stop slave: %v", err)
		}
		if t.Failed() {
			t.Logf("slave logs:\n%s", logs.String())
		}
	})
	for _, m := range k.Loaded() {
		if b, ok := m.(*broker.Broker); ok {
			return b, logs
		}
	}
	t.Fatal("slave kernel has no app.broker")
	return nil, nil
}

// rawSendExt is a SEND_MESSAGE header as the official client writes it.
func rawSendExt(topic, group string, sysFlag int32, props string) map[string]string {
	return map[string]string{
		"producerGroup": group, "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "0", "sysFlag": strconv.Itoa(int(sysFlag)), "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": "0", "properties": props, "reconsumeTimes": "0", "unitMode": "false", "batch": "false",
	}
}

// firstRecordEnd is the commit-log end of the first record of a queue.
func firstRecordEnd(t *testing.T, st storage.Store, topic string) int64 {
	t.Helper()
	var end int64
	WaitFor(t, 10*time.Second, func() bool {
		res := st.GetMessages(topic, 0, 0, 1, 1<<20, nil)
		defer res.Release()
		if len(res.Records) == 0 {
			return false
		}
		rec := res.Records[0]
		end = message.RecordPhysicalOffset(rec) + int64(len(rec))
		return true
	}, "a record in %s", topic)
	return end
}

// TestSyncMasterSlave runs a SYNC_MASTER with an in-process slave. The
// answers to END_TRANSACTION and CONSUMER_SEND_MSG_BACK come only once the
// slave has what they stored; a delayed message is delivered by the master
// while the slave's schedule, timer and transaction services stay idle (no
// error or warning from them), and the slave answers GET_ALL_DELAY_OFFSET and
// shows in its runtime info the offsets synchronized from its master.
func TestSyncMasterSlave(t *testing.T) {
	RequireReplication(t)
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: append([]string{"store.brokerRole=SYNC_MASTER", shortDelayLevels}, fastTxChecks...)})
	slave, slaveLogs := startSlave(t, c, append([]string{"broker.slaveSyncInterval=300", shortDelayLevels}, fastTxChecks...)...)
	master := c.Module("app.broker").(*broker.Broker)
	WaitFor(t, 30*time.Second, func() bool { return len(master.HAStatus().Slaves) > 0 }, "the slave connects: %+v", master.HAStatus())
	repl := slave.Store().(storage.Replicable)
	topic := UniqueName("SyncPaths")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 1)
	cl := newRawClient(t)

	// A delayed send (level 1: 1 s) answers SEND_OK: the slave confirmed it.
	p := NewProducer(t, c.NameSrvAddr)
	res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("delayed")).WithDelayTimeLevel(1))
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("delayed send to a SYNC_MASTER: %v %v", err, res)
	}

	// Transaction: half message, then commit.
	pg := UniqueName("SyncPG")
	props := "UNIQ_KEY\x01" + UniqueName("TXID") + "\x02TRAN_MSG\x01true\x02PGROUP\x01" + pg + "\x02"
	resp := adminCall(t, cl, c.BrokerAddr, remoting.SendMessage, rawSendExt(topic, pg, message.SysFlagTranPrepared, props), []byte("tx"))
	if resp.Code != remoting.Success {
		t.Fatalf("half message: %d %q", resp.Code, resp.Remark)
	}
	_, clo, err := message.ParseOffsetMsgID(resp.Ext("msgId"))
	if err != nil {
		t.Fatalf("half msgId %q: %v", resp.Ext("msgId"), err)
	}
	resp = adminCall(t, cl, c.BrokerAddr, remoting.EndTransaction, map[string]string{
		"producerGroup": pg, "tranStateTableOffset": resp.Ext("queueOffset"), "commitLogOffset": strconv.FormatInt(clo, 10),
		"commitOrRollback": strconv.Itoa(int(message.SysFlagTranCommit)), "fromTransactionCheck": "false", "msgId": resp.Ext("msgId"),
	}, nil)
	slaveHas := repl.MaxPhyOffset()
	if resp.Code != remoting.Success {
		t.Fatalf("END_TRANSACTION: %d %q", resp.Code, resp.Remark)
	}
	// The delayed message may have been delivered ahead of the commit: find the commit by its body.
	var commitEnd int64
	WaitFor(t, 10*time.Second, func() bool {
		r := master.Store().GetMessages(topic, 0, 0, 8, 1<<20, nil)
		defer r.Release()
		for _, rec := range r.Records {
			if string(message.RecordBody(rec)) == "tx" {
				commitEnd = message.RecordPhysicalOffset(rec) + int64(len(rec))
				return true
			}
		}
		return false
	}, "the committed message in %s", topic)
	if slaveHas < commitEnd {
		t.Errorf("END_TRANSACTION answered before the slave had the commit: slave at %d, commit ends at %d", slaveHas, commitEnd)
	}

	// Send-back to the DLQ (delay level -1).
	group := UniqueName("SyncG")
	resp = adminCall(t, cl, c.BrokerAddr, remoting.ConsumerSendMsgBack, map[string]string{
		"group": group, "offset": strconv.FormatInt(clo, 10), "delayLevel": "-1", "originMsgId": "", "unitMode": "false",
	}, nil)
	slaveHas = repl.MaxPhyOffset()
	if resp.Code != remoting.Success {
		t.Fatalf("CONSUMER_SEND_MSG_BACK: %d %q", resp.Code, resp.Remark)
	}
	if end := firstRecordEnd(t, master.Store(), "%DLQ%"+group); slaveHas < end {
		t.Errorf("CONSUMER_SEND_MSG_BACK answered before the slave had the copy: slave at %d, copy ends at %d", slaveHas, end)
	}

	// The master delivers the delayed message; the slave learns the delay offsets.
	WaitFor(t, 30*time.Second, func() bool {
		r := master.Store().GetMessages(topic, 0, 0, 8, 1<<20, nil)
		defer r.Release()
		for _, rec := range r.Records {
			if string(message.RecordBody(rec)) == "delayed" {
				return true
			}
		}
		return false
	}, "the delayed message delivered")
	WaitFor(t, 30*time.Second, func() bool {
		resp := adminCall(t, cl, slave.Addr(), remoting.GetAllDelayOffset, nil, nil)
		return resp.Code == remoting.Success && strings.Contains(string(resp.Body), "{1:1,")
	}, "the slave's delay offsets follow the master's")
	var info string
	WaitFor(t, 10*time.Second, func() bool {
		info = string(adminCall(t, cl, slave.Addr(), remoting.GetBrokerRuntimeInfo, nil, nil).Body)
		return strings.Contains(info, `"scheduleMessageOffset_1":"1,1"`)
	}, "the slave's runtime info shows the synchronized delay offsets: %s", info)
	// By now the slave has run for seconds: check-back rounds (every 1 s),
	// schedule-topic arrivals and metadata syncs have all happened on it.
	for _, line := range strings.Split(slaveLogs.String(), "\n") {
		lower := strings.ToLower(line)
		if strings.Contains(line, `"level":"error"`) ||
			(strings.Contains(line, `"level":"warn"`) && (strings.Contains(lower, "delay") ||
				strings.Contains(lower, "timer") || strings.Contains(lower, "transaction"))) {
			t.Errorf("slave logged: %s", line)
		}
	}
}
