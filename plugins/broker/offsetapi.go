package broker

import (
	"strconv"

	"github.com/mqd/mqd/protocols/remoting"
)

// offsetResponse is a success carrying one numeric ext field.
func offsetResponse(key string, v int64) *remoting.Command {
	resp := remoting.NewResponse(remoting.Success, "")
	resp.ExtFields = remoting.Fields{{Key: key, Value: strconv.FormatInt(v, 10)}}
	return resp
}

// handleQueryConsumerOffset serves QUERY_CONSUMER_OFFSET (14). With no stored
// offset, a queue that was never truncated answers 0 rather than
// QUERY_NOT_FOUND, as Java does for queues whose start is still in memory: a new
// group then consumes what was sent before it started (docs/protocol.md, Client behaviours the broker honours).
func (b *Broker) handleQueryConsumerOffset(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	group := r.str("consumerGroup", true)
	topic := r.str("topic", true)
	qid := r.int32("queueId", true, 0)
	if resp := r.failure(); resp != nil {
		return resp
	}
	if off, ok := b.offsets.Query(group, topic, qid); ok && off >= 0 {
		return offsetResponse("offset", off)
	}
	if b.store.MinOffset(topic, qid) <= 0 {
		return offsetResponse("offset", 0)
	}
	return remoting.NewResponse(remoting.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
}

// handleUpdateConsumerOffset serves UPDATE_CONSUMER_OFFSET (15). Clients send
// it without waiting; the answer only matters to tools.
func (b *Broker) handleUpdateConsumerOffset(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	group := r.str("consumerGroup", true)
	topic := r.str("topic", true)
	qid := r.int32("queueId", true, 0)
	off := r.int64("commitOffset", true, 0)
	if resp := r.failure(); resp != nil {
		return resp
	}
	// The names become keys of the offset table and of consumerOffset.json:
	// only well-formed ones, so a client cannot grow them with arbitrary
	// strings (10,000 characters, NUL, "../").
	if err := validateGroup(group); err != nil {
		return remoting.NewResponse(remoting.SystemError, "updateConsumerOffset: "+err.Error())
	}
	if err := validateTopic(topic); err != nil {
		return remoting.NewResponse(remoting.SystemError, "updateConsumerOffset: "+err.Error())
	}
	if qid < 0 {
		return remoting.NewResponse(remoting.SystemError, "updateConsumerOffset: queueId must not be negative")
	}
	b.commitClientOffset(group, topic, qid, off)
	return remoting.NewResponse(remoting.Success, "")
}

// queueHeader reads the topic and queueId every queue query carries.
func queueHeader(r *extReader) (string, int32) {
	return r.str("topic", true), r.int32("queueId", true, 0)
}

// handleGetMaxOffset serves GET_MAX_OFFSET (30): the next offset to be written.
func (b *Broker) handleGetMaxOffset(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic, qid := queueHeader(&r)
	if resp := r.failure(); resp != nil {
		return resp
	}
	return offsetResponse("offset", b.store.MaxOffset(topic, qid))
}

// handleGetMinOffset serves GET_MIN_OFFSET (31).
func (b *Broker) handleGetMinOffset(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic, qid := queueHeader(&r)
	if resp := r.failure(); resp != nil {
		return resp
	}
	return offsetResponse("offset", b.store.MinOffset(topic, qid))
}

// handleSearchOffsetByTimestamp serves SEARCH_OFFSET_BY_TIMESTAMP (29).
func (b *Broker) handleSearchOffsetByTimestamp(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic, qid := queueHeader(&r)
	ts := r.int64("timestamp", true, 0)
	if resp := r.failure(); resp != nil {
		return resp
	}
	return offsetResponse("offset", b.store.OffsetByTime(topic, qid, ts))
}

// handleGetEarliestMsgStoretime serves GET_EARLIEST_MSG_STORETIME (32); like
// Java it answers -1 for a queue without messages.
func (b *Broker) handleGetEarliestMsgStoretime(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic, qid := queueHeader(&r)
	if resp := r.failure(); resp != nil {
		return resp
	}
	ts, err := b.store.EarliestMessageTime(topic, qid)
	if err != nil {
		ts = -1
	}
	return offsetResponse("timestamp", ts)
}

// handleViewMessageByID serves VIEW_MESSAGE_BY_ID (33): the record at a
// commit-log offset (the offset inside an offsetMsgId), in stored format.
func (b *Broker) handleViewMessageByID(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	off := r.int64("offset", true, 0)
	if resp := r.failure(); resp != nil {
		return resp
	}
	rec, err := b.store.ReadMessage(off)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError,
			"can not find message by the offset, "+strconv.FormatInt(off, 10)+": "+err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = rec
	return resp
}
