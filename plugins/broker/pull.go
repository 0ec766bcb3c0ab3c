package broker

import (
	"strconv"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
)

// Pull sysFlag bits (PullSysFlag).
const (
	pullFlagCommitOffset int32 = 1
	pullFlagSuspend      int32 = 2
	pullFlagSubscription int32 = 4
	pullFlagClassFilter  int32 = 8
)

// pullHeader is PullMessageRequestHeader.
type pullHeader struct {
	group          string
	topic          string
	queueID        int32
	queueOffset    int64
	maxMsgNums     int32
	sysFlag        int32
	commitOffset   int64
	suspendMillis  int64
	subscription   string
	subVersion     int64
	expressionType string
}

func parsePullHeader(req *remoting.Command, h *pullHeader) *remoting.Command {
	r := extReader{req: req}
	h.group = r.str("consumerGroup", true)
	h.topic = r.str("topic", true)
	h.queueID = r.int32("queueId", true, 0)
	h.queueOffset = r.int64("queueOffset", true, 0)
	h.maxMsgNums = r.int32("maxMsgNums", false, 0)
	h.sysFlag = r.int32("sysFlag", false, 0)
	h.commitOffset = r.int64("commitOffset", false, -1)
	h.suspendMillis = r.int64("suspendTimeoutMillis", false, 0)
	h.subscription = r.str("subscription", false)
	h.subVersion = r.int64("subVersion", false, 0)
	h.expressionType = r.str("expressionType", false)
	return r.failure()
}

// handlePull serves PULL_MESSAGE (11), parking the request when it finds
// nothing and asks to be suspended.
func (b *Broker) handlePull(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var h pullHeader
	if resp := parsePullHeader(req, &h); resp != nil {
		return resp
	}
	filter, resp := b.checkPull(conn, &h)
	if resp != nil {
		return resp
	}
	if resp := b.slaveReadCheck(); resp != nil {
		return resp
	}
	if h.sysFlag&pullFlagCommitOffset != 0 && b.cfg.BrokerID == 0 && h.commitOffset >= 0 {
		// The side-channel commit of push consumers (masters only).
		b.offsets.Commit(h.group, h.topic, h.queueID, h.commitOffset)
	}
	var connDone <-chan struct{}
	if conn != nil {
		connDone = conn.Done()
	}
	out := b.pull(&h, filter, connDone)
	if out != nil && out.Code == remoting.Success {
		b.groupStats.recordGet(h.group, h.topic, int64(len(out.BodyParts)))
	}
	return out
}

// checkPull runs Java's pull checks in order and resolves the subscription's filter.
func (b *Broker) checkPull(conn *remoting.Conn, h *pullHeader) (storage.Filter, *remoting.Command) {
	if b.cfg.BrokerPermission&body.PermRead == 0 {
		return nil, remoting.NewResponse(remoting.NoPermission, "the broker["+b.addr+"] pulling message is forbidden")
	}
	sg, ok := b.subGroups.FindOrCreate(h.group)
	if !ok {
		return nil, remoting.NewResponse(remoting.SubscriptionGroupNotExist,
			"subscription group ["+h.group+"] does not exist")
	}
	if !sg.ConsumeEnable {
		return nil, remoting.NewResponse(remoting.NoPermission, "subscription group no permission, "+h.group)
	}
	tc, ok := b.topics.Get(h.topic)
	if !ok {
		tc, ok = b.slaveTopicConfig(h.topic) // replicated before its config was copied
	}
	if !ok {
		return nil, remoting.NewResponse(remoting.TopicNotExist, "topic["+h.topic+"] not exist, apply first please!")
	}
	if tc.Perm&body.PermRead == 0 {
		return nil, remoting.NewResponse(remoting.NoPermission, "the topic["+h.topic+"] pulling message is forbidden")
	}
	if h.queueID < 0 || h.queueID >= tc.ReadQueueNums {
		return nil, remoting.NewResponse(remoting.SystemError, "queueId["+strconv.Itoa(int(h.queueID))+
			"] is illegal, topic:["+h.topic+"] topicConfig.readQueueNums:["+strconv.Itoa(int(tc.ReadQueueNums))+
			"] consumer:["+connAddrString(conn)+"]")
	}

	if h.sysFlag&pullFlagSubscription != 0 {
		if !isTagExpression(h.expressionType) {
			return b.compileSQLFilter(h.group, h.topic, h.expressionType, h.subscription, remoting.SubscriptionParseFailed)
		}
		return newTagFilter(h.subscription), nil
	}
	cg, ok := b.clients.ConsumerGroup(h.group)
	if !ok {
		return nil, remoting.NewResponse(remoting.SubscriptionNotExist, "the consumer's group info not exist")
	}
	if !sg.ConsumeBroadcastEnable && cg.MessageModel == body.Broadcasting {
		return nil, remoting.NewResponse(remoting.NoPermission,
			"the consumer group["+h.group+"] can not consume by broadcast way")
	}
	sd, ok := b.clients.FindSubscription(h.group, h.topic)
	if !ok {
		return nil, remoting.NewResponse(remoting.SubscriptionNotExist, "the consumer's subscription not exist")
	}
	if sd.SubVersion < h.subVersion {
		return nil, remoting.NewResponse(remoting.SubscriptionNotLatest, "the consumer's subscription not latest")
	}
	if !sd.IsTagType() {
		return b.compileSQLFilter(h.group, h.topic, sd.ExpressionType, sd.SubString, remoting.FilterDataNotExist)
	}
	return heartbeatFilter{sd}, nil
}

// unsupportedFilter is Java's answer to SQL92 when enablePropertyFilter is off.
func unsupportedFilter(exprType string) *remoting.Command {
	return remoting.NewResponse(remoting.SystemError,
		"The broker does not support consumer to filter message by "+exprType)
}

// pull reads the queue and, when nothing is there and the consumer asked for
// suspension, parks until a message arrives or the suspension ends.
func (b *Broker) pull(h *pullHeader, filter storage.Filter, connDone <-chan struct{}) *remoting.Command {
	maxMsgs := int(h.maxMsgNums)
	if maxMsgs <= 0 {
		maxMsgs = 1 // Java returns one message for 0, not none
	}
	offset := h.queueOffset
	suspend := h.sysFlag&pullFlagSuspend != 0
	var deadline time.Time
	woken := false
	for {
		// maxBytes 0: the store's maxTransfer{Bytes,Count}OnMessageIn{Memory,Disk}
		// settings bound the batch, as in Java.
		res := b.store.GetMessages(h.topic, h.queueID, offset, maxMsgs, 0, filter)
		code := pullStatusCode(res.Status, offset)
		// After a wake-up, messages the filter rejects are skipped while the
		// pull stays parked, as Java re-checks the tag before resuming.
		if woken && res.Status == storage.GetNoMatchedMessage && suspend && res.NextBeginOffset > offset &&
			time.Until(deadline) > 0 {
			offset = res.NextBeginOffset
			res.Release()
			continue
		}
		if code != remoting.PullNotFound || !suspend {
			return b.pullResponse(code, res, h)
		}
		if deadline.IsZero() {
			d := b.holdTimeout(h.suspendMillis)
			if d <= 0 {
				return b.pullResponse(code, res, h)
			}
			deadline = time.Now().Add(d)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return b.pullResponse(code, res, h)
		}
		// NextBeginOffset of a PULL_NOT_FOUND is where the consumer goes on;
		// park there.
		if res.NextBeginOffset > offset {
			offset = res.NextBeginOffset
		}
		res.Release()
		switch b.pullHold.hold(h.topic, h.queueID, offset, remaining, b.longPollingEnable(), connDone) {
		case holdConnClosed:
			return nil
		case holdShutdown:
			return b.pullNotFound(h, offset)
		case holdExpired:
			suspend = false // one last read, then answer whatever it finds
		case holdWoken:
			woken = true
		}
	}
}

// holdTimeout is how long a pull may be parked: the consumer's suspend time
// capped below its RPC deadline, or shortPollingTimeMills without long polling.
func (b *Broker) holdTimeout(suspendMillis int64) time.Duration {
	if !b.longPollingEnable() {
		return time.Duration(b.shortPollingTimeMills()) * time.Millisecond
	}
	if suspendMillis <= 0 {
		return 0
	}
	return min(time.Duration(suspendMillis)*time.Millisecond, maxPullHold)
}

// pullStatusCode maps a get status to the pull response code (Java
// PullMessageProcessor); an empty or unknown queue is "not found" only for a
// pull from offset 0.
func pullStatusCode(st storage.GetStatus, offset int64) int16 {
	switch st {
	case storage.GetFound:
		return remoting.Success
	case storage.GetNoMatchedMessage, storage.GetMessageWasRemoving:
		return remoting.PullRetryImmediately
	case storage.GetNoMatchedLogicQueue, storage.GetNoMessageInQueue:
		if offset != 0 {
			return remoting.PullOffsetMoved
		}
		return remoting.PullNotFound
	case storage.GetOffsetFoundNull, storage.GetOffsetOverflowOne:
		return remoting.PullNotFound
	case storage.GetOffsetOverflowBadly, storage.GetOffsetTooSmall:
		return remoting.PullOffsetMoved
	default:
		return remoting.SystemError
	}
}

// getStatusNames are Java's GetMessageStatus names, sent as the pull remark.
var getStatusNames = [...]string{
	storage.GetFound:               "FOUND",
	storage.GetNoMatchedMessage:    "NO_MATCHED_MESSAGE",
	storage.GetMessageWasRemoving:  "MESSAGE_WAS_REMOVING",
	storage.GetOffsetFoundNull:     "OFFSET_FOUND_NULL",
	storage.GetOffsetOverflowBadly: "OFFSET_OVERFLOW_BADLY",
	storage.GetOffsetOverflowOne:   "OFFSET_OVERFLOW_ONE",
	storage.GetOffsetTooSmall:      "OFFSET_TOO_SMALL",
	storage.GetNoMatchedLogicQueue: "NO_MATCHED_LOGIC_QUEUE",
	storage.GetNoMessageInQueue:    "NO_MESSAGE_IN_QUEUE",
}

func getStatusName(st storage.GetStatus) string {
	if st >= 0 && int(st) < len(getStatusNames) {
		return getStatusNames[st]
	}
	return "UNKNOWN"
}

// pullResponse answers a pull from a read and takes over releasing the read
// (a found body releases it through OnWritten). The ext always
// carries the four offsets fields: the client takes nextBeginOffset as its next
// offset whatever the code.
func (b *Broker) pullResponse(code int16, res *storage.GetResult, h *pullHeader) *remoting.Command {
	resp := remoting.NewResponse(code, getStatusName(res.Status))
	resp.ExtFields = pullExt(res.NextBeginOffset, res.MinOffset, res.MaxOffset, b.suggestBrokerID(res))
	b.stats.recordGet(code == remoting.Success, len(res.Records))
	if code == remoting.Success {
		b.stats.keyed.recordGet(h.topic, h.group, len(res.Records), res.TotalBytes)
	}
	if code == remoting.Success {
		// Records alias the store's mapped memory: the connection writes them
		// from there and hands the read back once they are sent (or dropped).
		resp.BodyParts = res.Records
		resp.OnWritten = res.ReleaseFunc
		res.ReleaseFunc = nil
		return resp
	}
	res.Release()
	return resp
}

// pullNotFound answers a parked pull at shutdown without reading messages.
func (b *Broker) pullNotFound(h *pullHeader, offset int64) *remoting.Command {
	resp := remoting.NewResponse(remoting.PullNotFound, "OFFSET_OVERFLOW_ONE")
	resp.ExtFields = pullExt(offset, b.store.MinOffset(h.topic, h.queueID), b.store.MaxOffset(h.topic, h.queueID), "0")
	return resp
}

// pullExt is a pull answer's header; suggest is suggestWhichBrokerId ("0",
// the master, unless suggestBrokerID says otherwise).
func pullExt(next, minOff, maxOff int64, suggest string) remoting.Fields {
	return remoting.Fields{
		{Key: "nextBeginOffset", Value: strconv.FormatInt(next, 10)},
		{Key: "minOffset", Value: strconv.FormatInt(minOff, 10)},
		{Key: "maxOffset", Value: strconv.FormatInt(maxOff, 10)},
		{Key: "suggestWhichBrokerId", Value: suggest},
	}
}
