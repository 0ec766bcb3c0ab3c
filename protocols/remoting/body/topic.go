// Package body holds the JSON bodies RocketMQ's remoting requests and responses
// carry (topic configs, routes, cluster info, broker registration, KV tables), with
// encoders that produce what Java's fastjson emits where clients depend on it and
// decoders that accept both fastjson's and standard JSON.
package body

import "time"

// Permission bits of topics and brokers (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// TopicConfig is RocketMQ's TopicConfig as stored in topics.json and sent in
// broker registrations.
type TopicConfig struct {
	TopicName       string `json:"topicName"`
	ReadQueueNums   int32  `json:"readQueueNums"`
	WriteQueueNums  int32  `json:"writeQueueNums"`
	Perm            int32  `json:"perm"`
	TopicFilterType string `json:"topicFilterType"`
	TopicSysFlag    int32  `json:"topicSysFlag"`
	Order           bool   `json:"order"`
}

// NewTopicConfig returns a config with RocketMQ's defaults for the given queue counts.
func NewTopicConfig(name string, readQueues, writeQueues, perm int32) TopicConfig {
	return TopicConfig{TopicName: name, ReadQueueNums: readQueues, WriteQueueNums: writeQueues, Perm: perm, TopicFilterType: "SINGLE_TAG"}
}

// DataVersion versions a table (topic configs, subscription groups): a change bumps
// the counter and stamps the time.
type DataVersion struct {
	Timestamp int64 `json:"timestamp"`
	Counter   int64 `json:"counter"`
}

// Next bumps the version.
func (v *DataVersion) Next() {
	v.Timestamp = time.Now().UnixMilli()
	v.Counter++
}
