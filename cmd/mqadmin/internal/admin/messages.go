package admin

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
)

// Message is a stored message as a broker returns it, with its offset message ID.
type Message struct {
	*message.Ext
	MsgID      string // offset message ID (store host + commit-log offset)
	BrokerName string
}

func decodeRecords(data []byte, brokerName string) ([]Message, error) {
	var out []Message
	err := message.SplitRecords(data, func(rec []byte) error {
		e, err := message.Decode(rec)
		if err != nil {
			return err
		}
		out = append(out, Message{Ext: e, MsgID: message.OffsetMsgID(e.StoreHost, e.CommitLogOffset), BrokerName: brokerName})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("message records: %w", err)
	}
	return out, nil
}

// ViewMessageByID fetches a message by its offset message ID (33 to the broker
// the ID names).
func (a *Admin) ViewMessageByID(msgID string) (*Message, error) {
	host, offset, err := message.ParseOffsetMsgID(msgID)
	if err != nil {
		return nil, fmt.Errorf("message id %s: %w", msgID, err)
	}
	addr := host.String()
	resp, err := a.invoke(addr, remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(offset, 10)}, nil)
	if err != nil {
		return nil, err
	}
	msgs, err := decodeRecords(resp.Body, "")
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%s returned no message at offset %d", addr, offset)
	}
	return &msgs[0], nil
}

// QueryMessageByKey asks every broker group of a topic's route for messages
// with a key (12, maxNum 64, all times), as queryMsgByKey does.
func (a *Admin) QueryMessageByKey(topic, key string, maxNum int, uniq bool) ([]Message, error) {
	route, err := a.Route(topic)
	if err != nil {
		return nil, err
	}
	var out []Message
	var lastErr error
	for _, bd := range route.BrokerDatas {
		addr := bd.MasterAddr()
		if addr == "" {
			for _, a := range bd.BrokerAddrs {
				addr = a
				break
			}
		}
		resp, err := a.call(addr, remoting.QueryMessage, map[string]string{
			"topic": topic, "key": key, "maxNum": strconv.Itoa(maxNum),
			"beginTimestamp": "0", "endTimestamp": strconv.FormatInt(1<<63-1, 10),
			"_UNIQUE_KEY_QUERY": strconv.FormatBool(uniq),
		}, nil)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Code == remoting.QueryNotFound {
			continue
		}
		if resp.Code != remoting.Success {
			lastErr = &RemoteError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
			continue
		}
		msgs, err := decodeRecords(resp.Body, bd.BrokerName)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Topic == topic {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return out, nil
}

// PullResult is the outcome of one PULL_MESSAGE.
type PullResult struct {
	Status          string // FOUND, NO_NEW_MSG, NO_MATCHED_MSG, OFFSET_ILLEGAL
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	Messages        []Message
}

// Pull reads up to max messages of one queue from offset (11), without
// committing an offset and without long polling.
func (a *Admin) Pull(addr, brokerName, group, topic string, queueID int32, offset int64, max int) (*PullResult, error) {
	ext := map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(queueID)),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": strconv.Itoa(max),
		"sysFlag":      "4", // FLAG_SUBSCRIPTION only: no commit, no suspend
		"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0",
		"expressionType": "TAG",
	}
	resp, err := a.call(addr, remoting.PullMessage, ext, nil)
	if err != nil {
		return nil, err
	}
	r := &PullResult{}
	r.NextBeginOffset, _ = strconv.ParseInt(resp.Ext("nextBeginOffset"), 10, 64)
	r.MinOffset, _ = strconv.ParseInt(resp.Ext("minOffset"), 10, 64)
	r.MaxOffset, _ = strconv.ParseInt(resp.Ext("maxOffset"), 10, 64)
	switch resp.Code {
	case remoting.Success:
		r.Status = "FOUND"
		if r.Messages, err = decodeRecords(resp.Body, brokerName); err != nil {
			return nil, err
		}
	case remoting.PullNotFound:
		r.Status = "NO_NEW_MSG"
	case remoting.PullRetryImmediately:
		r.Status = "NO_MATCHED_MSG"
	case remoting.PullOffsetMoved:
		r.Status = "OFFSET_ILLEGAL"
	default:
		return nil, &RemoteError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
	}
	return r, nil
}

// SendResult is the answer to a send.
type SendResult struct {
	BrokerName  string `json:"brokerName"`
	QueueID     int32  `json:"queueId"`
	Status      string `json:"sendStatus"`
	MsgID       string `json:"msgId"`
	OffsetMsgID string `json:"offsetMsgId"`
	QueueOffset int64  `json:"queueOffset"`
}

// SendStatusName maps a send response code to Java's SendStatus.
func SendStatusName(code int16) string {
	switch code {
	case remoting.Success:
		return "SEND_OK"
	case remoting.FlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case remoting.FlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case remoting.SlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	}
	return ""
}

// SendMessage sends one message to a queue of a broker (SEND_MESSAGE 10 with
// the full header names; the broker answers it as SEND_MESSAGE_V2).
func (a *Admin) SendMessage(addr, brokerName, group, topic string, queueID int32, tags, keys string, msgBody []byte) (*SendResult, error) {
	props := map[string]string{message.PropertyWaitStoreMsgOK: "true", message.PropertyUniqKey: NewUniqID()}
	if tags != "" {
		props[message.PropertyTags] = tags
	}
	if keys != "" {
		props[message.PropertyKeys] = keys
	}
	ext := map[string]string{
		"producerGroup": group, "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(int(queueID)), "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": "0", "properties": message.FormatProperties(props), "reconsumeTimes": "0", "unitMode": "false", "batch": "false",
	}
	resp, err := a.call(addr, remoting.SendMessage, ext, msgBody)
	if err != nil {
		return nil, err
	}
	st := SendStatusName(resp.Code)
	if st == "" {
		return nil, &RemoteError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
	}
	qid, _ := strconv.Atoi(resp.Ext("queueId"))
	qoff, _ := strconv.ParseInt(resp.Ext("queueOffset"), 10, 64)
	return &SendResult{BrokerName: brokerName, QueueID: int32(qid), Status: st, MsgID: props[message.PropertyUniqKey],
		OffsetMsgID: resp.Ext("msgId"), QueueOffset: qoff}, nil
}

var (
	uniqPrefix  = newUniqPrefix()
	uniqCounter atomic.Uint32
)

func newUniqPrefix() []byte {
	p := make([]byte, 10)
	copy(p, []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(p[4:], uint16(os.Getpid()))
	binary.BigEndian.PutUint32(p[6:], rand.Uint32())
	return p
}

// NewUniqID returns a message unique key in the client's form (32 upper-case
// hex digits: address, pid, a random part, time and a counter).
func NewUniqID() string {
	b := make([]byte, 16)
	copy(b, uniqPrefix)
	binary.BigEndian.PutUint32(b[10:], uint32(time.Now().UnixMilli()))
	binary.BigEndian.PutUint16(b[14:], uint16(uniqCounter.Add(1)))
	return strings.ToUpper(hex.EncodeToString(b))
}
