package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 5 minutes with three
// significant digits: fine enough for sub-millisecond sends, wide enough that
// a stalled request is still counted rather than dropped.
const (
	histMin    = 1
	histMax    = int64(5 * time.Minute / time.Microsecond)
	histDigits = 3
)

func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// recordMicros records d, clamped into the histogram's range.
func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	} else if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us) // cannot fail: the value is clamped into range
}

// Percentiles is a latency summary in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50Ms"`
	P90  float64 `json:"p90Ms"`
	P99  float64 `json:"p99Ms"`
	P999 float64 `json:"p999Ms"`
	Max  float64 `json:"maxMs"`
	Mean float64 `json:"meanMs"`
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
		Mean: h.Mean() / 1000,
	}
}

func (p Percentiles) String() string {
	return fmt.Sprintf("p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f", p.P50, p.P90, p.P99, p.P999, p.Max)
}

// atomicMax raises m to v if v is larger.
func atomicMax(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

// every calls f once per interval until stop is closed, then returns.
func every(interval time.Duration, stop <-chan struct{}, f func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			f(now)
		}
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ratePerSecond returns n events over d as a whole number per second, the way
// RocketMQ's benchmark prints TPS.
func ratePerSecond(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// mergeHistograms adds the per-goroutine histograms into one.
func mergeHistograms(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	all := newHistogram()
	for _, h := range hs {
		all.Merge(h)
	}
	return all
}

// loadResult is what sendLoad measured.
type loadResult struct {
	latency  *hdrhistogram.Histogram // of the successful requests
	elapsed  time.Duration
	firstErr string // the first failure, shown in the summary; "" if none
}

// sendLoad is the producer and transaction modes' run: threads goroutines
// call send back to back until ctx ends, while report prints a line every
// interval. send makes one request and returns its round trip and error;
// counting is send's, the latency histogram of the successes and the first
// error are sendLoad's.
// errRunDone from a send function ends its goroutine: the run has sent
// what it was asked to.
var errRunDone = errors.New("run done")

func sendLoad(ctx context.Context, threads int, interval time.Duration, report func(now time.Time), send func() (time.Duration, error)) loadResult {
	start := time.Now()
	stopReport := make(chan struct{})
	reportDone := make(chan struct{})
	go func() {
		defer close(reportDone)
		every(interval, stopReport, report)
	}()

	// One histogram per goroutine: recording takes no lock.
	hists := make([]*hdrhistogram.Histogram, threads)
	var firstErr atomic.Value // string
	var wg sync.WaitGroup
	for w := range hists {
		h := newHistogram()
		hists[w] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rt, err := send()
				if errors.Is(err, errRunDone) {
					return
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				recordMicros(h, rt)
			}
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), latency: mergeHistograms(hists)}
	close(stopReport)
	<-reportDone
	res.firstErr, _ = firstErr.Load().(string)
	return res
}

func (r loadResult) printFirstError(w io.Writer) {
	if r.firstErr != "" {
		fmt.Fprintf(w, "first send error: %s\n", r.firstErr)
	}
}
