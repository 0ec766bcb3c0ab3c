package broker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// brokerStats counts what the broker stores and serves. The send and pull paths
// only add to atomic counters; a sampler snapshots them every 10 s so rates over
// 10 s, 1 min and 10 min can be computed on request (RocketMQ's putTps and
// getTransferedTps report the same three windows).
type brokerStats struct {
	putNums      atomic.Int64 // messages stored
	putSize      atomic.Int64 // body bytes stored
	putFailed    atomic.Int64 // puts the store refused
	getFound     atomic.Int64 // pulls that found messages
	getMiss      atomic.Int64 // pulls that found none
	getNums      atomic.Int64 // messages transferred to consumers
	putTimeMaxNs atomic.Int64 // slowest put since boot
	keyed        keyedStats   // per topic and topic@group (statsitems.go)

	mu      sync.Mutex
	samples []statsSample // ring, newest last, at most statsWindow
	// Totals at the last two local midnights, for msgPutTotal*Morning.
	todayMorningPut, todayMorningGet         int64
	yesterdayMorningPut, yesterdayMorningGet int64
	morningDay                               int // day of year the today* values belong to
}

type statsSample struct {
	at                               int64 // ms
	put, getTransferred, found, miss int64
}

const (
	statsInterval = 10 * time.Second
	statsWindow   = 61 // 10 minutes of 10-s samples plus the current one
)

func (s *brokerStats) recordPut(msgs int, bytes int, took time.Duration) {
	s.putNums.Add(int64(msgs))
	s.putSize.Add(int64(bytes))
	if ns := took.Nanoseconds(); ns > s.putTimeMaxNs.Load() {
		s.putTimeMaxNs.Store(ns)
	}
}

func (s *brokerStats) recordGet(found bool, msgs int) {
	if found {
		s.getFound.Add(1)
		s.getNums.Add(int64(msgs))
	} else {
		s.getMiss.Add(1)
	}
}

// sample appends a snapshot; the broker calls it every statsInterval.
func (s *brokerStats) sample(now time.Time) {
	s.keyed.sample(now)
	smp := statsSample{at: now.UnixMilli(), put: s.putNums.Load(), getTransferred: s.getNums.Load(),
		found: s.getFound.Load(), miss: s.getMiss.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == statsWindow {
		copy(s.samples, s.samples[1:])
		s.samples = s.samples[:statsWindow-1]
	}
	s.samples = append(s.samples, smp)
	if day := now.YearDay(); day != s.morningDay {
		s.yesterdayMorningPut, s.yesterdayMorningGet = s.todayMorningPut, s.todayMorningGet
		s.todayMorningPut, s.todayMorningGet = smp.put, smp.getTransferred
		s.morningDay = day
	}
}

// rates returns "tps10s tps1m tps10m" for one counter, as RocketMQ formats them.
func (s *brokerStats) rates(pick func(statsSample) int64, current int64, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := statsSample{at: now.UnixMilli()}
	rate := func(back int) float64 {
		if len(s.samples) == 0 {
			return 0
		}
		i := len(s.samples) - back
		if i < 0 {
			i = 0
		}
		old := s.samples[i]
		dt := float64(cur.at-old.at) / 1000
		if dt <= 0 {
			return 0
		}
		return float64(current-pick(old)) / dt
	}
	return fmt.Sprintf("%.2f %.2f %.2f", rate(1), rate(6), rate(60))
}

// tps10s is the newest 10-s rate of a counter (for clusterList's first number).
func (s *brokerStats) runSampler(stop <-chan struct{}) {
	s.sample(time.Now())
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}
