package body

// KVTable is a namespace of the name server's KV config (GET_KVLIST_BY_NAMESPACE,
// and the body of a REGISTER_BROKER response).
type KVTable struct {
	Table map[string]string `json:"table"`
}

// TopicList is the body of the topic-list codes (206, 224, 304, 311-313).
type TopicList struct {
	// BrokerAddr is set only by GET_SYSTEM_TOPIC_LIST_FROM_NS.
	BrokerAddr string   `json:"brokerAddr,omitempty"`
	TopicList  []string `json:"topicList"`
}
