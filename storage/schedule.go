package storage

import (
	"strconv"
	"time"
)

// Topics whose consume-queue tags code is a delivery time rather than a tags
// hash: the delay-level schedule topic and the RocketMQ 5 timer topic. Every
// engine indexes them so (RocketMQ's layout), and the broker's schedule and
// timer services find due entries by reading queue entries only.
const (
	ScheduleTopic = "SCHEDULE_TOPIC_XXXX"
	TimerTopic    = "rmq_sys_wheel_timer"
)

// DeliverTime is the delivery time (ms) of a message stored at storeTs in
// the schedule topic with delay level levelStr (PropertyDelayLevel), given
// the broker's delay levels: a level beyond the table takes the last one, a
// bad or missing one 1 s.
func DeliverTime(delays []time.Duration, levelStr string, storeTs int64) int64 {
	level, err := strconv.Atoi(levelStr)
	if err != nil || level <= 0 || len(delays) == 0 {
		return storeTs + 1000
	}
	if level > len(delays) {
		level = len(delays)
	}
	return storeTs + delays[level-1].Milliseconds()
}

// TimerOutTime is the delivery time (ms) of a timer-topic message: its
// TIMER_OUT_MS property, or its store time when that is unreadable.
func TimerOutTime(v string, storeTs int64) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return storeTs
	}
	return n
}
