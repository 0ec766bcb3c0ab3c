package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
)

// Transaction mode, after RocketMQ's benchmark TransactionProducer: each
// message is a half message whose body carries the test's batch id, a
// sequence number, the local-transaction outcome to report at send time and
// the outcomes to report at each check-back; the listener answers from the
// body, so that the broker's check-back can be verified (a check for a
// message already committed or rolled back is "unexpected"; a second check
// with the same check count is "duplicated").

// maxCheckResults is TransactionProducer.MAX_CHECK_RESULT_IN_MSG.
const maxCheckResults = 20

type txOptions struct {
	commonOptions
	group                       string
	threads, size               int
	sendRollback, sendUnknown   float64
	checkRollback, checkUnknown float64
	timeout                     time.Duration
}

// TransactionSummary is the final report of a transaction run (-o json).
type TransactionSummary struct {
	Mode            string      `json:"mode"`
	Topic           string      `json:"topic"`
	Threads         int         `json:"threads"`
	MessageSize     int         `json:"messageSize"`
	ElapsedSec      float64     `json:"elapsedSec"`
	Sent            int64       `json:"sent"`
	SendFailed      int64       `json:"sendFailed"`
	TPS             int64       `json:"tps"`
	AvgRTMs         float64     `json:"avgRtMs"`
	MaxRTMs         int64       `json:"maxRtMs"`
	Checks          int64       `json:"checks"`
	UnexpectedCheck int64       `json:"unexpectedCheck"`
	DuplicatedCheck int64       `json:"duplicatedCheck"`
	Latency         Percentiles `json:"latency"`
}

func transactionCommand(stdout, stderr io.Writer) *cobra.Command {
	var o txOptions
	c, fs := modeCommand("transaction", "send transactional messages and verify the broker's check-backs (RocketMQ's TransactionProducer)",
		&o.commonOptions, "topic", o.check,
		func(ctx context.Context) error { return runTransaction(ctx, o, stdout, stderr) })
	fs.IntVarP(&o.threads, "threads", "w", 32, "sending goroutines")
	fs.IntVarP(&o.size, "size", "s", 2048, "message body size in bytes (at least 37: the test's own header)")
	fs.Float64Var(&o.sendRollback, "sr", 0, "share of local transactions that roll back at send")
	fs.Float64Var(&o.sendUnknown, "su", 0, "share of local transactions left UNKNOWN at send (checked back by the broker)")
	fs.Float64Var(&o.checkRollback, "cr", 0, "share of check-backs answered ROLLBACK")
	fs.Float64Var(&o.checkUnknown, "cu", 0, "share of check-backs answered UNKNOWN again")
	fs.StringVar(&o.group, "group", "benchmark_transaction_producer", "producer group")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Second, "send timeout")
	return c
}

// check returns a usage error for a value out of range.
func (o *txOptions) check() error {
	rate := func(v float64) bool { return v >= 0 && v <= 1 }
	switch {
	case o.threads < 1:
		return cmdline.Usagef("-w must be at least 1")
	case o.size < 16+1+maxCheckResults:
		return cmdline.Usagef("-s must be at least %d (the body carries the test's header)", 16+1+maxCheckResults)
	case !rate(o.sendRollback) || !rate(o.sendUnknown) || !rate(o.checkRollback) || !rate(o.checkUnknown):
		return cmdline.Usagef("--sr, --su, --cr and --cu are shares between 0 and 1")
	case o.sendRollback+o.sendUnknown > 1 || o.checkRollback+o.checkUnknown > 1:
		return cmdline.Usagef("--sr + --su and --cr + --cu must not exceed 1")
	}
	return o.commonOptions.check()
}

// txStats are StatsBenchmarkTProducer's counters.
type txStats struct {
	ok, failed, rtSumMicros, maxRTMicros atomic.Int64
	checks, unexpected, duplicated       atomic.Int64
}

// txListener answers from the message body (TransactionListenerImpl).
type txListener struct {
	batchID int64
	st      *txStats
	mu      sync.Mutex
	seen    map[int64]uint32 // sequence -> bit per check count seen
}

func pickState(r, rollback, unknown float64) primitive.LocalTransactionState {
	switch {
	case r < rollback:
		return primitive.RollbackMessageState
	case r < rollback+unknown:
		return primitive.UnkonwnState
	default:
		return primitive.CommitMessageState
	}
}

// encodeTxBody writes batch id, sequence, the send outcome and the check
// outcomes at the head of body.
func encodeTxBody(body []byte, batchID, seq int64, o *txOptions) {
	binary.BigEndian.PutUint64(body[0:], uint64(batchID))
	binary.BigEndian.PutUint64(body[8:], uint64(seq))
	body[16] = byte(pickState(rand.Float64(), o.sendRollback, o.sendUnknown))
	for i := 0; i < maxCheckResults; i++ {
		body[17+i] = byte(pickState(rand.Float64(), o.checkRollback, o.checkUnknown))
	}
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	if len(m.Body) < 17+maxCheckResults {
		return primitive.RollbackMessageState
	}
	return primitive.LocalTransactionState(m.Body[16])
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	b := m.Body
	if len(b) < 17+maxCheckResults || int64(binary.BigEndian.Uint64(b[0:])) != l.batchID {
		return primitive.RollbackMessageState // not from this run
	}
	l.st.checks.Add(1)
	times, err := strconv.Atoi(m.GetProperty(primitive.PropertyTranscationCheckTimes))
	if err != nil {
		return primitive.RollbackMessageState
	}
	if times <= 0 {
		times = 1
	}
	seq := int64(binary.BigEndian.Uint64(b[8:]))
	bit := uint32(1) << uint((times-1)%32)
	l.mu.Lock()
	old, had := l.seen[seq]
	l.seen[seq] = old | bit
	l.mu.Unlock()
	if had && old&bit != 0 {
		l.st.duplicated.Add(1)
	}
	if sent := primitive.LocalTransactionState(b[16]); sent != primitive.UnkonwnState {
		l.st.unexpected.Add(1) // the send already decided it
		return sent
	}
	for i := 0; i < times-1 && i < maxCheckResults; i++ {
		if s := primitive.LocalTransactionState(b[17+i]); s != primitive.UnkonwnState {
			l.st.unexpected.Add(1) // an earlier check already decided it
			return s
		}
	}
	if times > maxCheckResults {
		return primitive.RollbackMessageState
	}
	return primitive.LocalTransactionState(b[17+times-1])
}

func runTransaction(ctx context.Context, o txOptions, stdout, stderr io.Writer) error {
	lines := o.intervalLines(stdout, stderr)
	// The client logs an error for every local transaction left UNKNOWN,
	// which this mode does on purpose.
	rlog.SetLogLevel("fatal")
	var st txStats
	l := &txListener{batchID: time.Now().UnixMilli(), st: &st, seen: map[int64]uint32{}}
	p, err := rocketmq.NewTransactionProducer(l, append([]producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver(splitAddrs(o.namesrv))),
		producer.WithGroupName(o.group),
		producer.WithInstanceName(fmt.Sprintf("mqbench-tx-%d-%d", os.Getpid(), time.Now().UnixNano())),
		producer.WithSendMsgTimeout(o.timeout),
		producer.WithRetry(2),
	}, o.producerSecurity()...)...)
	if err != nil {
		return fmt.Errorf("transaction producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start transaction producer: %w", err)
	}
	defer func() { _ = p.Shutdown() }()

	runCtx, cancel := o.runFor(ctx)
	defer cancel()
	fmt.Fprintf(lines, "topic: %s threadCount: %d messageSize: %d sendRollbackRate: %.2f sendUnknownRate: %.2f checkRollbackRate: %.2f checkUnknownRate: %.2f\n",
		o.topic, o.threads, o.size, o.sendRollback, o.sendUnknown, o.checkRollback, o.checkUnknown)

	type snap struct {
		at                                 time.Time
		ok, failed, rt, checks, unexp, dup int64
	}
	take := func(now time.Time) snap {
		return snap{now, st.ok.Load(), st.failed.Load(), st.rtSumMicros.Load(), st.checks.Load(), st.unexpected.Load(), st.duplicated.Load()}
	}
	var maxRT atomic.Int64 // of the run; st.maxRTMicros is per interval
	prev := take(time.Now())
	report := func(now time.Time) {
		cur := take(now)
		n := cur.ok - prev.ok
		avg := 0.0
		if n > 0 {
			avg = float64(cur.rt-prev.rt) / float64(n) / 1000
		}
		// TransactionProducer's line; the counts are per interval.
		fmt.Fprintf(lines, "Current Time: %d Send TPS:%5d Max RT(ms):%5d AVG RT(ms):%3.1f Send Failed: %d check: %d unexpectedCheck: %d duplicatedCheck: %d \n",
			now.UnixMilli(), ratePerSecond(n+cur.failed-prev.failed, cur.at.Sub(prev.at)), st.maxRTMicros.Swap(0)/1000, avg,
			cur.failed-prev.failed, cur.checks-prev.checks, cur.unexp-prev.unexp, cur.dup-prev.dup)
		prev = cur
	}
	var seq atomic.Int64
	res := sendLoad(runCtx, o.threads, o.interval, report, func() (time.Duration, error) {
		body := make([]byte, o.size) // the client keeps the message until the check-back
		encodeTxBody(body, l.batchID, seq.Add(1), &o)
		t0 := time.Now()
		sent, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage(o.topic, body))
		rt := time.Since(t0)
		if err == nil && sent.Status != primitive.SendOK {
			err = fmt.Errorf("send status %v", sent.Status)
		}
		if err != nil {
			st.failed.Add(1)
			return rt, err
		}
		st.ok.Add(1)
		st.rtSumMicros.Add(rt.Microseconds())
		atomicMax(&st.maxRTMicros, rt.Microseconds())
		atomicMax(&maxRT, rt.Microseconds())
		return rt, nil
	})
	sum := TransactionSummary{Mode: "transaction", Topic: o.topic, Threads: o.threads, MessageSize: o.size,
		ElapsedSec: res.elapsed.Seconds(), Sent: st.ok.Load(), SendFailed: st.failed.Load(),
		TPS: ratePerSecond(st.ok.Load(), res.elapsed), MaxRTMs: maxRT.Load() / 1000, Checks: st.checks.Load(),
		UnexpectedCheck: st.unexpected.Load(), DuplicatedCheck: st.duplicated.Load(), Latency: percentiles(res.latency)}
	if sum.Sent > 0 {
		sum.AvgRTMs = float64(st.rtSumMicros.Load()) / float64(sum.Sent) / 1000
	}
	res.printFirstError(stderr)
	if o.output == "json" {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "[Complete] Send Total: %d Send TPS: %d Max RT(ms): %d Average RT(ms): %7.3f Send Failed: %d check: %d unexpectedCheck: %d duplicatedCheck: %d\n",
		sum.Sent+sum.SendFailed, sum.TPS, sum.MaxRTMs, sum.AvgRTMs, sum.SendFailed, sum.Checks, sum.UnexpectedCheck, sum.DuplicatedCheck)
	fmt.Fprintf(stdout, "Send RT(ms): %s (%d transactions, %.1f s)\n", sum.Latency, sum.Sent, sum.ElapsedSec)
	if sum.Sent == 0 && sum.SendFailed > 0 {
		return errors.New("every transactional send failed")
	}
	return nil
}
