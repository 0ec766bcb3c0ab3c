package body

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// HeartbeatData is the body of HEART_BEAT (34).
type HeartbeatData struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []ProducerData `json:"producerDataSet"`
	ConsumerDataSet []ConsumerData `json:"consumerDataSet"`
}

// ProducerData is a producer group in a heartbeat.
type ProducerData struct {
	GroupName string `json:"groupName"`
}

// ConsumerData is a consumer group in a heartbeat.
type ConsumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`      // CONSUME_PASSIVELY (push) / CONSUME_ACTIVELY (pull)
	MessageModel        string             `json:"messageModel"`     // CLUSTERING / BROADCASTING
	ConsumeFromWhere    string             `json:"consumeFromWhere"` // CONSUME_FROM_LAST_OFFSET / ..._FIRST_OFFSET / ..._TIMESTAMP
	SubscriptionDataSet []SubscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

// Message models and consume types as clients spell them.
const (
	Clustering       = "CLUSTERING"
	Broadcasting     = "BROADCASTING"
	ConsumeActively  = "CONSUME_ACTIVELY"
	ConsumePassively = "CONSUME_PASSIVELY"
	ExpressionTag    = "TAG"
	ExpressionSQL92  = "SQL92"
	SubAll           = "*"
)

// SubscriptionData is a subscription as clients send it (heartbeats, check-client
// requests) and admin tools read it (consumer connections).
type SubscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	TagsSet         []string `json:"tagsSet"`
	CodeSet         CodeSet  `json:"codeSet"`
	SubVersion      int64    `json:"subVersion"` // ms from Java, ns from the Go client
	ExpressionType  string   `json:"expressionType"`
}

// CodeSet is a set of tag hash codes. Java sends numbers and the Go client sends
// strings; both decode. It encodes as numbers, as Java does.
type CodeSet []int64

// UnmarshalJSON accepts [1,2], ["1","2"] and null.
func (c *CodeSet) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		*c = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("codeSet: %w", err)
	}
	out := make(CodeSet, 0, len(raw))
	for _, r := range raw {
		s := string(r)
		if len(s) >= 2 && s[0] == '"' {
			if err := json.Unmarshal(r, &s); err != nil {
				return fmt.Errorf("codeSet: %w", err)
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("codeSet: %q is not an integer", s)
		}
		out = append(out, n)
	}
	*c = out
	return nil
}

// MessageQueue names one queue of a topic on a broker group.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// LockBatchRequestBody is the body of LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42).
type LockBatchRequestBody struct {
	ConsumerGroup  string         `json:"consumerGroup"`
	ClientID       string         `json:"clientId"`
	OnlyThisBroker bool           `json:"onlyThisBroker"`
	MQSet          []MessageQueue `json:"mqSet"`
}

// LockBatchResponseBody is the body of a LOCK_BATCH_MQ response.
type LockBatchResponseBody struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// ConsumerListBody is the body of a GET_CONSUMER_LIST_BY_GROUP (38) response.
type ConsumerListBody struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// Connection describes one client connection (codes 203, 204).
type Connection struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   string `json:"language"`
	Version    int32  `json:"version"`
}

// ConsumerConnection is the body of a GET_CONSUMER_CONNECTION_LIST (203) response.
type ConsumerConnection struct {
	ConnectionSet     []Connection                `json:"connectionSet"`
	SubscriptionTable map[string]SubscriptionData `json:"subscriptionTable"`
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere"`
}

// ProducerConnection is the body of a GET_PRODUCER_CONNECTION_LIST (204) response.
type ProducerConnection struct {
	ConnectionSet []Connection `json:"connectionSet"`
}

// CheckClientRequestBody is the body of CHECK_CLIENT_CONFIG (46).
type CheckClientRequestBody struct {
	ClientID         string            `json:"clientId"`
	Group            string            `json:"group"`
	SubscriptionData *SubscriptionData `json:"subscriptionData"`
}
