package broker

import (
	"github.com/mqd/mqd/kernel/config"
)

// Config is the broker's configuration (section "broker"), named as RocketMQ's
// BrokerConfig properties so that an operator's broker.properties maps 1:1.
type Config struct {
	BrokerClusterName           string `koanf:"brokerClusterName"`
	BrokerName                  string `koanf:"brokerName"`
	BrokerID                    int64  `koanf:"brokerId"`
	BrokerIP1                   string `koanf:"brokerIP1"`
	ListenPort                  int    `koanf:"listenPort"`
	NamesrvAddr                 string `koanf:"namesrvAddr"`
	BrokerPermission            int32  `koanf:"brokerPermission"`
	DefaultTopicQueueNums       int32  `koanf:"defaultTopicQueueNums"`
	AutoCreateTopicEnable       bool   `koanf:"autoCreateTopicEnable"`
	AutoCreateSubscriptionGroup bool   `koanf:"autoCreateSubscriptionGroup"`
	ClusterTopicEnable          bool   `koanf:"clusterTopicEnable"`
	BrokerTopicEnable           bool   `koanf:"brokerTopicEnable"`
	MaxMessageSize              int    `koanf:"maxMessageSize"`
	RegisterNameServerPeriod    int64  `koanf:"registerNameServerPeriod"`
	RegisterBrokerTimeoutMills  int64  `koanf:"registerBrokerTimeoutMills"`
	FlushConsumerOffsetInterval int64  `koanf:"flushConsumerOffsetInterval"`
	LongPollingEnable           bool   `koanf:"longPollingEnable"`
	ShortPollingTimeMills       int64  `koanf:"shortPollingTimeMills"`
	ChannelExpiredTimeout       int64  `koanf:"channelExpiredTimeout"`
	ServerChannelMaxIdleSeconds int    `koanf:"serverChannelMaxIdleTimeSeconds"`
	MaxFrameSize                int    `koanf:"maxFrameSize"`
	MaxConnections              int    `koanf:"maxConnections"`
	MaxConnectionsPerHost       int    `koanf:"maxConnectionsPerHost"`
	MaxInflightRequests         int    `koanf:"maxInflightRequests"`
	AclEnable                   bool   `koanf:"aclEnable"`
	TraceTopicEnable            bool   `koanf:"traceTopicEnable"`
	MsgTraceTopicName           string `koanf:"msgTraceTopicName"`
	StoreReplyMessageEnable     bool   `koanf:"storeReplyMessageEnable"`
	RegionID                    string `koanf:"regionId"`
	TraceOn                     bool   `koanf:"traceOn"`

	NotifyConsumerIdsChangedEnable bool `koanf:"notifyConsumerIdsChangedEnable"`

	// SQL92 filtering and orderly locks; the keys are registered in
	// propfilter.go and locks.go.
	EnablePropertyFilter     bool  `koanf:"enablePropertyFilter"`
	RebalanceLockMaxLiveTime int64 `koanf:"rebalanceLockMaxLiveTime"`

	// Delayed delivery; the keys are registered in schedule.go.
	MessageDelayLevel        string `koanf:"messageDelayLevel"`
	FlushDelayOffsetInterval int64  `koanf:"flushDelayOffsetInterval"`
	TimerWheelEnable         bool   `koanf:"timerWheelEnable"`
	TimerMaxDelaySec         int64  `koanf:"timerMaxDelaySec"`
	TimerFlushIntervalMs     int64  `koanf:"timerFlushIntervalMs"`

	// Transaction messages; the keys are registered in transaction.go.
	TransactionConfig `koanf:",squash"`
}

func init() {
	b := func(name string, def any, doc string) config.Key {
		return config.Key{Path: "broker." + name, Role: "broker", RocketMQ: []string{name}, Default: def, Doc: doc}
	}
	// live marks keys updateBrokerConfig may change on a running broker
	// (liveconfig.go keeps the list the handler accepts).
	live := func(k config.Key) config.Key { k.Live = true; return k }
	config.Register(
		b("brokerClusterName", "DefaultCluster", "cluster this broker belongs to"),
		b("brokerName", "broker-a", "broker group name shared by a master and its slaves"),
		b("brokerId", int64(0), "0 = master, > 0 = slave"),
		b("brokerIP1", "", "address advertised to clients (default: first non-loopback IPv4, else 127.0.0.1)"),
		b("listenPort", 10911, "remoting port (0 = any free port)"),
		b("namesrvAddr", "", "name servers, host:port separated by ';'"),
		b("brokerPermission", int32(6), "broker permission bits (read 4, write 2)"),
		b("defaultTopicQueueNums", int32(8), "queue count of TBW102, which caps auto-created topics"),
		live(b("autoCreateTopicEnable", true, "create unknown topics on first send (through TBW102)")),
		live(b("autoCreateSubscriptionGroup", true, "create unknown consumer groups on first use")),
		b("clusterTopicEnable", true, "make the cluster name a writable topic"),
		b("brokerTopicEnable", true, "make the broker name a writable topic"),
		b("maxMessageSize", 4194304, "largest message body accepted, in bytes"),
		b("registerNameServerPeriod", int64(30000), "period of registration with the name servers, ms (clamped 10 s - 60 s)"),
		b("registerBrokerTimeoutMills", int64(6000), "timeout of one registration, ms"),
		b("flushConsumerOffsetInterval", int64(5000), "period of persisting consumer offsets, ms"),
		live(b("longPollingEnable", true, "park pulls that find nothing until a message arrives")),
		live(b("shortPollingTimeMills", int64(1000), "how long a pull is parked when long polling is off, ms")),
		b("channelExpiredTimeout", int64(120000), "drop a client with no heartbeat for this long, ms"),
		b("serverChannelMaxIdleTimeSeconds", 120, "close connections idle this long, s"),
		config.Key{Path: "broker.maxFrameSize", Role: "broker", Default: 16 << 20, Doc: "largest remoting frame accepted, bytes"},
		config.Key{Path: "broker.maxConnections", Role: "broker", Default: 10000, Doc: "open connections accepted; one more is closed at once (0: no bound)"},
		config.Key{Path: "broker.maxConnectionsPerHost", Role: "broker", Default: 2000, Doc: "open connections accepted from one remote IP address (0: no bound)"},
		b("aclEnable", false, "check every request against the plain ACL file (acl.file, default conf/plain_acl.yml): signature, account, topic and group permissions, admin-only requests"),
		config.Key{Path: "broker.maxInflightRequests", Role: "broker", Default: 10000,
			Doc: "requests of one connection handled at once, parked pulls included; one more is answered SYSTEM_BUSY (0: no bound)"},
		b("traceTopicEnable", false, "create the message trace topic"),
		b("msgTraceTopicName", "RMQ_SYS_TRACE_TOPIC", "message trace topic"),
		b("storeReplyMessageEnable", true, "also store request-reply replies"),
		b("regionId", "DefaultRegion", "region reported in send responses"),
		b("traceOn", true, "trace switch reported in send responses"),
		live(b("notifyConsumerIdsChangedEnable", true, "tell a group's consumers to rebalance when its members change")),
	)
}
