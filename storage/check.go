package storage

import (
	"errors"
	"fmt"

	"github.com/mqd/mqd/storage/message"
)

// CheckPut validates the messages of a put, as every engine must refuse
// them: each one well-formed (MESSAGE_ILLEGAL, PROPERTIES_SIZE_EXCEEDED), a
// batch all of one queue, and the records small enough for one
// fileSize-byte log file with room for its end marker. It returns their
// encoded size, or the refusal (ok false).
func CheckPut(ms []message.Message, batch bool, fileSize int64) (total int, refusal PutResult, ok bool) {
	if len(ms) == 0 {
		return 0, PutResult{Status: PutMessageIllegal, Err: errors.New("empty batch")}, false
	}
	for i := range ms {
		m := &ms[i]
		if err := message.Check(m); err != nil {
			st := PutMessageIllegal
			if err == message.ErrPropsTooLong {
				st = PutPropertiesSizeExceeded
			}
			return 0, PutResult{Status: st, Err: err}, false
		}
		if batch && (m.Topic != ms[0].Topic || m.QueueID != ms[0].QueueID) {
			return 0, PutResult{Status: PutMessageIllegal, Err: fmt.Errorf("batch mixes queues %s/%d and %s/%d", ms[0].Topic, ms[0].QueueID, m.Topic, m.QueueID)}, false
		}
		total += message.EncodedSize(m)
	}
	if int64(total)+message.BlankRecordMinSize > fileSize {
		return 0, PutResult{Status: PutMessageIllegal, Err: fmt.Errorf("%d bytes of records do not fit in a %d-byte commit log file", total, fileSize)}, false
	}
	return total, PutResult{}, true
}

// OutOfRange answers a read at offset of a queue holding [minOff, maxOff)
// when the offset is outside it (RocketMQ's statuses and next offsets): it
// sets res and reports true; false means the read goes on.
func OutOfRange(res *GetResult, offset, minOff, maxOff int64) bool {
	res.MinOffset, res.MaxOffset = minOff, maxOff
	switch {
	case maxOff == 0:
		res.Status, res.NextBeginOffset = GetNoMessageInQueue, 0
	case offset < minOff:
		res.Status, res.NextBeginOffset = GetOffsetTooSmall, minOff
	case offset == maxOff:
		res.Status, res.NextBeginOffset = GetOffsetOverflowOne, offset
	case offset > maxOff:
		res.Status, res.NextBeginOffset = GetOffsetOverflowBadly, maxOff
	default:
		return false
	}
	return true
}
