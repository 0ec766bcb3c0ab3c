package broker

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// retryTopicPrefix starts the retry topic of every consumer group (MixAll).
const retryTopicPrefix = "%RETRY%"

// sendForbiddenTopics are system topics clients may not send to (Java
// TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET): the broker alone writes them.
var sendForbiddenTopics = map[string]bool{
	"SCHEDULE_TOPIC_XXXX":         true,
	"RMQ_SYS_TRANS_HALF_TOPIC":    true,
	"RMQ_SYS_TRANS_OP_HALF_TOPIC": true,
	"TRANS_CHECK_MAX_TIME_TOPIC":  true,
	"SELF_TEST_TOPIC":             true,
	"OFFSET_MOVED_EVENT":          true,
	timerTopic:                    true,
}

// Topic system flags (TopicSysFlag) for unit-mode producers.
const (
	topicSysFlagUnit    int32 = 1
	topicSysFlagUnitSub int32 = 2
)

// sendHeader is SendMessageRequestHeader; V2 (codes 310, 320) spells the same
// fields with single letters.
type sendHeader struct {
	producerGroup         string
	topic                 string
	defaultTopic          string
	defaultTopicQueueNums int32
	queueID               int32
	sysFlag               int32
	bornTimestamp         int64
	flag                  int32
	properties            string
	reconsumeTimes        int32
	unitMode              bool
	maxReconsumeTimes     int32
	batch                 bool
}

// Field names of the send header, V1 and V2 spellings in the same order.
var (
	sendNamesV1 = [...]string{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
		"sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "maxReconsumeTimes", "batch"}
	sendNamesV2 = [...]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"}
)

// parseSendHeader decodes the send header of req. V2 codes use the letter names;
// a V2 request that carries the long names instead is accepted too.
func parseSendHeader(req *remoting.Command, h *sendHeader) *remoting.Command {
	names := &sendNamesV1
	switch req.Code {
	case remoting.SendMessageV2, remoting.SendBatchMessage, remoting.SendReplyMessageV2:
		if req.ExtFields.Has("b") {
			names = &sendNamesV2
		} else if !req.ExtFields.Has("topic") {
			names = &sendNamesV2 // neither spelling: report the V2 name
		}
	}
	r := extReader{req: req}
	h.producerGroup = r.str(names[0], true)
	h.topic = r.str(names[1], true)
	h.defaultTopic = r.str(names[2], false)
	h.defaultTopicQueueNums = r.int32(names[3], false, 4)
	h.queueID = r.int32(names[4], true, 0)
	h.sysFlag = r.int32(names[5], false, 0)
	h.bornTimestamp = r.int64(names[6], false, 0)
	h.flag = r.int32(names[7], false, 0)
	h.properties = r.str(names[8], false)
	h.reconsumeTimes = r.int32(names[9], false, 0)
	h.unitMode = r.bool(names[10])
	h.maxReconsumeTimes = r.int32(names[11], false, 0)
	h.batch = r.bool(names[12])
	return r.failure()
}

// handleSend serves SEND_MESSAGE (10) and SEND_MESSAGE_V2 (310).
func (b *Broker) handleSend(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var h sendHeader
	if resp := parseSendHeader(req, &h); resp != nil {
		return resp
	}
	if _, resp := b.checkSend(conn, &h); resp != nil {
		return resp
	}
	return b.putOne(conn, req, &h)
}

// handleSendReply serves SEND_REPLY_MESSAGE (324, and 325 with V2 names): the reply is stored like a
// normal send (when storeReplyMessageEnable) and pushed to the requester.
func (b *Broker) handleSendReply(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var h sendHeader
	if resp := parseSendHeader(req, &h); resp != nil {
		return resp
	}
	if _, resp := b.checkSend(conn, &h); resp != nil {
		return resp
	}
	return b.sendReply(conn, req, &h)
}

// checkSend runs Java's msgCheck in its order: broker write permission, topic
// name, system topics, topic existence (auto-creating it from the default topic
// or as a retry topic), queue id range.
func (b *Broker) checkSend(conn *remoting.Conn, h *sendHeader) (body.TopicConfig, *remoting.Command) {
	if b.cfg.BrokerPermission&body.PermWrite == 0 {
		return body.TopicConfig{}, remoting.NewResponse(remoting.NoPermission,
			"the broker["+b.addr+"] sending message is forbidden")
	}
	if err := validateTopic(h.topic); err != nil {
		// Java answers SYSTEM_ERROR, which the client retries in vain; a bad
		// name is the message's fault, so mqd answers MESSAGE_ILLEGAL.
		return body.TopicConfig{}, remoting.NewResponse(remoting.MessageIllegal, err.Error())
	}
	if sendForbiddenTopics[h.topic] {
		return body.TopicConfig{}, remoting.NewResponse(remoting.NoPermission,
			"Sending message to topic["+h.topic+"] is forbidden.")
	}
	tc, ok := b.topics.Get(h.topic)
	if !ok {
		var sysFlag int32
		isRetry := strings.HasPrefix(h.topic, retryTopicPrefix)
		if h.unitMode {
			if isRetry {
				sysFlag = topicSysFlagUnitSub
			} else {
				sysFlag = topicSysFlagUnit
			}
		}
		tc, ok = b.topics.CreateInSendMessage(h.topic, h.defaultTopic, connAddrString(conn), h.defaultTopicQueueNums, sysFlag)
		if !ok && isRetry {
			tc, ok = b.topics.CreateInSendBack(h.topic, 1, body.PermWrite|body.PermRead, sysFlag)
		}
		if !ok {
			return body.TopicConfig{}, remoting.NewResponse(remoting.TopicNotExist,
				"topic["+h.topic+"] not exist, apply first please!")
		}
	}
	if valid := max(tc.WriteQueueNums, tc.ReadQueueNums); h.queueID >= valid {
		return body.TopicConfig{}, remoting.NewResponse(remoting.SystemError,
			"request queueId["+strconv.Itoa(int(h.queueID))+"] is illegal, topic:["+h.topic+
				"] writeQueueNums:["+strconv.Itoa(int(tc.WriteQueueNums))+"] readQueueNums:["+
				strconv.Itoa(int(tc.ReadQueueNums))+"] producer:["+connAddrString(conn)+"]")
	}
	if h.queueID < 0 {
		if tc.WriteQueueNums <= 0 {
			return body.TopicConfig{}, remoting.NewResponse(remoting.SystemError,
				"topic["+h.topic+"] has no writable queue")
		}
		h.queueID = rand.Int32N(tc.WriteQueueNums)
	}
	return tc, nil
}

// checkBody applies the size limits Java enforces in the producer and the store.
func (b *Broker) checkBody(bodyLen int, props string) *remoting.Command {
	if bodyLen > b.cfg.MaxMessageSize {
		return remoting.NewResponse(remoting.MessageIllegal,
			"the message body size over max value, MAX: "+strconv.Itoa(b.cfg.MaxMessageSize))
	}
	if len(props) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal,
			"the message properties length "+strconv.Itoa(len(props))+" is over max value "+
				strconv.Itoa(message.MaxPropertiesLength))
	}
	return nil
}

// buildMessage fills m from a checked send header. The body is not copied: the
// remoting codec gives every command a buffer of its own.
func (b *Broker) buildMessage(conn *remoting.Conn, h *sendHeader, msgBody []byte, m *message.Message) {
	props := b.withCluster(h.properties)
	*m = message.Message{
		Topic:          h.topic,
		QueueID:        h.queueID,
		Flag:           h.flag,
		Body:           msgBody,
		Properties:     props,
		SysFlag:        h.sysFlag,
		BornTimestamp:  h.bornTimestamp,
		BornHost:       connAddrPort(conn),
		StoreHost:      b.storeHost,
		ReconsumeTimes: h.reconsumeTimes,
	}
	if tags := message.Property(props, message.PropertyTags); tags != "" {
		m.TagsCode = message.TagsHashCode(tags)
	}
}

// withCluster returns props with CLUSTER=<brokerClusterName>, which Java adds to
// every stored message and request/reply responders require. A CLUSTER the
// client copied from another message (send-back fallback) is replaced.
func (b *Broker) withCluster(props string) string {
	if message.Property(props, message.PropertyCluster) == b.cfg.BrokerClusterName {
		return props
	}
	return message.AppendProperty(props, message.PropertyCluster, b.cfg.BrokerClusterName)
}

// putOne stores a single message and answers the producer.
func (b *Broker) putOne(conn *remoting.Conn, req *remoting.Command, h *sendHeader) *remoting.Command {
	if resp := b.checkBody(len(req.Body), h.properties); resp != nil {
		return resp
	}
	var m message.Message
	b.buildMessage(conn, h, req.Body, &m)
	if len(m.Properties) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal, "the message properties are over max value "+
			strconv.Itoa(message.MaxPropertiesLength)+" with the CLUSTER property added")
	}
	if resp := b.divertRetryToDLQ(req, h, &m); resp != nil { // sendback.go
		return resp
	}
	if message.TranType(m.SysFlag) == message.SysFlagTranPrepared {
		return b.putHalf(&m, h) // transaction.go
	}
	if resp := b.applySchedule(&m); resp != nil { // DELAY and timers, schedule.go
		return resp
	}
	start := time.Now()
	res := b.clientPut(&m)
	b.awaitReplica(&res, m.Properties) // SYNC_MASTER: until a slave confirms
	b.recordPut(&res, len(m.Body), start)
	b.recordTopicPut(&res, h.topic, len(m.Body))
	return b.sendResponse(&res, h.queueID, nil)
}

// sendResponse maps a put result to the send response (Java
// handlePutMessageResult). ids, when non-nil, is the batch's msgId value.
func (b *Broker) sendResponse(res *storage.PutResult, queueID int32, ids []string) *remoting.Command {
	code, remark := putStatusCode(res)
	resp := remoting.NewResponse(code, remark)
	if !res.Status.Stored() {
		return resp
	}
	var msgID string
	if ids != nil {
		msgID = strings.Join(ids, ",")
	} else {
		msgID = message.OffsetMsgID(b.storeHost, res.CommitLogOffset)
	}
	traceOn := "false"
	if b.cfg.TraceOn {
		traceOn = "true"
	}
	resp.ExtFields = remoting.Fields{
		{Key: "msgId", Value: msgID},
		{Key: "queueId", Value: strconv.Itoa(int(queueID))},
		{Key: "queueOffset", Value: strconv.FormatInt(res.QueueOffset, 10)},
		{Key: message.PropertyMsgRegion, Value: b.cfg.RegionID},
		{Key: message.PropertyTraceSwitch, Value: traceOn},
	}
	return resp
}

// putStatusCode maps storage.PutStatus to a response code and remark.
func putStatusCode(res *storage.PutResult) (int16, string) {
	detail := ""
	if res.Err != nil {
		detail = ": " + res.Err.Error()
	}
	switch res.Status {
	case storage.PutOK:
		return remoting.Success, ""
	case storage.PutFlushDiskTimeout:
		return remoting.FlushDiskTimeout, ""
	case storage.PutFlushSlaveTimeout:
		return remoting.FlushSlaveTimeout, ""
	case storage.PutSlaveNotAvailable:
		return remoting.SlaveNotAvailable, ""
	case storage.PutCreateMappedFileFailed:
		return remoting.SystemError, "create mapped file failed, server is busy or broken" + detail
	case storage.PutMessageIllegal, storage.PutPropertiesSizeExceeded:
		return remoting.MessageIllegal, "the message is illegal, maybe msg body or properties length not matched" + detail
	case storage.PutServiceNotAvailable:
		return remoting.ServiceNotAvailable, "service not available now: the disk may be full, the store shut down or this broker a slave" + detail
	case storage.PutDiskFull:
		return remoting.ServiceNotAvailable, "service not available now: disk full" + detail
	case storage.PutOSPageCacheBusy:
		return remoting.SystemError, "[PC_SYNCHRONIZED]broker busy, start flow control for a while" + detail
	case storage.PutInSyncReplicasNotEnough:
		return remoting.SystemError, "in-sync replicas not enough"
	default:
		return remoting.SystemError, "UNKNOWN_ERROR" + detail
	}
}

// handleSendBatch serves SEND_BATCH_MESSAGE (320): the body holds several
// messages of one topic and queue, stored contiguously.
func (b *Broker) handleSendBatch(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var h sendHeader
	if resp := parseSendHeader(req, &h); resp != nil {
		return resp
	}
	if len(h.topic) > message.MaxTopicLength {
		return remoting.NewResponse(remoting.MessageIllegal, "message topic length too long "+strconv.Itoa(len(h.topic)))
	}
	if strings.HasPrefix(h.topic, retryTopicPrefix) {
		return remoting.NewResponse(remoting.MessageIllegal, "batch request does not support retry group "+h.topic)
	}
	if _, resp := b.checkSend(conn, &h); resp != nil {
		return resp
	}
	if len(req.Body) > b.cfg.MaxMessageSize {
		return remoting.NewResponse(remoting.MessageIllegal,
			"the message body size over max value, MAX: "+strconv.Itoa(b.cfg.MaxMessageSize))
	}
	if delayLevel(h.properties) > 0 {
		return remoting.NewResponse(remoting.MessageIllegal, "batch messages do not support delay levels")
	}
	if message.TranType(h.sysFlag) != message.SysFlagTranNotType {
		return remoting.NewResponse(remoting.MessageIllegal, "batch messages do not support transactions")
	}
	bornHost := connAddrPort(conn)
	var ms []message.Message
	var bad *remoting.Command
	err := message.DecodeBatch(req.Body, func(flag int32, msgBody []byte, props string) error {
		if delayLevel(props) > 0 || hasTimerProperty(props) {
			bad = remoting.NewResponse(remoting.MessageIllegal, "batch messages do not support delay levels or delivery times")
			return errBatchRejected
		}
		if h.properties != "" {
			props = joinProperties(props, h.properties)
		}
		props = b.withCluster(props)
		if len(props) > message.MaxPropertiesLength {
			bad = remoting.NewResponse(remoting.MessageIllegal, "the properties of batch message "+
				strconv.Itoa(len(ms))+" are over max value "+strconv.Itoa(message.MaxPropertiesLength))
			return errBatchRejected
		}
		m := message.Message{
			Topic:          h.topic,
			QueueID:        h.queueID,
			Flag:           flag,
			Body:           msgBody,
			Properties:     props,
			SysFlag:        h.sysFlag,
			BornTimestamp:  h.bornTimestamp,
			BornHost:       bornHost,
			StoreHost:      b.storeHost,
			ReconsumeTimes: h.reconsumeTimes,
		}
		if tags := message.Property(props, message.PropertyTags); tags != "" {
			m.TagsCode = message.TagsHashCode(tags)
		}
		ms = append(ms, m)
		return nil
	})
	if bad != nil {
		return bad
	}
	if err != nil {
		return remoting.NewResponse(remoting.MessageIllegal, "bad batch body: "+err.Error())
	}
	start := time.Now()
	res := b.clientPutBatch(ms)
	b.awaitReplica(&res, ms[0].Properties)
	b.recordPut(&res, len(req.Body), start)
	b.recordTopicPut(&res, h.topic, len(req.Body))
	if !res.Status.Stored() {
		return b.sendResponse(&res, h.queueID, nil)
	}
	ids := make([]string, len(res.Offsets))
	for i, off := range res.Offsets {
		ids[i] = message.OffsetMsgID(b.storeHost, off)
	}
	if len(ids) == 0 {
		ids = append(ids, message.OffsetMsgID(b.storeHost, res.CommitLogOffset))
	}
	return b.sendResponse(&res, h.queueID, ids)
}

// errBatchRejected stops batch decoding once a message is refused.
var errBatchRejected = errors.New("batch message rejected")

// delayLevel returns the DELAY property as a number (0 when absent or malformed).
func delayLevel(props string) int {
	v := message.Property(props, message.PropertyDelayLevel)
	if v == "" {
		return 0 // the common case, without Atoi's error allocation
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// joinProperties appends the property string extra to props.
func joinProperties(props, extra string) string {
	if props != "" && props[len(props)-1] != message.PropertySeparator {
		props += string(message.PropertySeparator)
	}
	return props + extra
}

// connAddrPort is the peer's address as a netip (IPv4-mapped addresses
// unmapped, so records keep the 4-byte host form).
func connAddrPort(conn *remoting.Conn) netip.AddrPort {
	if conn == nil {
		return netip.AddrPort{}
	}
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// connAddrString is the peer's address for remarks and logs.
func connAddrString(conn *remoting.Conn) string {
	if conn == nil {
		return ""
	}
	if a := conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// extReader decodes ext fields of a request header, remembering the first
// problem the way Java's header decoding reports it (SYSTEM_ERROR naming the field).
type extReader struct {
	req *remoting.Command
	err string
}

func (r *extReader) fail(msg string) {
	if r.err == "" {
		r.err = msg
	}
}

func (r *extReader) str(key string, required bool) string {
	v, ok := r.req.ExtFields.Get(key)
	if !ok && required {
		r.fail("the custom field <" + key + "> is null")
	}
	return v
}

func (r *extReader) int64(key string, required bool, def int64) int64 {
	return r.parseInt(key, required, def, 64, "a number")
}

func (r *extReader) int32(key string, required bool, def int32) int32 {
	return int32(r.parseInt(key, required, int64(def), 32, "a 32-bit number"))
}

func (r *extReader) parseInt(key string, required bool, def int64, bits int, what string) int64 {
	v, ok := r.req.ExtFields.Get(key)
	if !ok || v == "" {
		if required {
			r.fail("the custom field <" + key + "> is null")
		}
		return def
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		r.fail("the custom field <" + key + "> is not " + what + ": " + strconv.Quote(v))
		return def
	}
	return n
}

func (r *extReader) bool(key string) bool {
	v := r.req.Ext(key)
	return v == "true" || v == "TRUE" || v == "True"
}

// failure returns the error response, or nil if every field decoded.
func (r *extReader) failure() *remoting.Command {
	if r.err == "" {
		return nil
	}
	return remoting.NewResponse(remoting.SystemError, r.err)
}

// replyPushTimeout bounds the push of a reply to its requester (Java: 3 s).
const replyPushTimeout = 3 * time.Second

// sendReply handles a SEND_REPLY_MESSAGE: like Java's ReplyMessageProcessor it
// pushes the reply (PUSH_REPLY_MESSAGE_TO_CLIENT, 326) to the connection of the
// client named by REPLY_TO_CLIENT and, with storeReplyMessageEnable, also
// stores it. The response code is the push's outcome: the replier's send
// succeeded only if the requester got the reply.
func (b *Broker) sendReply(conn *remoting.Conn, req *remoting.Command, h *sendHeader) *remoting.Command {
	if resp := b.checkBody(len(req.Body), h.properties); resp != nil {
		return resp
	}
	var m message.Message
	b.buildMessage(conn, h, req.Body, &m)
	if len(m.Properties) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal, "the message properties are over max value "+
			strconv.Itoa(message.MaxPropertiesLength)+" with the CLUSTER property added")
	}
	pushErr := b.pushReply(conn, h, &m)
	var resp *remoting.Command
	if b.cfg.StoreReplyMessageEnable {
		res := b.clientPut(&m)
		b.awaitReplica(&res, m.Properties) // SYNC_MASTER: the replier's answer waits for the slave
		resp = b.sendResponse(&res, h.queueID, nil)
		if !res.Status.Stored() {
			b.log.Warn().Str("topic", h.topic).Str("status", res.Status.String()).Msg("storing a reply message failed")
			if pushErr == nil {
				// The requester has the reply; the store is only a copy.
				resp = remoting.NewResponse(remoting.Success, "")
			}
		}
	} else {
		resp = remoting.NewResponse(remoting.Success, "")
	}
	if pushErr != nil {
		resp.Code = remoting.SystemError
		resp.Remark = pushErr.Error()
	}
	return resp
}

// pushReply sends the reply to the requesting client's connection.
func (b *Broker) pushReply(conn *remoting.Conn, h *sendHeader, m *message.Message) error {
	clientID := message.Property(m.Properties, message.PropertyReplyToClient)
	if clientID == "" {
		return errors.New("push reply message fail: the message has no " + message.PropertyReplyToClient + " property")
	}
	target := b.clients.ProducerConnByClientID(clientID)
	if target == nil {
		return errors.New("push reply message fail, channel of <" + clientID + "> not found.")
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ext := map[string]string{
		"producerGroup":         h.producerGroup,
		"topic":                 h.topic,
		"defaultTopic":          h.defaultTopic,
		"defaultTopicQueueNums": strconv.Itoa(int(h.defaultTopicQueueNums)),
		"queueId":               strconv.Itoa(int(h.queueID)),
		"sysFlag":               strconv.Itoa(int(h.sysFlag)),
		"bornTimestamp":         strconv.FormatInt(h.bornTimestamp, 10),
		"flag":                  strconv.Itoa(int(h.flag)),
		"properties":            message.AppendProperty(m.Properties, message.PropertyPushReplyTime, now),
		"reconsumeTimes":        strconv.Itoa(int(h.reconsumeTimes)),
		"unitMode":              strconv.FormatBool(h.unitMode),
		"bornHost":              connAddrString(conn),
		"storeHost":             b.addr,
		"storeTimestamp":        now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), replyPushTimeout)
	defer cancel()
	resp, err := target.Invoke(ctx, remoting.NewRequest(remoting.PushReplyMessageToClient, ext, m.Body))
	if err != nil {
		return errors.New("push reply message to <" + clientID + "> failed: " + err.Error())
	}
	if resp.Code != remoting.Success {
		return errors.New("push reply message to <" + clientID + "> failed: code " +
			strconv.Itoa(int(resp.Code)) + " " + resp.Remark)
	}
	return nil
}

// recordPut counts a put in the broker's statistics.
func (b *Broker) recordPut(res *storage.PutResult, bodyBytes int, start time.Time) {
	if !res.Status.Stored() {
		b.stats.putFailed.Add(1)
		return
	}
	n := res.MsgCount
	if n == 0 {
		n = 1
	}
	b.stats.recordPut(n, bodyBytes, time.Since(start))
}
