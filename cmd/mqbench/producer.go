package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
)

type producerOptions struct {
	commonOptions
	tag       string
	group     string
	client    string
	threads   int
	size      int
	batch     int
	rate      int
	topics    int
	requests  int64
	producers int
	retry     int
	timeout   time.Duration
}

// ProducerSummary is the final report of a producer run (-o json prints it).
type ProducerSummary struct {
	Mode           string      `json:"mode"`
	Topic          string      `json:"topic"`
	Threads        int         `json:"threads"`
	Producers      int         `json:"producers"`
	MessageSize    int         `json:"messageSize"`
	Batch          int         `json:"batch"`
	ElapsedSec     float64     `json:"elapsedSec"`
	Sent           int64       `json:"sent"` // messages acknowledged by the broker
	Requests       int64       `json:"requests"`
	SendFailed     int64       `json:"sendFailed"`     // requests that got no usable answer (timeout, connection, route)
	ResponseFailed int64       `json:"responseFailed"` // requests the broker answered with an error code
	TPS            int64       `json:"tps"`            // messages per second
	AvgRTMs        float64     `json:"avgRtMs"`
	MaxRTMs        int64       `json:"maxRtMs"`
	Latency        Percentiles `json:"latency"`
}

// producerStats are the counters RocketMQ's StatsBenchmarkProducer keeps:
// success, send failures (client side), response failures (broker error codes),
// the RT sum of successful requests and the largest RT seen.
type producerStats struct {
	sentMsgs       atomic.Int64
	okRequests     atomic.Int64
	sendFailed     atomic.Int64
	responseFailed atomic.Int64
	rtSumMicros    atomic.Int64
	maxRTMicros    atomic.Int64
}

type producerSnapshot struct {
	at                               time.Time
	sent, ok, sendFailed, respFailed int64
	rtSumMicros                      int64
}

func (s *producerStats) snapshot(now time.Time) producerSnapshot {
	return producerSnapshot{
		at:          now,
		sent:        s.sentMsgs.Load(),
		ok:          s.okRequests.Load(),
		sendFailed:  s.sendFailed.Load(),
		respFailed:  s.responseFailed.Load(),
		rtSumMicros: s.rtSumMicros.Load(),
	}
}

func producerCommand(stdout, stderr io.Writer) *cobra.Command {
	var o producerOptions
	c, fs := modeCommand("producer", "send messages as fast as the broker answers (RocketMQ's benchmark Producer)",
		&o.commonOptions, "topic", o.check,
		func(ctx context.Context) error { return runProducer(ctx, o, stdout, stderr) })
	fs.IntVarP(&o.threads, "threads", "w", 64, "sending goroutines")
	fs.IntVarP(&o.size, "size", "s", 1024, "message body size in bytes")
	fs.StringVar(&o.tag, "tag", "", "message tag")
	fs.IntVar(&o.batch, "batch", 1, "messages per request (> 1 sends SEND_BATCH_MESSAGE)")
	fs.IntVarP(&o.producers, "producers", "p", 1, "producer instances (connections) shared by the goroutines")
	fs.StringVar(&o.client, "client", "go", "go: the official RocketMQ Go client; native: mqd's own remoting client (less client CPU per message)")
	cmdline.CompleteValues(c, "client", "go", "native")
	fs.StringVar(&o.group, "group", "benchmark_producer", "producer group")
	fs.IntVar(&o.retry, "retry", 2, "client retries of a failed sync send (RocketMQ's retryTimesWhenSendFailed)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Second, "send timeout")
	fs.IntVar(&o.topics, "topics", 1, "spread the sends over this many topics, TOPIC-00000 and on, auto-created by the broker (native client)")
	fs.Int64Var(&o.requests, "requests", 0, "stop after this many requests (0: run for --duration); --topics N with --requests 4N reaches every queue of every topic, e.g. to create them before a measured run")
	fs.IntVar(&o.rate, "rate", 0, "requests per second across all goroutines, evenly spaced (0: as fast as the broker answers); for latency at a fixed load")
	return c
}

// pacer spaces requests evenly at a fixed rate across every goroutine: each
// takes the next slot and sleeps until it. A goroutine behind schedule sends
// at once, so a stall is followed by a catch-up burst, not a lower rate.
type pacer struct {
	interval int64 // ns between requests
	next     atomic.Int64
}

func newPacer(rate int) *pacer {
	if rate <= 0 {
		return nil
	}
	p := &pacer{interval: int64(time.Second) / int64(rate)}
	p.next.Store(time.Now().UnixNano())
	return p
}

func (p *pacer) wait(ctx context.Context) {
	slot := p.next.Add(p.interval) - p.interval
	d := time.Until(time.Unix(0, slot))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// check returns a usage error for a value out of range; more producers than
// goroutines are cut to one per goroutine.
func (o *producerOptions) check() error {
	switch {
	case o.threads < 1:
		return cmdline.Usagef("-w must be at least 1")
	case o.size < 1:
		return cmdline.Usagef("-s must be at least 1")
	case o.batch < 1:
		return cmdline.Usagef("--batch must be at least 1")
	case o.producers < 1:
		return cmdline.Usagef("-p must be at least 1")
	case o.client != "go" && o.client != "native":
		return cmdline.Usagef("--client must be go or native")
	case o.rate < 0:
		return cmdline.Usagef("--rate must not be negative")
	case o.requests < 0:
		return cmdline.Usagef("--requests must not be negative")
	case o.topics < 1:
		return cmdline.Usagef("--topics must be at least 1")
	case o.topics > 1 && o.client != "native":
		return cmdline.Usagef("--topics needs --client native")
	}
	if err := o.commonOptions.check(); err != nil {
		return err
	}
	o.producers = min(o.producers, o.threads)
	return nil
}

func runProducer(ctx context.Context, o producerOptions, stdout, stderr io.Writer) error {
	lines := o.intervalLines(stdout, stderr)
	body := make([]byte, o.size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	var snd sender
	var err error
	if o.client == "native" {
		snd, err = newNativeSender(ctx, o)
	} else {
		snd, err = newGoSender(ctx, o, body)
	}
	if err != nil {
		return err
	}
	defer snd.close()

	runCtx, cancel := o.runFor(ctx)
	defer cancel()

	// The Java tool's header, so that logs of both read alike.
	tagCount := 0
	if o.tag != "" {
		tagCount = 1
	}
	fmt.Fprintf(lines, "topic: %s threadCount: %d messageSize: %d keyEnable: false propertySize: 0 tagCount: %d traceEnable: false aclEnable: false messageQuantity: 0\n",
		o.topic, o.threads, o.size, tagCount)
	fmt.Fprintf(lines, "delayEnable: false delayLevel: 1\nasyncEnable: false\nbatchSize: %d producers: %d client: %s\n", o.batch, o.producers, o.client)

	var st producerStats
	var claimed atomic.Int64
	pace := newPacer(o.rate)
	prev := st.snapshot(time.Now())
	report := func(now time.Time) {
		cur := st.snapshot(now)
		printProducerLine(lines, prev, cur, st.maxRTMicros.Load())
		prev = cur
	}
	res := sendLoad(runCtx, o.threads, o.interval, report, func() (time.Duration, error) {
		// The send itself is not bound to runCtx: a request in flight when
		// the run ends completes and is counted, as in RocketMQ's tool.
		if o.requests > 0 && claimed.Add(1) > o.requests {
			return 0, errRunDone
		}
		if pace != nil {
			pace.wait(runCtx)
		}
		t0 := time.Now()
		brokerErr, err := snd.send(context.Background(), body, o.batch)
		rt := time.Since(t0)
		if err != nil {
			if brokerErr {
				st.responseFailed.Add(1)
			} else {
				st.sendFailed.Add(1)
			}
			return rt, err
		}
		st.sentMsgs.Add(int64(o.batch))
		st.okRequests.Add(1)
		st.rtSumMicros.Add(rt.Microseconds())
		atomicMax(&st.maxRTMicros, rt.Microseconds())
		return rt, nil
	})
	end := st.snapshot(time.Now())
	sum := ProducerSummary{
		Mode:           "producer",
		Topic:          o.topic,
		Threads:        o.threads,
		Producers:      o.producers,
		MessageSize:    o.size,
		Batch:          o.batch,
		ElapsedSec:     res.elapsed.Seconds(),
		Sent:           end.sent,
		Requests:       end.ok + end.sendFailed + end.respFailed,
		SendFailed:     end.sendFailed,
		ResponseFailed: end.respFailed,
		TPS:            ratePerSecond(end.sent, res.elapsed),
		MaxRTMs:        st.maxRTMicros.Load() / 1000,
		Latency:        percentiles(res.latency),
	}
	if end.ok > 0 {
		sum.AvgRTMs = float64(end.rtSumMicros) / float64(end.ok) / 1000
	}
	res.printFirstError(stderr)
	if o.output == "json" {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "[Complete] Send Total: %d Send TPS: %d Max RT(ms): %d Average RT(ms): %7.3f Send Failed: %d Response Failed: %d\n",
		sum.Sent+sum.SendFailed+sum.ResponseFailed, sum.TPS, sum.MaxRTMs, sum.AvgRTMs, sum.SendFailed, sum.ResponseFailed)
	fmt.Fprintf(stdout, "Send RT(ms): %s (%d requests of %d message(s), %.1f s)\n",
		sum.Latency, end.ok, o.batch, sum.ElapsedSec)
	return nil
}

// javaHumanTime is RocketMQ's UtilAll.timeMillisToHumanString2, which the
// 4.9.8 benchmark Producer prints ("2026-11-25 20:37:04,470", local time).
const javaHumanTime = "2006-01-02 15:04:05,000"

// printProducerLine prints one interval in RocketMQ's benchmark format. As in
// the Java tool, TPS and Average RT cover the interval, Max RT the whole run,
// and the failure counts are totals.
func printProducerLine(w io.Writer, prev, cur producerSnapshot, maxRTMicros int64) {
	tps := ratePerSecond(cur.sent-prev.sent, cur.at.Sub(prev.at))
	var avg float64
	if n := cur.ok - prev.ok; n > 0 {
		avg = float64(cur.rtSumMicros-prev.rtSumMicros) / float64(n) / 1000
	}
	fmt.Fprintf(w, "Current Time: %s Send TPS: %d Max RT(ms): %d Average RT(ms): %7.3f Send Failed: %d Response Failed: %d\n",
		cur.at.Format(javaHumanTime), tps, maxRTMicros/1000, avg, cur.sendFailed, cur.respFailed)
}

// isBrokerError reports whether the broker answered the send with an error
// code: the client formats those as "CODE: n, DESC: ..." (RocketMQ's
// MQBrokerException, counted as "Response Failed").
func isBrokerError(err error) bool {
	var be primitive.MQBrokerErr
	var bp *primitive.MQBrokerErr
	return errors.As(err, &be) || errors.As(err, &bp) || strings.HasPrefix(err.Error(), "CODE: ")
}

// sender sends one request of n messages and says whether a failure was the
// broker's answer (Response Failed) or the transport's (Send Failed).
type sender interface {
	send(ctx context.Context, payload []byte, n int) (brokerErr bool, err error)
	close()
}

// goSender sends through the official Go client, shared by the goroutines.
type goSender struct {
	producers []rocketmq.Producer
	next      atomic.Uint64
	topic     string
	tag       string
}

func newGoSender(ctx context.Context, o producerOptions, body []byte) (*goSender, error) {
	s := &goSender{topic: o.topic, tag: o.tag}
	for i := 0; i < o.producers; i++ {
		p, err := rocketmq.NewProducer(append([]producer.Option{
			producer.WithNsResolver(primitive.NewPassthroughResolver(splitAddrs(o.namesrv))),
			producer.WithGroupName(o.group),
			// Each producer needs its own client instance: the client shares one
			// instance (one connection set) per instance name in a process.
			producer.WithInstanceName(fmt.Sprintf("mqbench-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), i)),
			producer.WithRetry(o.retry),
			producer.WithSendMsgTimeout(o.timeout),
		}, o.producerSecurity()...)...)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("new producer: %w", err)
		}
		if err := p.Start(); err != nil {
			s.close()
			return nil, fmt.Errorf("start producer: %w", err)
		}
		s.producers = append(s.producers, p)
	}
	// One uncounted send per producer resolves the topic's route (auto-creating
	// the topic through TBW102 if the broker allows it) before the clock starts.
	// Without it, 64 goroutines hit the client's first route lookup at once, and
	// the client briefly publishes a route whose broker address it has not yet
	// recorded ("topic=X route info not found"), failing thousands of sends.
	// It also turns a missing topic into one clear error instead of a flood.
	for i, p := range s.producers {
		if _, err := p.SendSync(ctx, s.message(body)); err != nil {
			s.close()
			return nil, fmt.Errorf("warm-up send of producer %d to %s: %w", i, o.topic, err)
		}
	}
	return s, nil
}

func (s *goSender) message(body []byte) *primitive.Message {
	m := primitive.NewMessage(s.topic, body)
	if s.tag != "" {
		m.WithTag(s.tag)
	}
	return m
}

func (s *goSender) send(ctx context.Context, payload []byte, n int) (bool, error) {
	p := s.producers[s.next.Add(1)%uint64(len(s.producers))]
	msgs := make([]*primitive.Message, n)
	for i := range msgs {
		msgs[i] = s.message(payload)
	}
	_, err := p.SendSync(ctx, msgs...)
	if err != nil {
		return isBrokerError(err), err
	}
	return false, nil
}

func (s *goSender) close() {
	for _, p := range s.producers {
		_ = p.Shutdown()
	}
}
