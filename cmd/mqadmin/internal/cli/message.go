package cli

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// toolsConsumerGroup is the group the Java tools pull with (MixAll.TOOLS_CONSUMER_GROUP).
const toolsConsumerGroup = "TOOLS_CONSUMER"

// msgBodyDir is where queryMsgById writes bodies, as the Java tool does.
var msgBodyDir = filepath.Join(os.TempDir(), "rocketmq", "msgbodys")

func messageCommands(e *env) []*cobra.Command {
	var ids string
	qid := &cobra.Command{Use: "queryMsgById", Short: "Query Message by Id",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return queryMsgByID(e, ids) })}
	qid.Flags().StringVarP(&ids, "msgId", "i", "", "Message Id")
	required(qid, "msgId")

	var topic, key string
	qk := &cobra.Command{Use: "queryMsgByKey", Short: "Query Message by Key",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return queryMsgByKey(e, topic, key) })}
	qk.Flags().StringVarP(&topic, "topic", "t", "", "topic name")
	qk.Flags().StringVarP(&key, "msgKey", "k", "", "Message Key")
	required(qk, "topic", "msgKey")

	var brokerName string
	var queueID int32
	var offset int64
	qo := &cobra.Command{Use: "queryMsgByOffset", Short: "Query Message by offset",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			return queryMsgByOffset(e, topic, brokerName, queueID, offset)
		})}
	qo.Flags().StringVarP(&topic, "topic", "t", "", "topic name")
	qo.Flags().StringVarP(&brokerName, "brokerName", "b", "", "Broker Name")
	qo.Flags().Int32VarP(&queueID, "queueId", "i", 0, "Queue Id")
	qo.Flags().Int64VarP(&offset, "offset", "o", 0, "Queue Offset")
	required(qo, "topic", "brokerName", "queueId", "offset")

	var so sendOpts
	sm := &cobra.Command{Use: "sendMessage", Short: "Send a message",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			so.queueSet = cmd.Flags().Changed("qid")
			return sendMessage(e, &so)
		})}
	sm.Flags().StringVarP(&so.topic, "topic", "t", "", "Topic name")
	sm.Flags().StringVarP(&so.body, "body", "p", "", "UTF-8 string format of the message body")
	sm.Flags().StringVarP(&so.keys, "key", "k", "", "Message keys")
	sm.Flags().StringVarP(&so.tags, "tags", "c", "", "Message tags")
	sm.Flags().StringVarP(&so.broker, "broker", "b", "", "Send message to target broker")
	sm.Flags().Int32VarP(&so.queue, "qid", "i", -1, "Send message to target queue")
	boolArgVarP(sm.Flags(), &so.trace, "msgTraceEnable", "m", false, "Message Trace Enable (not supported by mqd's mqadmin: must be false)")
	required(sm, "topic", "body")

	var co consumeOpts
	cm := &cobra.Command{Use: "consumeMessage", Short: "Consume message",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			co.queueSet, co.offsetSet = cmd.Flags().Changed("queueId"), cmd.Flags().Changed("offset")
			return consumeMessage(e, &co)
		})}
	cm.Flags().StringVarP(&co.topic, "topic", "t", "", "Topic name")
	cm.Flags().StringVarP(&co.broker, "brokerName", "b", "", "Broker name")
	cm.Flags().Int32VarP(&co.queue, "queueId", "i", 0, "Queue Id")
	cm.Flags().Int64VarP(&co.offset, "offset", "o", 0, "Queue offset")
	cm.Flags().StringVarP(&co.group, "consumerGroup", "g", toolsConsumerGroup, "Consumer group name")
	cm.Flags().StringVarP(&co.begin, "beginTimestamp ", "s", "", "Begin timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	cm.Flags().StringVarP(&co.end, "endTimestamp ", "e", "", "End timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	cm.Flags().Int64VarP(&co.count, "MessageNumber", "c", 128, "Number of message to be consumed")
	required(cm, "topic")

	return []*cobra.Command{withOutput(e, qid, true), withOutput(e, qk, true), withOutput(e, qo, false),
		withOutput(e, sm, true), withOutput(e, cm, false)}
}

// msgJSON is a message as -o json prints it.
type msgJSON struct {
	OffsetMsgID     string            `json:"offsetMsgId"`
	Topic           string            `json:"topic"`
	BrokerName      string            `json:"brokerName,omitempty"`
	QueueID         int32             `json:"queueId"`
	QueueOffset     int64             `json:"queueOffset"`
	CommitLogOffset int64             `json:"commitLogOffset"`
	ReconsumeTimes  int32             `json:"reconsumeTimes"`
	BornTimestamp   int64             `json:"bornTimestamp"`
	StoreTimestamp  int64             `json:"storeTimestamp"`
	BornHost        string            `json:"bornHost"`
	StoreHost       string            `json:"storeHost"`
	SysFlag         int32             `json:"sysFlag"`
	Properties      map[string]string `json:"properties"`
	Body            string            `json:"body"`
}

func toJSON(m *admin.Message) msgJSON {
	return msgJSON{OffsetMsgID: m.MsgID, Topic: m.Topic, BrokerName: m.BrokerName, QueueID: m.QueueID, QueueOffset: m.QueueOffset,
		CommitLogOffset: m.CommitLogOffset, ReconsumeTimes: m.ReconsumeTimes, BornTimestamp: m.BornTimestamp,
		StoreTimestamp: m.StoreTimestamp, BornHost: m.BornHost.String(), StoreHost: m.StoreHost.String(), SysFlag: m.SysFlag,
		Properties: message.ParseProperties(m.Properties), Body: string(m.Body)}
}

// javaMap renders properties as Java's HashMap.toString, keys sorted.
func javaMap(props string) string {
	m := message.ParseProperties(props)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func nullable(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func queryMsgByID(e *env, ids string) error {
	var out []msgJSON
	for _, id := range strings.Split(ids, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		m, err := e.admin().ViewMessageByID(id)
		if err != nil {
			return err
		}
		if e.json() {
			out = append(out, toJSON(m))
			continue
		}
		printMsg(e, m)
	}
	if e.json() {
		return e.printJSON(out)
	}
	return nil
}

// printMsg is QueryMsgByIdSubCommand.printMsg: labelled lines, the body
// written to /tmp/rocketmq/msgbodys/<id>, then the message track.
func printMsg(e *env, m *admin.Message) {
	// Java names the file after msg.getMsgId(): the client's unique key.
	id := message.Property(m.Properties, message.PropertyUniqKey)
	if id == "" {
		id = m.MsgID
	}
	path := filepath.Join(msgBodyDir, id)
	if err := os.MkdirAll(msgBodyDir, 0o755); err == nil {
		_ = os.WriteFile(path, m.Body, 0o644)
	}
	f := "%-20s %s\n"
	d := "%-20s %d\n"
	e.printf(f, "OffsetID:", m.MsgID)
	e.printf(f, "Topic:", m.Topic)
	e.printf(f, "Tags:", "["+nullable(message.Property(m.Properties, message.PropertyTags))+"]")
	e.printf(f, "Keys:", "["+nullable(message.Property(m.Properties, message.PropertyKeys))+"]")
	e.printf(d, "Queue ID:", m.QueueID)
	e.printf(d, "Queue Offset:", m.QueueOffset)
	e.printf(d, "CommitLog Offset:", m.CommitLogOffset)
	e.printf(d, "Reconsume Times:", m.ReconsumeTimes)
	e.printf(f, "Born Timestamp:", millisTime(m.BornTimestamp).Format(fmtMilli))
	e.printf(f, "Store Timestamp:", millisTime(m.StoreTimestamp).Format(fmtMilli))
	e.printf(f, "Born Host:", m.BornHost.String())
	e.printf(f, "Store Host:", m.StoreHost.String())
	e.printf(d, "System Flag:", m.SysFlag)
	e.printf(f, "Properties:", javaMap(m.Properties))
	e.printf(f, "Message Body Path:", path)
	tracks := messageTrack(e, m)
	if len(tracks) == 0 {
		e.printf("\n\nWARN: No Consumer")
	} else {
		e.printf("\n\n")
		for _, t := range tracks {
			e.printf("%s", t)
		}
	}
	e.printf("\n")
}

// messageTrack is DefaultMQAdminExtImpl.messageTrackDetail: for each group
// consuming the topic, whether it consumed the message.
func messageTrack(e *env, m *admin.Message) []string {
	a := e.admin()
	route, err := a.Route(m.Topic)
	if err != nil || len(route.BrokerDatas) == 0 {
		return nil
	}
	groups, err := a.GroupsOfTopic(selectAddr(route.BrokerDatas[0]), m.Topic)
	if err != nil {
		return nil
	}
	var out []string
	for _, g := range groups {
		track, desc := "UNKNOWN", "null"
		if _, err := a.ConsumerConnection(selectAddr(route.BrokerDatas[0]), g); err != nil {
			var re *admin.RemoteError
			if errors.As(err, &re) {
				track, desc = "NOT_ONLINE", fmt.Sprintf("CODE:%d DESC:%s", re.Code, re.Remark)
			} else {
				track, desc = "UNKNOWN", err.Error()
			}
		} else if cs, err := a.ConsumeStats(g, m.Topic); err == nil {
			track = "NOT_CONSUME_YET"
			for _, o := range cs.Offsets {
				if o.Queue.Topic == m.Topic && o.Queue.QueueID == m.QueueID && (m.BrokerName == "" || o.Queue.BrokerName == m.BrokerName) &&
					o.ConsumerOffset > m.QueueOffset {
					track = "CONSUMED"
				}
			}
		}
		out = append(out, fmt.Sprintf("MessageTrack [consumerGroup=%s, trackType=%s, exceptionDesc=%s]", g, track, desc))
	}
	return out
}

func queryMsgByKey(e *env, topic, key string) error {
	msgs, err := e.admin().QueryMessageByKey(strings.TrimSpace(topic), strings.TrimSpace(key), 64, false)
	if err != nil {
		return err
	}
	if e.json() {
		out := make([]msgJSON, len(msgs))
		for i := range msgs {
			out[i] = toJSON(&msgs[i])
		}
		return e.printJSON(out)
	}
	e.printf("%-50s %4s %40s\n", "#Message ID", "#QID", "#Offset")
	for _, m := range msgs {
		e.printf("%-50s %4d %40d\n", m.MsgID, m.QueueID, m.QueueOffset)
	}
	return nil
}

// brokerAddrOf finds a broker group's address (master first) in a route.
func brokerAddrOf(route *body.TopicRouteData, brokerName string) (string, error) {
	for _, bd := range route.BrokerDatas {
		if bd.BrokerName == brokerName {
			if a := selectAddr(bd); a != "" {
				return a, nil
			}
		}
	}
	return "", fmt.Errorf("broker %s is not in the route of the topic", brokerName)
}

func queryMsgByOffset(e *env, topic, brokerName string, queueID int32, offset int64) error {
	a := e.admin()
	topic, brokerName = strings.TrimSpace(topic), strings.TrimSpace(brokerName)
	route, err := a.Route(topic)
	if err != nil {
		return err
	}
	addr, err := brokerAddrOf(route, brokerName)
	if err != nil {
		return err
	}
	r, err := a.Pull(addr, brokerName, toolsConsumerGroup, topic, queueID, offset, 1)
	if err != nil {
		return err
	}
	if r.Status != "FOUND" || len(r.Messages) == 0 {
		return fmt.Errorf("no message at %s queue %d offset %d: %s (queue offsets %d..%d)", brokerName, queueID, offset, r.Status, r.MinOffset, r.MaxOffset)
	}
	m, err := a.ViewMessageByID(r.Messages[0].MsgID)
	if err != nil {
		return err
	}
	m.BrokerName = brokerName
	if e.json() {
		return e.printJSON(toJSON(m))
	}
	printMsg(e, m)
	return nil
}

type sendOpts struct {
	topic, body, keys, tags, broker string
	queue                           int32
	queueSet, trace                 bool
}

func sendMessage(e *env, o *sendOpts) error {
	if o.trace {
		return cmdline.UsageError{Err: errors.New("-m true: message trace is not supported by mqd's mqadmin")}
	}
	if o.queueSet && o.broker == "" {
		return cmdline.UsageError{Err: errors.New("Broker name must be set if the queue is chosen!")}
	}
	a := e.admin()
	topic := strings.TrimSpace(o.topic)
	route, err := a.Route(topic)
	if err != nil {
		return err
	}
	// Candidate queues: the chosen one, or every writable queue of the route
	// (of the chosen broker), starting at a random one as the producer does.
	type target struct {
		broker, addr string
		queue        int32
	}
	var targets []target
	for _, qd := range route.QueueDatas {
		if o.broker != "" && qd.BrokerName != o.broker {
			continue
		}
		if qd.Perm&2 == 0 {
			continue
		}
		addr := ""
		for _, bd := range route.BrokerDatas {
			if bd.BrokerName == qd.BrokerName {
				addr = bd.MasterAddr()
			}
		}
		if addr == "" {
			continue
		}
		for q := int32(0); q < qd.WriteQueueNums; q++ {
			if !o.queueSet || q == o.queue {
				targets = append(targets, target{qd.BrokerName, addr, q})
			}
		}
	}
	var res *admin.SendResult
	var lastErr error
	if len(targets) > 0 {
		start := rand.IntN(len(targets))
		for i := 0; i < len(targets) && i < 3; i++ { // the producer's retryTimesWhenSendFailed (2) + 1
			t := targets[(start+i)%len(targets)]
			res, lastErr = a.SendMessage(t.addr, t.broker, "SEND_MESSAGE_TOOLS_PRODUCER", topic, t.queue, o.tags, o.keys, []byte(o.body))
			if lastErr == nil {
				break
			}
		}
	} else {
		lastErr = fmt.Errorf("no writable queue of topic %s matches", topic)
	}
	if e.json() {
		if res == nil {
			return lastErr
		}
		return e.printJSON(res)
	}
	e.printf("%-32s  %-4s  %-20s    %s\n", "#Broker Name", "#QID", "#Send Result", "#MsgId")
	if res == nil {
		e.printf("%-32s  %-4s  %-20s    %s\n", "Unknown", "Unknown", "Failed", "None")
		return lastErr
	}
	e.printf("%-32s  %-4s  %-20s    %s\n", res.BrokerName, strconv.Itoa(int(res.QueueID)), res.Status, res.MsgID)
	return nil
}

type consumeOpts struct {
	topic, broker, group, begin, end string
	queue                            int32
	offset, count                    int64
	queueSet, offsetSet              bool
}

func parseMillis(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.ParseInLocation("2006-01-02#15:04:05:000", s, time.Local)
	if err != nil {
		return 0, cmdline.UsageError{Err: fmt.Errorf("timestamp %q: want milliseconds or yyyy-MM-dd#HH:mm:ss:SSS", s)}
	}
	return t.UnixMilli(), nil
}

// javaMessageExt renders MessageExt.toString.
func javaMessageExt(m *admin.Message) string {
	body := make([]string, len(m.Body))
	for i, c := range m.Body {
		body[i] = strconv.Itoa(int(int8(c)))
	}
	return fmt.Sprintf("MessageExt [brokerName=%s, queueId=%d, storeSize=%d, queueOffset=%d, sysFlag=%d, bornTimestamp=%d, bornHost=/%s, storeTimestamp=%d, storeHost=/%s, msgId=%s, commitLogOffset=%d, bodyCRC=%d, reconsumeTimes=%d, preparedTransactionOffset=%d, toString()=Message{topic='%s', flag=%d, properties=%s, body=[%s], transactionId='null'}]",
		m.BrokerName, m.QueueID, m.StoreSize, m.QueueOffset, m.SysFlag, m.BornTimestamp, m.BornHost, m.StoreTimestamp, m.StoreHost, m.MsgID,
		m.CommitLogOffset, m.BodyCRC, m.ReconsumeTimes, m.PreparedTransactionOffset, m.Topic, m.Flag, javaMap(m.Properties), strings.Join(body, ", "))
}

func javaMQ(topic, broker string, q int32) string {
	return fmt.Sprintf("MessageQueue [topic=%s, brokerName=%s, queueId=%d]", topic, broker, q)
}

func consumeMessage(e *env, o *consumeOpts) error {
	if o.count <= 0 {
		return cmdline.UsageError{Err: errors.New("Please input a positive messageNumber!")}
	}
	if o.queueSet && o.broker == "" {
		return cmdline.UsageError{Err: errors.New("Please set the brokerName before queueId!")}
	}
	if o.offsetSet && !o.queueSet {
		return cmdline.UsageError{Err: errors.New("Please set queueId before offset!")}
	}
	now := time.Now().UnixMilli()
	begin, err := parseMillis(strings.TrimSpace(o.begin))
	if err != nil {
		return err
	}
	end, err := parseMillis(strings.TrimSpace(o.end))
	if err != nil {
		return err
	}
	if begin > now {
		return cmdline.UsageError{Err: errors.New("Please set the beginTimestamp before now!")}
	}
	if end > now {
		return cmdline.UsageError{Err: errors.New("Please set the endTimestamp before now!")}
	}
	if end > 0 && begin > end {
		return cmdline.UsageError{Err: errors.New("Please make sure that the beginTimestamp is less than or equal to the endTimestamp")}
	}
	a := e.admin()
	topic := strings.TrimSpace(o.topic)
	route, err := a.Route(topic)
	if err != nil {
		return err
	}
	type mq struct {
		broker, addr string
		queue        int32
	}
	var mqs []mq
	for _, qd := range route.QueueDatas {
		if o.broker != "" && qd.BrokerName != o.broker {
			continue
		}
		addr, err := brokerAddrOf(route, qd.BrokerName)
		if err != nil {
			continue
		}
		for q := int32(0); q < qd.ReadQueueNums; q++ {
			if !o.queueSet || q == o.queue {
				mqs = append(mqs, mq{qd.BrokerName, addr, q})
			}
		}
	}
	if len(mqs) == 0 {
		return fmt.Errorf("no readable queue of topic %s matches", topic)
	}
	var all []msgJSON
	left := o.count
	for _, q := range mqs {
		if left <= 0 {
			break
		}
		minOff, err := a.QueueOffset(q.addr, remoting.GetMinOffset, topic, q.queue, 0)
		if err != nil {
			return err
		}
		maxOff, err := a.QueueOffset(q.addr, remoting.GetMaxOffset, topic, q.queue, 0)
		if err != nil {
			return err
		}
		if o.offsetSet {
			minOff = o.offset
		}
		if begin > 0 {
			if minOff, err = a.QueueOffset(q.addr, remoting.SearchOffsetByTimestamp, topic, q.queue, begin); err != nil {
				return err
			}
		}
		if end > 0 {
			if maxOff, err = a.QueueOffset(q.addr, remoting.SearchOffsetByTimestamp, topic, q.queue, end); err != nil {
				return err
			}
		}
		if maxOff-minOff > left {
			if !e.json() {
				e.printf("The older %d message of the %d queue will be provided\n", left, q.queue)
			}
			maxOff = minOff + left - 1
			left = 0
		} else {
			left -= maxOff - minOff + 1
		}
		mqs := javaMQ(topic, q.broker, q.queue)
		for off := minOff; off <= maxOff; {
			n := int(maxOff - off + 1)
			if n > 32 {
				n = 32 // the broker caps a pull's message count at 32
			}
			r, err := a.Pull(q.addr, q.broker, o.group, topic, q.queue, off, n)
			if err != nil {
				return err
			}
			off = r.NextBeginOffset
			if r.Status == "FOUND" {
				if !e.json() {
					e.printf("Consume ok\n")
				}
				for i := range r.Messages {
					m := &r.Messages[i]
					if e.json() {
						all = append(all, toJSON(m))
						continue
					}
					e.printf("MSGID: %s %s BODY: %s\n", message.Property(m.Properties, message.PropertyUniqKey), javaMessageExt(m), m.Body)
				}
				continue
			}
			if r.Status == "NO_MATCHED_MSG" {
				if !e.json() {
					e.printf("%s no matched msg. status=%s, offset=%d\n", mqs, r.Status, off)
				}
				continue
			}
			if !e.json() {
				e.printf("%s print msg finished. status=%s, offset=%d\n", mqs, r.Status, off)
			}
			break
		}
	}
	if e.json() {
		return e.printJSON(all)
	}
	return nil
}
