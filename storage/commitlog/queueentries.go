package commitlog

import (
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// timerTopic holds messages with an arbitrary delivery time (RocketMQ 5's
// rmq_sys_wheel_timer); its consume-queue tags field is the delivery time,
// taken from the TIMER_OUT_MS property the broker sets.
const timerTopic = storage.TimerTopic

// timerOutTime is the tags code of a timer-topic entry: TIMER_OUT_MS, or the
// store time when the property is missing or malformed (deliver at once
// rather than never).
func timerOutTime(v string, storeTs int64) int64 { return storage.TimerOutTime(v, storeTs) }

// ReadQueueEntries implements storage.QueueEntryReader.
func (s *Store) ReadQueueEntries(topic string, queueID int32, offset int64, limit int, dst []storage.QueueEntry) ([]storage.QueueEntry, int64) {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil || limit <= 0 {
		return dst, offset
	}
	offset = min(offset, cq.max.Load())
	offset = max(offset, cq.min.Load())
	for n := 0; n < limit; {
		mf, entries := cq.entries(offset, int64(limit-n)*cqUnit)
		if mf == nil {
			// Past the end, or the file holding offset is gone: go on at the
			// next file if there is one.
			next := (offset*cqUnit/s.cqFileSize + 1) * s.cqFileSize / cqUnit
			if offset >= cq.max.Load() || next >= cq.max.Load() {
				return dst, offset
			}
			offset = next
			continue
		}
		for i := 0; i+cqUnit <= len(entries); i += cqUnit {
			phy, size, tags := getEntry(entries[i:])
			if size != placeholderSize && validEntry(phy, size) {
				dst = append(dst, storage.QueueEntry{Offset: offset, CommitLogOffset: phy, Size: size, TagsCode: tags})
			}
			offset++
			n++
		}
		mf.release()
	}
	return dst, offset
}

var _ storage.QueueEntryReader = (*Store)(nil)

// tagsCodeFor is the consume-queue tags field of a record being re-dispatched:
// a delivery time for the schedule and timer topics, else the tags hash.
func (s *Store) tagsCodeFor(topic, props []byte, storeTs int64) int64 {
	switch string(topic) {
	case scheduleTopic:
		return s.deliverTime(string(message.PropertyBytes(props, message.PropertyDelayLevel)), storeTs)
	case timerTopic:
		return timerOutTime(string(message.PropertyBytes(props, message.PropertyTimerOutMS)), storeTs)
	}
	return message.TagsHashCodeBytes(message.PropertyBytes(props, message.PropertyTags))
}
