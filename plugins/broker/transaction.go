package broker

// Transaction messages (RocketMQ 4.3+ two-phase design). A producer's
// PREPARED send is stored as a half message in RMQ_SYS_TRANS_HALF_TOPIC queue
// 0 (real topic and queue in REAL_TOPIC / REAL_QID, sysFlag reset so it is
// dispatched to the half topic's consume queue and invisible to consumers of
// the real topic). END_TRANSACTION (37) commits it (the real message is
// stored) or rolls it back; either way an op record ("d" tag, body = the half
// message's queue offset in decimal) goes to RMQ_SYS_TRANS_OP_HALF_TOPIC, as
// Java's TransactionalMessageBridge writes it. txcheck.go tracks which half
// messages are unresolved and checks them back with their producers.

import (
	"strconv"
	"time"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// TransactionConfig holds the transaction settings (BrokerConfig names); it is
// squashed into Config.
type TransactionConfig struct {
	RejectTransactionMessage      bool  `koanf:"rejectTransactionMessage"`
	TransactionTimeOut            int64 `koanf:"transactionTimeOut"`       // ms
	TransactionCheckMax           int   `koanf:"transactionCheckMax"`      // checks before discarding
	TransactionCheckInterval      int64 `koanf:"transactionCheckInterval"` // ms
	CheckTransactionMessageEnable bool  `koanf:"checkTransactionMessageEnable"`
	// TransactionMaxPending and TransactionMaxChecksPerRound bound the
	// check-back service's memory and bursts (mqd-only keys).
	TransactionMaxPending        int `koanf:"transactionMaxPending"`
	TransactionMaxChecksPerRound int `koanf:"transactionMaxChecksPerRound"`
}

func init() {
	b := func(name string, def any, doc string) config.Key {
		return config.Key{Path: "broker." + name, Role: "broker", RocketMQ: []string{name}, Default: def, Doc: doc}
	}
	config.Register(
		b("rejectTransactionMessage", false, "refuse transaction (half) messages with NO_PERMISSION"),
		b("transactionTimeOut", int64(6000),
			"a half message is first checked back this long after it was stored, ms (per message: CHECK_IMMUNITY_TIME_IN_SECONDS)"),
		b("transactionCheckMax", 15,
			"check-backs of a half message before it is discarded to TRANS_CHECK_MAX_TIME_TOPIC"),
		b("transactionCheckInterval", int64(60000), "period of the transaction check-back round, ms"),
		b("checkTransactionMessageEnable", true,
			"run the transaction check-back service (CHECK_TRANSACTION_STATE to producers, discard after "+
				"transactionCheckMax); a RocketMQ 3.x key that mqd honours: false leaves unresolved half "+
				"messages pending until END_TRANSACTION or until their commit-log file is deleted"),
		config.Key{Path: "broker.transactionMaxPending", Role: "broker", Default: 100000,
			Doc: "unresolved half messages the check-back service tracks in memory (about 100 bytes each); beyond it the scan of the half queue pauses and later ones wait on disk until earlier ones resolve"},
		config.Key{Path: "broker.transactionMaxChecksPerRound", Role: "broker", Default: 5000,
			Doc: "check-backs (CHECK_TRANSACTION_STATE) sent in one round at most, oldest first; the rest go in the next rounds"},
	)
}

// Names of the transaction system topics' internals (TransactionalMessageUtil).
const (
	// transCheckGroup is the internal group whose consumer offsets record the
	// check service's progress on the half and op queues.
	transCheckGroup = "CID_RMQ_SYS_TRANS"
	// opRemoveTag tags op records: "this half message has ended".
	opRemoveTag = "d"
)

// End-of-transaction types, the sysFlag values the client sends in commitOrRollback.
const (
	tranNotType  = message.SysFlagTranNotType
	tranCommit   = message.SysFlagTranCommit
	tranRollback = message.SysFlagTranRollback
)

// transTopicPerm is the permission of the transaction system topics (R|W).
const transTopicPerm = 6

// ensureTransTopic creates a transaction system topic (1 queue, R|W) on first use.
func (b *Broker) ensureTransTopic(topic string) {
	if _, ok := b.topics.Get(topic); !ok {
		b.topics.CreateInSendBack(topic, 1, transTopicPerm, 0)
	}
}

// putHalf stores a PREPARED send as a half message and answers with the half
// record's offsetMsgId and queue offset, which END_TRANSACTION and check-backs
// refer to. m is the message built from the send; h.queueID its real queue.
func (b *Broker) putHalf(m *message.Message, h *sendHeader) *remoting.Command {
	if b.cfg.RejectTransactionMessage {
		return remoting.NewResponse(remoting.NoPermission,
			"the broker["+b.addr+"] sending transaction message is forbidden")
	}
	// DELAY and delivery times stay in the half message's properties, unused
	// until the commit, which delays the real message as a normal send is
	// (handleEndTransaction). A delivery time the commit would refuse is
	// refused now, while the producer can still hear it.
	if delayLevel(m.Properties) > 0 || hasTimerProperty(m.Properties) {
		probe := *m
		probe.SysFlag = probe.SysFlag&^message.SysFlagTranMask | message.SysFlagTranCommit
		if resp := b.applySchedule(&probe); resp != nil {
			return resp
		}
	}
	props := message.AppendProperty(m.Properties, message.PropertyRealTopic, m.Topic)
	props = message.AppendProperty(props, message.PropertyRealQueueID, strconv.Itoa(int(m.QueueID)))
	if len(props) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal, "the message properties are over max value "+
			strconv.Itoa(message.MaxPropertiesLength)+" with the REAL_TOPIC and REAL_QID properties added")
	}
	m.Properties = props
	m.SysFlag &^= message.SysFlagTranMask
	m.Topic = topicTransHalf
	m.QueueID = 0
	b.ensureTransTopic(topicTransHalf)
	start := time.Now()
	res := b.clientPut(m)
	b.awaitReplica(&res, m.Properties) // SYNC_MASTER: the send answer waits for the slave, as for any send
	b.recordPut(&res, len(m.Body), start)
	return b.sendResponse(&res, h.queueID, nil)
}

// endTxHeader is EndTransactionRequestHeader.
type endTxHeader struct {
	producerGroup        string
	tranStateTableOffset int64
	commitLogOffset      int64
	commitOrRollback     int32
	fromTransactionCheck bool
	msgID                string
	transactionID        string
}

func parseEndTxHeader(req *remoting.Command, h *endTxHeader) *remoting.Command {
	r := extReader{req: req}
	h.producerGroup = r.str("producerGroup", true)
	h.tranStateTableOffset = r.int64("tranStateTableOffset", true, 0)
	h.commitLogOffset = r.int64("commitLogOffset", true, 0)
	h.commitOrRollback = r.int32("commitOrRollback", true, 0)
	h.fromTransactionCheck = r.bool("fromTransactionCheck")
	h.msgID = r.str("msgId", false)
	h.transactionID = r.str("transactionId", false)
	return r.failure()
}

// handleEndTransaction serves END_TRANSACTION (37). The Go client sends it
// without waiting for the answer; Java clients read the code.
func (b *Broker) handleEndTransaction(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var h endTxHeader
	if resp := parseEndTxHeader(req, &h); resp != nil {
		return resp
	}
	if b.storeCfg.BrokerRole == storage.RoleSlave {
		return remoting.NewResponse(remoting.SlaveNotAvailable, "a slave broker cannot end transactions")
	}
	switch h.commitOrRollback {
	case tranNotType:
		// The producer does not know yet; the check-back will ask again.
		return remoting.NewResponse(remoting.Success, "")
	case tranCommit, tranRollback:
	default:
		return remoting.NewResponse(remoting.SystemError,
			"illegal commitOrRollback "+strconv.Itoa(int(h.commitOrRollback))+": want 0, 8 or 12")
	}
	rec, err := b.store.ReadMessage(h.commitLogOffset)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "Find prepared transaction message failed: "+err.Error())
	}
	half, err := message.Decode(rec)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "Find prepared transaction message failed: "+err.Error())
	}
	if resp := checkHalf(half, &h); resp != nil {
		return resp
	}
	ok, busy := b.tx.begin(half.QueueOffset)
	if !ok {
		// A repeated END_TRANSACTION (a late answer to a check-back, a
		// retry) must not store the real message twice.
		remark := "the transaction of this half message has already ended"
		if busy {
			remark = "the transaction of this half message is being ended by another request"
		}
		return remoting.NewResponse(remoting.Success, remark)
	}
	if h.commitOrRollback == tranCommit {
		real, resp := commitMessage(half)
		if resp != nil {
			b.tx.abort(half.QueueOffset)
			return resp
		}
		// A committed message with DELAY or a delivery time is delayed as a
		// normal send is (Java's commit goes through the same putMessage,
		// which routes it via the schedule topic); the commit sysFlag stays.
		if resp := b.applySchedule(real); resp != nil {
			b.tx.abort(half.QueueOffset)
			return resp
		}
		start := time.Now()
		res := b.clientPut(real)
		// SYNC_MASTER: the producer's END_TRANSACTION answer waits for the
		// slave, as Java's putMessage does.
		b.awaitReplica(&res, real.Properties)
		b.recordPut(&res, len(real.Body), start)
		if !res.Status.Stored() {
			b.tx.abort(half.QueueOffset)
			code, remark := putStatusCode(&res)
			return remoting.NewResponse(code, remark)
		}
	}
	opOffset := b.putOpRecord(half.QueueOffset)
	b.tx.end(half.QueueOffset, opOffset)
	return remoting.NewResponse(remoting.Success, "")
}

// checkHalf verifies that the record END_TRANSACTION points at is the half
// message the producer means (Java checkPrepareMessage).
func checkHalf(half *message.Ext, h *endTxHeader) *remoting.Command {
	if half.Topic != topicTransHalf {
		return remoting.NewResponse(remoting.SystemError,
			"the message at commitLogOffset "+strconv.FormatInt(h.commitLogOffset, 10)+" is not a half message")
	}
	if g := message.Property(half.Properties, message.PropertyProducerGroup); g != h.producerGroup {
		return remoting.NewResponse(remoting.SystemError,
			"The producer group wrong: the half message belongs to "+strconv.Quote(g))
	}
	if half.QueueOffset != h.tranStateTableOffset {
		return remoting.NewResponse(remoting.SystemError, "The transaction state table offset wrong: the half message's is "+
			strconv.FormatInt(half.QueueOffset, 10))
	}
	if half.CommitLogOffset != h.commitLogOffset {
		return remoting.NewResponse(remoting.SystemError, "The commit log offset wrong")
	}
	return nil
}

// commitMessage rebuilds the real message of a half message (Java
// EndTransactionProcessor.endMessageTransaction): real topic and queue, commit
// sysFlag, the half's commit-log offset as prepared transaction offset, born
// time and hosts kept, the transaction bookkeeping properties removed.
func commitMessage(half *message.Ext) (*message.Message, *remoting.Command) {
	topic := message.Property(half.Properties, message.PropertyRealTopic)
	qid, err := strconv.ParseInt(message.Property(half.Properties, message.PropertyRealQueueID), 10, 32)
	if topic == "" || err != nil || qid < 0 {
		return nil, remoting.NewResponse(remoting.SystemError,
			"the half message has no valid REAL_TOPIC / REAL_QID properties")
	}
	props := message.RemoveProperty(half.Properties, message.PropertyRealTopic)
	props = message.RemoveProperty(props, message.PropertyRealQueueID)
	props = message.RemoveProperty(props, message.PropertyTransactionPrepared)
	props = message.RemoveProperty(props, message.PropertyTransactionCheckTimes)
	m := half.Message
	m.Topic = topic
	m.QueueID = int32(qid)
	m.Properties = props
	m.SysFlag = m.SysFlag&^message.SysFlagTranMask | message.SysFlagTranCommit
	m.PreparedTransactionOffset = half.CommitLogOffset
	m.TagsCode = 0
	if tags := message.Property(props, message.PropertyTags); tags != "" {
		m.TagsCode = message.TagsHashCode(tags)
	}
	return &m, nil
}

// opRecordProps are the properties of every op record: the "d" tag and no
// wait for the flush (Java sets waitStoreMsgOK false on them too).
var opRecordProps = message.FormatProperties(map[string]string{
	message.PropertyTags:           opRemoveTag,
	message.PropertyWaitStoreMsgOK: "false",
})

// putOpRecord writes the op record that marks half queue offset halfOffset as
// ended and returns its op queue offset, or -1 if it could not be stored (the
// message is then checked back again after a restart; the error is logged).
func (b *Broker) putOpRecord(halfOffset int64) int64 {
	b.ensureTransTopic(topicTransOpHalf)
	m := message.Message{
		Topic:         topicTransOpHalf,
		QueueID:       0,
		Body:          strconv.AppendInt(nil, halfOffset, 10),
		Properties:    opRecordProps,
		BornTimestamp: time.Now().UnixMilli(),
		BornHost:      b.storeHost,
		StoreHost:     b.storeHost,
		TagsCode:      message.TagsHashCode(opRemoveTag),
	}
	res := b.internalPut(&m)
	b.notifyReplica() // WAIT=false: the END_TRANSACTION answer does not wait for it
	if !res.Status.Stored() {
		b.log.Error().Int64("halfOffset", halfOffset).Str("status", res.Status.String()).Err(res.Err).
			Msg("writing a transaction op record failed; the half message will be checked back again after a restart")
		return -1
	}
	return res.QueueOffset
}
