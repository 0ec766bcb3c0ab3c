package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
)

type consumerOptions struct {
	commonOptions
	group    string
	filter   string
	from     string
	client   string
	messages int64
}

// ConsumerSummary is the final report of a consumer run (-o json prints it).
// B2C is born-to-consume latency (producer clock to consumer clock, so only
// meaningful on one host or with synchronised clocks), S2C store-to-consume.
type ConsumerSummary struct {
	Mode       string      `json:"mode"`
	Topic      string      `json:"topic"`
	Group      string      `json:"group"`
	ElapsedSec float64     `json:"elapsedSec"`
	Consumed   int64       `json:"consumed"`
	TPS        int64       `json:"tps"` // up to the last delivery
	B2C        Percentiles `json:"bornToConsume"`
	S2C        Percentiles `json:"storeToConsume"`
}

type consumerSnapshot struct {
	at             time.Time
	n              int64
	b2cSum, s2cSum int64 // ms
}

func consumerCommand(stdout, stderr io.Writer) *cobra.Command {
	var o consumerOptions
	c, fs := modeCommand("consumer", "consume a topic and report rates and latencies (RocketMQ's benchmark Consumer)",
		&o.commonOptions, "topic (it must exist: consumers do not auto-create)", o.check,
		func(ctx context.Context) error { return runConsumer(ctx, o, stdout, stderr) })
	fs.StringVarP(&o.group, "group", "g", fmt.Sprintf("benchmark_consumer_%d", os.Getpid()), "consumer group")
	fs.StringVarP(&o.filter, "expression", "e", "*", "tag expression, e.g. 'A || B'")
	fs.StringVar(&o.from, "from", "last", "where a new group starts: last or first")
	cmdline.CompleteValues(c, "from", "last", "first")
	fs.StringVar(&o.client, "client", "go", "go: the official RocketMQ Go client's push consumer; native: mqd's own remoting client pulling every queue (less client CPU per message)")
	cmdline.CompleteValues(c, "client", "go", "native")
	fs.Int64Var(&o.messages, "messages", 0, "stop once this many messages were consumed (0: run for --duration)")
	return c
}

// check returns a usage error for a value out of range.
func (o *consumerOptions) check() error {
	switch {
	case o.group == "":
		return cmdline.Usagef("-g must name a group")
	case o.from != "last" && o.from != "first":
		return cmdline.Usagef("--from must be last or first")
	case o.client != "go" && o.client != "native":
		return cmdline.Usagef("--client must be go or native")
	case o.messages < 0:
		return cmdline.Usagef("--messages must not be negative")
	}
	return o.commonOptions.check()
}

// consumeRecorder counts deliveries and their latencies; callbacks and
// pull loops record concurrently.
type consumeRecorder struct {
	n              atomic.Int64
	b2cSum, s2cSum atomic.Int64
	b2cMax, s2cMax atomic.Int64
	lastAt         atomic.Int64 // unix ns of the last delivery
	mu             sync.Mutex   // guards the histograms
	b2cH, s2cH     *hdrhistogram.Histogram

	limit  int64  // --messages: enough once n reaches it (0: no limit)
	enough func() // called (repeatedly) once n reached limit
}

func newConsumeRecorder() *consumeRecorder {
	return &consumeRecorder{b2cH: newHistogram(), s2cH: newHistogram()}
}

// record counts n messages delivered at now; stamps yields the born and
// store timestamps (ms) of message i.
func (r *consumeRecorder) record(now time.Time, n int, stamps func(i int) (born, store int64)) {
	nowMs := now.UnixMilli()
	r.mu.Lock()
	for i := range n {
		born, store := stamps(i)
		b2c := max(nowMs-born, 0)
		s2c := max(nowMs-store, 0)
		r.b2cSum.Add(b2c)
		r.s2cSum.Add(s2c)
		atomicMax(&r.b2cMax, b2c)
		atomicMax(&r.s2cMax, s2c)
		recordMicros(r.b2cH, time.Duration(b2c)*time.Millisecond)
		recordMicros(r.s2cH, time.Duration(s2c)*time.Millisecond)
	}
	r.mu.Unlock()
	total := r.n.Add(int64(n))
	r.lastAt.Store(now.UnixNano())
	if r.limit > 0 && total >= r.limit {
		r.enough()
	}
}

// startGoConsumer consumes with the official Go client's push consumer.
func startGoConsumer(o consumerOptions, rec *consumeRecorder) (stop func(), err error) {
	from := consumer.ConsumeFromLastOffset
	if o.from == "first" {
		from = consumer.ConsumeFromFirstOffset
	}
	c, err := rocketmq.NewPushConsumer(append([]consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver(splitAddrs(o.namesrv))),
		consumer.WithGroupName(o.group),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(from),
		consumer.WithInstance(fmt.Sprintf("mqbench-%d-%d", os.Getpid(), time.Now().UnixNano())),
	}, o.consumerSecurity()...)...)
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	err = c.Subscribe(o.topic, consumer.MessageSelector{Type: consumer.TAG, Expression: o.filter},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			rec.record(time.Now(), len(msgs), func(i int) (int64, int64) { return msgs[i].BornTimestamp, msgs[i].StoreTimestamp })
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start consumer: %w", err)
	}
	return func() { _ = c.Shutdown() }, nil
}

func runConsumer(ctx context.Context, o consumerOptions, stdout, stderr io.Writer) error {
	lines := o.intervalLines(stdout, stderr)
	rec := newConsumeRecorder()
	runCtx, cancel := o.runFor(ctx)
	defer cancel()
	rec.limit, rec.enough = o.messages, cancel
	var stop func()
	var err error
	threads := 20
	if o.client == "native" {
		stop, threads, err = startNativeConsumer(runCtx, o, rec)
	} else {
		stop, err = startGoConsumer(o, rec)
	}
	if err != nil {
		return err
	}
	defer stop()
	// The Java tool's header (the Go client consumes on 20 goroutines).
	filterType, expr := "null", "null"
	if o.filter != "*" {
		filterType, expr = "TAG", o.filter
	}
	fmt.Fprintf(lines, "topic: %s, threadCount %d, group: %s, suffix: false, filterType: %s, expression: %s, msgTraceEnable: false, aclEnable: false\nConsumer Started.\n",
		o.topic, threads, o.group, filterType, expr)

	snap := func(now time.Time) consumerSnapshot {
		return consumerSnapshot{at: now, n: rec.n.Load(), b2cSum: rec.b2cSum.Load(), s2cSum: rec.s2cSum.Load()}
	}
	start := time.Now()
	prev := snap(start)
	every(o.interval, runCtx.Done(), func(now time.Time) {
		cur := snap(now)
		var avgB2C, avgS2C float64
		if d := cur.n - prev.n; d > 0 {
			avgB2C = float64(cur.b2cSum-prev.b2cSum) / float64(d)
			avgS2C = float64(cur.s2cSum-prev.s2cSum) / float64(d)
		}
		// RocketMQ's benchmark Consumer line (FAIL counts consume failures,
		// which this tool never reports: every message is acknowledged).
		fmt.Fprintf(lines, "Current Time: %d TPS: %d FAIL: %d AVG(B2C) RT(ms): %7.3f AVG(S2C) RT(ms): %7.3f MAX(B2C) RT(ms): %d MAX(S2C) RT(ms): %d\n",
			now.UnixMilli(), ratePerSecond(cur.n-prev.n, now.Sub(prev.at)), 0, avgB2C, avgS2C, rec.b2cMax.Load(), rec.s2cMax.Load())
		prev = cur
	})
	elapsed := time.Since(start)

	// A backlog may drain long before the run ends: the rate is taken up to
	// the last delivery.
	busy := elapsed
	if last := rec.lastAt.Load(); last > 0 {
		busy = time.Unix(0, last).Sub(start)
	}
	rec.mu.Lock()
	sum := ConsumerSummary{
		Mode:       "consumer",
		Topic:      o.topic,
		Group:      o.group,
		ElapsedSec: elapsed.Seconds(),
		Consumed:   rec.n.Load(),
		TPS:        ratePerSecond(rec.n.Load(), busy),
		B2C:        percentiles(rec.b2cH),
		S2C:        percentiles(rec.s2cH),
	}
	rec.mu.Unlock()
	if o.output == "json" {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "[Complete] Consume Total: %d Consume TPS: %d (up to the last message, %.1f s)\n", sum.Consumed, sum.TPS, busy.Seconds())
	fmt.Fprintf(stdout, "B2C RT(ms): %s\n", sum.B2C)
	fmt.Fprintf(stdout, "S2C RT(ms): %s\n", sum.S2C)
	return nil
}
