package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
)

// Transaction system topics as the broker names them.
const (
	transHalfTopic     = "RMQ_SYS_TRANS_HALF_TOPIC"
	transOpTopic       = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	transCheckMaxTopic = "TRANS_CHECK_MAX_TIME_TOPIC"
)

// fastTxChecks makes the check-back service run every second and check half
// messages one second old.
var fastTxChecks = []string{"broker.transactionCheckInterval=1000", "broker.transactionTimeOut=1000"}

// txListener decides local transactions by message body: exec answers the
// first phase, check the check-backs. It counts check-backs per body.
type txListener struct {
	exec  func(body string) primitive.LocalTransactionState
	check func(body string) primitive.LocalTransactionState

	mu     sync.Mutex
	checks map[string]int
}

func newTxListener(exec, check func(string) primitive.LocalTransactionState) *txListener {
	return &txListener{exec: exec, check: check, checks: map[string]int{}}
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	return l.exec(string(m.Body))
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	body := string(m.Body)
	l.mu.Lock()
	l.checks[body]++
	l.mu.Unlock()
	return l.check(body)
}

func (l *txListener) Checks(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checks[body]
}

// txProducer is a started transaction producer; Shutdown may be called early.
type txProducer struct {
	rocketmq.TransactionProducer
	once sync.Once
}

func (p *txProducer) Shutdown() error {
	p.once.Do(func() { _ = p.TransactionProducer.Shutdown() })
	return nil
}

// newTxProducer starts a transaction producer of group with its own client
// instance; t.Cleanup shuts it down. The Go client heartbeats (which is how the
// broker learns a producer's group, and so where to send check-backs) only to
// brokers it has routes for, one second after start and then every 30 s, or
// when a consumer of the same client instance starts. A consumer of topic is
// started in the producer's instance so that the broker knows the producer at
// once, as it would in an application that both produces and consumes; with
// topic "" there is none (the producer's connections close with Shutdown).
func newTxProducer(t testing.TB, namesrv, group, topic string, l primitive.TransactionListener) *txProducer {
	t.Helper()
	inst := instance("tp")
	SkipClientUnderRace(t)
	p, err := rocketmq.NewTransactionProducer(l,
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		producer.WithGroupName(group),
		producer.WithInstanceName(inst),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err != nil {
		t.Fatalf("new transaction producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start transaction producer: %v", err)
	}
	tp := &txProducer{TransactionProducer: p}
	t.Cleanup(func() { _ = tp.Shutdown() })
	if topic != "" {
		StartPushConsumer(t, namesrv, topic, ConsumerOptions{Extra: []consumer.Option{consumer.WithInstance(inst)}})
	}
	return tp
}

func sendTx(t testing.TB, p rocketmq.TransactionProducer, topic, body string) *primitive.TransactionSendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
	if err != nil {
		t.Fatalf("send %q in transaction: %v", body, err)
	}
	if res.Status != primitive.SendOK {
		t.Fatalf("send %q in transaction: status %v", body, res.Status)
	}
	return res
}

// brokerStore reaches into the in-process broker's store.
func brokerStore(t testing.TB, c *Cluster) storage.Store {
	t.Helper()
	m, ok := c.Module("app.broker").(interface{ Store() storage.Store })
	if !ok {
		t.Fatal("no app.broker module")
	}
	return m.Store()
}

// deliveries counts deliveries by body.
func deliveries(r *Received) map[string]int {
	out := map[string]int{}
	for _, id := range r.IDs() {
		if m := r.Get(id); m != nil {
			out[string(m.Body)] += r.Count(id)
		}
	}
	return out
}

// waitOps waits until n op records exist: n half messages have ended.
func waitOps(t testing.TB, c *Cluster, n int64) {
	t.Helper()
	WaitFor(t, 60*time.Second, func() bool { return brokerStore(t, c).MaxOffset(transOpTopic, 0) >= n },
		"%d transactions ended (op records: %d)", n, brokerStore(t, c).MaxOffset(transOpTopic, 0))
}

// TestTransactionCommitRollbackUnknown: a committed message is delivered once,
// a rolled-back one never, an unknown one after the check-back says commit.
func TestTransactionCommitRollbackUnknown(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: fastTxChecks})
	topic := UniqueName("TxBasic")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 4)
	cons := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})

	l := newTxListener(func(body string) primitive.LocalTransactionState {
		switch {
		case strings.HasPrefix(body, "commit"):
			return primitive.CommitMessageState
		case strings.HasPrefix(body, "rollback"):
			return primitive.RollbackMessageState
		}
		return primitive.UnkonwnState
	}, func(body string) primitive.LocalTransactionState {
		if body == "unknown-then-rollback" {
			return primitive.RollbackMessageState
		}
		return primitive.CommitMessageState
	})
	p := newTxProducer(t, c.NameSrvAddr, UniqueName("TxPG"), topic, l)
	bodies := []string{"commit-1", "rollback-1", "unknown-then-commit", "unknown-then-rollback", "commit-2"}
	for _, b := range bodies {
		res := sendTx(t, p, topic, b)
		if len(res.OffsetMsgID) != 32 {
			t.Fatalf("send result offsetMsgId %q", res.OffsetMsgID)
		}
	}
	waitOps(t, c, int64(len(bodies)))
	WaitFor(t, 60*time.Second, func() bool { return cons.Received.Distinct() >= 3 },
		"3 committed messages delivered, got %v", deliveries(cons.Received))
	got := deliveries(cons.Received)
	want := map[string]int{"commit-1": 1, "commit-2": 1, "unknown-then-commit": 1}
	for b, n := range want {
		if got[b] != n {
			t.Errorf("%s delivered %d times, want %d (all: %v)", b, got[b], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("delivered %v, want only %v", got, want)
	}
	if l.Checks("unknown-then-commit") < 1 || l.Checks("unknown-then-rollback") < 1 {
		t.Errorf("check-backs: %v", l.checks)
	}
	// Half messages never reach the real topic by themselves.
	var real int64
	for q := range int32(4) {
		real += brokerStore(t, c).MaxOffset(topic, q)
	}
	if real != 3 {
		t.Errorf("the real topic holds %d messages, want 3", real)
	}
}

// TestTransactionProducerDies: the producer that sent the half message is gone
// before it commits; the check-back reaches another producer of its group.
func TestTransactionProducerDies(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: fastTxChecks})
	topic := UniqueName("TxDies")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 2)
	cons := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
	group := UniqueName("TxDiesPG")

	first := newTxListener(func(string) primitive.LocalTransactionState { return primitive.UnkonwnState },
		func(string) primitive.LocalTransactionState { return primitive.UnkonwnState })
	p1 := newTxProducer(t, c.NameSrvAddr, group, "", first)
	sendTx(t, p1, topic, "orphan")
	p1.Shutdown()

	second := newTxListener(func(string) primitive.LocalTransactionState { return primitive.UnkonwnState },
		func(string) primitive.LocalTransactionState { return primitive.CommitMessageState })
	newTxProducer(t, c.NameSrvAddr, group, topic, second)
	WaitFor(t, 60*time.Second, func() bool { return deliveries(cons.Received)["orphan"] >= 1 },
		"the orphan transaction committed by the second producer and delivered")
	waitOps(t, c, 1)
	if n := deliveries(cons.Received)["orphan"]; n != 1 {
		t.Errorf("orphan delivered %d times", n)
	}
	if second.Checks("orphan") < 1 || first.Checks("orphan") != 0 {
		t.Errorf("check-backs: second producer %d, first (shut down) %d", second.Checks("orphan"), first.Checks("orphan"))
	}
}

// TestTransactionBrokerRestart restarts the broker between the half messages
// and their resolution: ended transactions stay ended (a committed message is
// delivered exactly once, a rolled-back one never), unresolved ones are checked
// back after the restart.
func TestTransactionBrokerRestart(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: fastTxChecks})
	topic := UniqueName("TxRestart")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 2)
	group := UniqueName("TxRestartPG")

	var restarted atomic.Bool
	l := newTxListener(func(body string) primitive.LocalTransactionState {
		switch body {
		case "commit":
			return primitive.CommitMessageState
		case "rollback":
			return primitive.RollbackMessageState
		}
		return primitive.UnkonwnState
	}, func(body string) primitive.LocalTransactionState {
		if !restarted.Load() {
			return primitive.UnkonwnState // keep them open across the restart
		}
		switch body {
		case "later-commit":
			return primitive.CommitMessageState
		case "later-rollback":
			return primitive.RollbackMessageState
		}
		return primitive.UnkonwnState
	})
	p1 := newTxProducer(t, c.NameSrvAddr, group, topic, l)
	for _, b := range []string{"commit", "rollback", "later-commit", "later-rollback"} {
		sendTx(t, p1, topic, b)
	}
	waitOps(t, c, 2) // commit and rollback have ended
	c.RestartBroker()
	restarted.Store(true)
	// A producer started now registers at once; the first one re-registers
	// at its next heartbeat. Either may answer the check-back.
	newTxProducer(t, c.NameSrvAddr, group, topic, l)
	cons := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
	waitOps(t, c, 4)
	WaitFor(t, 60*time.Second, func() bool { return cons.Received.Distinct() >= 2 },
		"2 committed messages delivered, got %v", deliveries(cons.Received))
	got := deliveries(cons.Received)
	if got["commit"] != 1 || got["later-commit"] != 1 || len(got) != 2 {
		t.Errorf("delivered %v, want commit and later-commit once each", got)
	}
	if l.Checks("later-commit") < 1 || l.Checks("later-rollback") < 1 {
		t.Errorf("open transactions not checked back: %v", l.checks)
	}
	if n := l.Checks("commit") + l.Checks("rollback"); n != 0 {
		t.Errorf("ended transactions were checked back %d times", n)
	}
}

// TestTransactionCheckMax: a transaction that stays unknown is checked back
// transactionCheckMax times, then discarded to TRANS_CHECK_MAX_TIME_TOPIC.
func TestTransactionCheckMax(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: append([]string{"broker.transactionCheckMax=2"}, fastTxChecks...)})
	topic := UniqueName("TxCheckMax")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 1)
	l := newTxListener(func(string) primitive.LocalTransactionState { return primitive.UnkonwnState },
		func(string) primitive.LocalTransactionState { return primitive.UnkonwnState })
	p := newTxProducer(t, c.NameSrvAddr, UniqueName("TxCheckMaxPG"), topic, l)
	sendTx(t, p, topic, "forever-unknown")
	st := brokerStore(t, c)
	WaitFor(t, 60*time.Second, func() bool { return st.MaxOffset(transCheckMaxTopic, 0) == 1 },
		"the half message discarded to %s (checks so far %d)", transCheckMaxTopic, l.Checks("forever-unknown"))
	if n := l.Checks("forever-unknown"); n != 2 {
		t.Errorf("checked back %d times, want transactionCheckMax = 2", n)
	}
	if n := st.MaxOffset(topic, 0); n != 0 {
		t.Errorf("the discarded transaction reached its topic (%d messages)", n)
	}
	if n := st.MaxOffset(transOpTopic, 0); n != 0 {
		t.Errorf("%d op records for a discarded transaction", n)
	}
}

// BenchmarkTransactionProducer measures committed transactions end to end
// with the official client: 64 goroutines share 8 transaction producers, each
// SendMessageInTransaction is a half message send plus the client's one-way
// END_TRANSACTION commit. It reports tx/s as seen by the producers; the op
// records written are checked afterwards.
func BenchmarkTransactionProducer(b *testing.B) {
	c := StartCluster(b, ClusterOptions{})
	topic := UniqueName("TxBench")
	NewAdmin(b, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 8)
	l := newTxListener(func(string) primitive.LocalTransactionState { return primitive.CommitMessageState },
		func(string) primitive.LocalTransactionState { return primitive.CommitMessageState })
	const producers = 8
	ps := make([]*txProducer, producers)
	group := UniqueName("TxBenchPG")
	for i := range ps {
		ps[i] = newTxProducer(b, c.NameSrvAddr, group, "", l)
	}
	body := strings.Repeat("x", 1024)
	var next atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := ps[next.Add(1)%producers]
		for pb.Next() {
			res, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte(body)))
			if err != nil || res.Status != primitive.SendOK || res.State != primitive.CommitMessageState {
				b.Errorf("transaction: %v %v", err, res)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
	// The commits are one-way: wait until the broker has ended them all.
	WaitFor(b, 60*time.Second, func() bool { return brokerStore(b, c).MaxOffset(transOpTopic, 0) >= int64(b.N) },
		"%d commits applied", b.N)
}

// remoteMaxOffset asks a broker for a queue's max offset (GET_MAX_OFFSET).
func remoteMaxOffset(t testing.TB, addr, topic string) int64 {
	t.Helper()
	cl := remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, addr, remoting.NewRequest(remoting.GetMaxOffset,
		map[string]string{"topic": topic, "queueId": "0"}, nil))
	if err != nil || resp.Code != remoting.Success {
		return -1 // not up (yet)
	}
	n, _ := resp.ExtInt64("offset")
	return n
}

// openTxListener decides by body: commit-* and rollback-* at once,
// open-commit-* and open-rollback-* only once decided is set (until then
// unknown, so they wait for a check-back).
func openTxListener(decided *atomic.Bool) *txListener {
	decide := func(body string) primitive.LocalTransactionState {
		switch {
		case strings.HasPrefix(body, "commit"), decided.Load() && strings.HasPrefix(body, "open-commit"):
			return primitive.CommitMessageState
		case strings.HasPrefix(body, "rollback"), decided.Load() && strings.HasPrefix(body, "open-rollback"):
			return primitive.RollbackMessageState
		}
		return primitive.UnkonwnState
	}
	return newTxListener(decide, decide)
}

// sendTxMix sends n transactions of each kind (commit, rollback,
// open-commit, open-rollback) and returns which bodies must be delivered.
func sendTxMix(t *testing.T, p rocketmq.TransactionProducer, topic string, n int) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for i := range n {
		for _, kind := range []string{"commit", "rollback", "open-commit", "open-rollback"} {
			body := fmt.Sprintf("%s-%d", kind, i)
			sendTx(t, p, topic, body)
			want[body] = strings.HasPrefix(kind, "commit") || kind == "open-commit"
		}
	}
	return want
}

// TestTransactionBrokerKill kills a real mqd broker with SIGKILL after some
// transactions ended and while others are open, then restarts it on the same
// data: ended transactions stay ended (replayed from the op records written
// since the check state was last saved), open ones are checked back, and every
// committed message is delivered exactly once, no rolled-back one ever.
func TestTransactionBrokerKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ns := StartProcess(t, "namesrv", "--set", "namesrv.listenPort=0",
		"--set", "namesrv.kvConfigPath="+filepath.Join(dir, "kvConfig.json"))
	props := fmt.Sprintf("brokerName=%s\nlistenPort=%d\nnamesrvAddr=%s\nbrokerIP1=127.0.0.1\nstorePathRootDir=%s\n"+
		"transactionCheckInterval=1000\ntransactionTimeOut=1000\n",
		UniqueName("txkill"), FreePort(t), ns.NameSrvAddr, filepath.Join(dir, "store"))
	file := filepath.Join(dir, "broker.properties")
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	br := StartProcess(t, "broker", "-c", file)
	topic := UniqueName("TxKill")
	NewAdmin(t, ns.NameSrvAddr).CreateTopic(br.BrokerAddr, topic, 2)
	group := UniqueName("TxKillPG")

	var restarted atomic.Bool
	l := openTxListener(&restarted)
	p := newTxProducer(t, ns.NameSrvAddr, group, "", l)
	const n = 10
	want := sendTxMix(t, p, topic, n)
	WaitFor(t, 60*time.Second, func() bool { return remoteMaxOffset(t, br.BrokerAddr, transOpTopic) >= 2*n },
		"the %d commits and rollbacks applied", 2*n)
	br.Kill()
	restarted.Store(true)
	br.Restart()

	newTxProducer(t, ns.NameSrvAddr, group, topic, l)
	cons := StartPushConsumer(t, ns.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
	WaitFor(t, 90*time.Second, func() bool { return remoteMaxOffset(t, br.BrokerAddr, transOpTopic) >= 4*n },
		"all %d transactions ended after the restart (op records %d)", 4*n, remoteMaxOffset(t, br.BrokerAddr, transOpTopic))
	WaitFor(t, 60*time.Second, func() bool { return cons.Received.Distinct() >= 2*n },
		"%d committed messages delivered, got %d", 2*n, cons.Received.Distinct())
	for body, count := range deliveries(cons.Received) {
		if !want[body] || count != 1 {
			t.Errorf("%s delivered %d times (committed: %v)", body, count, want[body])
		}
	}
	if got := remoteMaxOffset(t, br.BrokerAddr, transOpTopic); got != 4*n {
		t.Errorf("%d op records for %d transactions", got, 4*n)
	}
}

// TestTransactionSlavePromoted: half messages a SYNC_MASTER acknowledged are
// on its slave; after the master is SIGKILLed and the slave restarted as the
// new master (brokerId=0, same store), the new master checks back the ones
// still open and ends each exactly once, while those ended on the old master
// stay ended (docs/replication.md, "Promoting a slave").
func TestTransactionSlavePromoted(t *testing.T) {
	RequireReplication(t)
	t.Parallel()
	dir := t.TempDir()
	ns := StartProcess(t, "namesrv", "--set", "namesrv.listenPort=0",
		"--set", "namesrv.kvConfigPath="+filepath.Join(dir, "kvConfig.json"))
	name := UniqueName("txpromote")
	start := func(role string, id int) *Process {
		props := fmt.Sprintf("brokerName=%s\nbrokerId=%d\nbrokerRole=%s\nlistenPort=%d\nhaListenPort=%d\nnamesrvAddr=%s\n"+
			"brokerIP1=127.0.0.1\nstorePathRootDir=%s\ntransactionCheckInterval=1000\ntransactionTimeOut=1000\n",
			name, id, role, FreePort(t), FreePort(t), ns.NameSrvAddr, filepath.Join(dir, role, "store"))
		file := filepath.Join(dir, role+".properties")
		if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		return StartProcess(t, "broker", "-c", file, "--set", "broker.slaveSyncInterval=500")
	}
	m := start("SYNC_MASTER", 0)
	s := start("SLAVE", 1)
	WaitFor(t, 30*time.Second, func() bool { return strings.Contains(m.Logs(), "HA: slave accepted") }, "slave connected")
	topic := UniqueName("TxPromote")
	NewAdmin(t, ns.NameSrvAddr).CreateTopic(m.BrokerAddr, topic, 2)
	group := UniqueName("TxPromotePG")

	var promoted atomic.Bool
	l := openTxListener(&promoted)
	p := newTxProducer(t, ns.NameSrvAddr, group, "", l)
	const n = 10
	want := sendTxMix(t, p, topic, n)
	// The ends of the decided ones are op records, replicated like any other.
	WaitFor(t, 60*time.Second, func() bool { return remoteMaxOffset(t, s.BrokerAddr, transOpTopic) >= 2*n },
		"the %d commits and rollbacks replicated", 2*n)
	_ = p.Shutdown()
	m.Kill()
	s.Stop()
	promoted.Store(true)
	s.RestartWith("--set", "brokerId=0", "--set", "brokerRole=ASYNC_MASTER")

	newTxProducer(t, ns.NameSrvAddr, group, topic, l)
	cons := StartPushConsumer(t, ns.NameSrvAddr, topic, ConsumerOptions{FromFirst: true})
	WaitFor(t, 90*time.Second, func() bool { return remoteMaxOffset(t, s.BrokerAddr, transOpTopic) >= 4*n },
		"all %d transactions ended on the promoted broker (op records %d)", 4*n, remoteMaxOffset(t, s.BrokerAddr, transOpTopic))
	WaitFor(t, 60*time.Second, func() bool { return cons.Received.Distinct() >= 2*n },
		"%d committed messages delivered, got %d", 2*n, cons.Received.Distinct())
	for body, count := range deliveries(cons.Received) {
		if !want[body] || count != 1 {
			t.Errorf("%s delivered %d times (committed: %v)", body, count, want[body])
		}
	}
	if got := remoteMaxOffset(t, s.BrokerAddr, transOpTopic); got != 4*n {
		t.Errorf("%d op records for %d transactions", got, 4*n)
	}
	for i := range n {
		if c := l.Checks(fmt.Sprintf("commit-%d", i)); c != 0 {
			t.Errorf("commit-%d, ended on the old master, checked back %d times by the new one", i, c)
		}
	}
}
