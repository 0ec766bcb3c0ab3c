package broker

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Retry and dead-letter queues (Java SendMessageProcessor.asyncConsumerSendMsgBack
// and handleRetryAndDLQ). A consumer that fails a message sends it back with
// CONSUMER_SEND_MSG_BACK; the broker stores a copy in the group's retry topic
// %RETRY%<group> through the delay levels (level 3 + reconsume times unless
// the client chose one), so it comes back later through the group's automatic
// retry subscription, or, once it has been consumed maxReconsumeTimes times
// (or the client asks with a negative level), in the dead-letter topic
// %DLQ%<group>, which nobody consumes until an operator acts.

const (
	dlqTopicPrefix   = "%DLQ%"
	dlqNumsPerGroup  = 1
	retryDelayOffset = 3 // first automatic retry level (10 s with the default levels)
)

func dlqTopic(group string) string { return dlqTopicPrefix + group }

// handleConsumerSendMsgBack serves CONSUMER_SEND_MSG_BACK (36).
func (b *Broker) handleConsumerSendMsgBack(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	group := r.str("group", true)
	offset := r.int64("offset", true, 0)
	delay := r.int32("delayLevel", true, 0)
	originMsgID := r.str("originMsgId", false)
	unitMode := r.bool("unitMode")
	maxTimes, hasMax := req.ExtFields.Get("maxReconsumeTimes")
	if resp := r.failure(); resp != nil {
		return resp
	}
	sg, ok := b.subGroups.FindOrCreate(group)
	if !ok {
		return remoting.NewResponse(remoting.SubscriptionGroupNotExist, "subscription group not exist, "+group)
	}
	if b.cfg.BrokerPermission&body.PermWrite == 0 {
		return remoting.NewResponse(remoting.NoPermission, "the broker["+b.addr+"] sending message is forbidden")
	}
	if sg.RetryQueueNums <= 0 {
		return remoting.NewResponse(remoting.Success, "") // the group opted out of retries (Java drops it)
	}
	var topicSysFlag int32
	if unitMode {
		topicSysFlag = topicSysFlagUnitSub
	}
	topic := retryTopic(group)
	tc, ok := b.topics.CreateInSendBack(topic, sg.RetryQueueNums, body.PermWrite|body.PermRead, topicSysFlag)
	if !ok {
		return remoting.NewResponse(remoting.SystemError, "topic["+topic+"] not exist")
	}
	if tc.Perm&body.PermWrite == 0 {
		return remoting.NewResponse(remoting.NoPermission, "the topic["+topic+"] sending message is forbidden")
	}
	rec, err := b.store.ReadMessage(offset)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "look message by offset failed, "+strconv.FormatInt(offset, 10))
	}
	ext, err := message.Decode(rec)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "look message by offset failed, "+strconv.FormatInt(offset, 10)+": "+err.Error())
	}

	props := ext.Properties
	if !message.HasProperty(props, message.PropertyRetryTopic) {
		props = message.AppendProperty(props, message.PropertyRetryTopic, ext.Topic)
	}
	maxReconsume := sg.RetryMaxTimes
	if hasMax && maxTimes != "" {
		n, err := strconv.ParseInt(maxTimes, 10, 32)
		if err != nil {
			return remoting.NewResponse(remoting.SystemError, "the custom field <maxReconsumeTimes> is not a 32-bit number: "+strconv.Quote(maxTimes))
		}
		maxReconsume = int32(n)
	}
	queueID := randomQueue(sg.RetryQueueNums)
	if ext.ReconsumeTimes >= maxReconsume || delay < 0 {
		topic = dlqTopic(group)
		if _, ok := b.topics.CreateInSendBack(topic, dlqNumsPerGroup, body.PermWrite|body.PermRead, 0); !ok {
			return remoting.NewResponse(remoting.SystemError, "topic["+topic+"] not exist")
		}
		queueID = randomQueue(dlqNumsPerGroup)
		props = message.RemoveProperty(props, message.PropertyDelayLevel)
	} else {
		if delay == 0 {
			delay = retryDelayOffset + ext.ReconsumeTimes
		}
		props = message.AppendProperty(props, message.PropertyDelayLevel, strconv.Itoa(int(delay)))
	}
	origin := message.Property(props, message.PropertyOriginMessageID)
	if origin == "" {
		origin = originMsgID
		if origin == "" {
			origin = message.OffsetMsgID(ext.StoreHost, ext.CommitLogOffset)
		}
		props = message.AppendProperty(props, message.PropertyOriginMessageID, origin)
	}
	m := ext.Message
	m.Topic = topic
	m.QueueID = queueID
	m.Properties = props
	m.ReconsumeTimes = ext.ReconsumeTimes + 1
	m.StoreHost = b.storeHost
	m.TagsCode = 0
	if tags := message.Property(props, message.PropertyTags); tags != "" {
		m.TagsCode = message.TagsHashCode(tags)
	}
	if len(m.Properties) > message.MaxPropertiesLength {
		return remoting.NewResponse(remoting.MessageIllegal, "the message properties are over max value "+
			strconv.Itoa(message.MaxPropertiesLength)+" with the retry properties added")
	}
	if resp := b.applySchedule(&m); resp != nil {
		return resp
	}
	start := time.Now()
	res := b.clientPut(&m)
	b.awaitReplica(&res, m.Properties) // SYNC_MASTER: the answer waits for the slave, as Java's putMessage does
	b.recordPut(&res, len(m.Body), start)
	if res.Status != storage.PutOK {
		// Java answers SYSTEM_ERROR for every status but PUT_OK; the client
		// then sends the message to the retry topic itself.
		return remoting.NewResponse(remoting.SystemError, res.Status.String())
	}
	return remoting.NewResponse(remoting.Success, "")
}

// divertRetryToDLQ is the send path's handleRetryAndDLQ: a message sent to a
// %RETRY% topic (the client's fallback when CONSUMER_SEND_MSG_BACK failed)
// that has been consumed maxReconsumeTimes times goes to the group's DLQ
// instead, without delay. The header's maxReconsumeTimes wins over the
// group's retryMaxTimes when the client sent one.
func (b *Broker) divertRetryToDLQ(req *remoting.Command, h *sendHeader, m *message.Message) *remoting.Command {
	if !strings.HasPrefix(m.Topic, retryTopicPrefix) {
		return nil
	}
	group := m.Topic[len(retryTopicPrefix):]
	sg, ok := b.subGroups.FindOrCreate(group)
	if !ok {
		return remoting.NewResponse(remoting.SubscriptionGroupNotExist, "subscription group not exist, "+group)
	}
	maxReconsume := sg.RetryMaxTimes
	if sendHeaderHas(req, "maxReconsumeTimes", "l") {
		maxReconsume = h.maxReconsumeTimes
	}
	if h.reconsumeTimes < maxReconsume {
		return nil
	}
	topic := dlqTopic(group)
	if _, ok := b.topics.CreateInSendBack(topic, dlqNumsPerGroup, body.PermWrite|body.PermRead, 0); !ok {
		return remoting.NewResponse(remoting.SystemError, "topic["+topic+"] not exist")
	}
	m.Topic = topic
	m.QueueID = randomQueue(dlqNumsPerGroup)
	m.Properties = message.RemoveProperty(m.Properties, message.PropertyDelayLevel)
	return nil
}

// sendHeaderHas reports whether the send header carries a field under its V1
// or V2 name.
func sendHeaderHas(req *remoting.Command, v1, v2 string) bool {
	if v, ok := req.ExtFields.Get(v1); ok && v != "" {
		return true
	}
	v, ok := req.ExtFields.Get(v2)
	return ok && v != ""
}

// randomQueue picks a queue in [0, n).
func randomQueue(n int32) int32 {
	if n <= 1 {
		return 0
	}
	return rand.Int32N(n)
}
