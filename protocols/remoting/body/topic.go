// Package body holds the JSON bodies RocketMQ's remoting requests and responses
// carry (topic configs, routes, cluster info, broker registration, KV tables), with
// encoders that produce what Java's fastjson emits where clients depend on it and
// decoders that accept both fastjson's and standard JSON.
//
// Field order follows fastjson's (alphabetical), so Marshal output matches a Java
// broker or name server byte for byte where that is cheap to do.
package body

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Permission bits of topics and brokers (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// Topic filter types (RocketMQ TopicFilterType).
const (
	SingleTag = "SINGLE_TAG"
	MultiTag  = "MULTI_TAG"
)

// Topic system flags (RocketMQ TopicSysFlag).
const (
	TopicSysFlagUnit    = 1 << 0
	TopicSysFlagUnitSub = 1 << 1
)

// TopicConfig is RocketMQ's TopicConfig as stored in topics.json and sent in
// broker registrations.
type TopicConfig struct {
	Order           bool   `json:"order"`
	Perm            int32  `json:"perm"`
	ReadQueueNums   int32  `json:"readQueueNums"`
	TopicFilterType string `json:"topicFilterType"`
	TopicName       string `json:"topicName"`
	TopicSysFlag    int32  `json:"topicSysFlag"`
	WriteQueueNums  int32  `json:"writeQueueNums"`
}

// NewTopicConfig returns a config with RocketMQ's defaults for the given queue counts.
func NewTopicConfig(name string, readQueues, writeQueues, perm int32) TopicConfig {
	return TopicConfig{TopicName: name, ReadQueueNums: readQueues, WriteQueueNums: writeQueues, Perm: perm, TopicFilterType: SingleTag}
}

// encodeText is Java's TopicConfig.encode, the form compressed registrations use:
// "name read write perm filterType". It drops topicSysFlag and order, as Java does.
func (c *TopicConfig) encodeText() string {
	ft := c.TopicFilterType
	if ft == "" {
		ft = SingleTag
	}
	return c.TopicName + " " + strconv.Itoa(int(c.ReadQueueNums)) + " " + strconv.Itoa(int(c.WriteQueueNums)) +
		" " + strconv.Itoa(int(c.Perm)) + " " + ft
}

// decodeTopicConfigText parses encodeText's form. Fields after the fifth (5.x
// appends the topic's attributes) are ignored.
func decodeTopicConfigText(s string) (TopicConfig, error) {
	f := strings.SplitN(s, " ", 6)
	if len(f) < 5 || f[0] == "" {
		return TopicConfig{}, fmt.Errorf("topic config %q: want \"name read write perm filterType\"", s)
	}
	var n [3]int64
	for i := range n {
		v, err := strconv.ParseInt(f[i+1], 10, 32)
		if err != nil {
			return TopicConfig{}, fmt.Errorf("topic config %q: %w", s, err)
		}
		n[i] = v
	}
	if f[4] != SingleTag && f[4] != MultiTag {
		return TopicConfig{}, fmt.Errorf("topic config %q: unknown filter type %q", s, f[4])
	}
	return TopicConfig{TopicName: f[0], ReadQueueNums: int32(n[0]), WriteQueueNums: int32(n[1]), Perm: int32(n[2]), TopicFilterType: f[4]}, nil
}

// DataVersion versions a table (topic configs, subscription groups): a change bumps
// the counter and stamps the time. Two versions are equal when both fields are.
type DataVersion struct {
	Counter int64 `json:"counter"`
	// StateVersion (RocketMQ 5) is the master epoch of a broker in
	// controller mode; a name server keeps the registration with the higher
	// one for a broker id. 0, and left out, otherwise (4.x has no field).
	StateVersion int64 `json:"stateVersion,omitempty"`
	Timestamp    int64 `json:"timestamp"`
}

// Next bumps the version.
func (v *DataVersion) Next() {
	v.Timestamp = time.Now().UnixMilli()
	v.Counter++
}

// PermString renders perm bits the way mqadmin prints them ("RW", "R-", "--").
func PermString(perm int32) string {
	b := []byte("---")
	if perm&PermRead != 0 {
		b[0] = 'R'
	}
	if perm&PermWrite != 0 {
		b[1] = 'W'
	}
	if perm&PermInherit != 0 {
		b[2] = 'X'
	}
	return string(b)
}
