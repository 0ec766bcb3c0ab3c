package namesrv

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqd/mqd/kernel/config"
)

// Config is the name server's configuration, the namesrv.* keys.
type Config struct {
	ListenPort                      int    `koanf:"listenPort"`
	KVConfigPath                    string `koanf:"kvConfigPath"`
	OrderMessageEnable              bool   `koanf:"orderMessageEnable"`
	ScanNotActiveBrokerInterval     int64  `koanf:"scanNotActiveBrokerInterval"`
	BrokerChannelExpiredTime        int64  `koanf:"brokerChannelExpiredTime"`
	ServerChannelMaxIdleTimeSeconds int    `koanf:"serverChannelMaxIdleTimeSeconds"`
	MaxFrameSize                    int    `koanf:"maxFrameSize"`
	MaxConnections                  int    `koanf:"maxConnections"`
	MaxConnectionsPerHost           int    `koanf:"maxConnectionsPerHost"`
	MaxInflightRequests             int    `koanf:"maxInflightRequests"`
	AclEnable                       bool   `koanf:"aclEnable"`
}

// keys are the namesrv.* keys this package implements.
var keys = []config.Key{
	{Path: "namesrv.listenPort", Role: "namesrv", RocketMQ: []string{"listenPort"}, Default: 9876,
		Doc: "TCP port the name server listens on (all interfaces); 0 picks a free port"},
	{Path: "namesrv.kvConfigPath", Role: "namesrv", RocketMQ: []string{"kvConfigPath"}, Default: "./data/namesrv/kvConfig.json",
		Doc: "file holding the KV config (ORDER_TOPIC_CONFIG and others), rewritten on every change"},
	{Path: "namesrv.orderMessageEnable", Role: "namesrv", RocketMQ: []string{"orderMessageEnable"}, Default: false, Live: true,
		Doc: "return the ORDER_TOPIC_CONFIG value of a topic as orderTopicConf in its route"},
	{Path: "namesrv.scanNotActiveBrokerInterval", Role: "namesrv", RocketMQ: []string{"scanNotActiveBrokerInterval"}, Default: int64(10000), Live: true,
		Doc: "milliseconds between scans for brokers that stopped registering"},
	{Path: "namesrv.brokerChannelExpiredTime", Role: "namesrv", Default: int64(120000), Live: true,
		Doc: "milliseconds without a registration after which a broker is dropped (RocketMQ's fixed BROKER_CHANNEL_EXPIRED_TIME)"},
	{Path: "namesrv.serverChannelMaxIdleTimeSeconds", Role: "namesrv", RocketMQ: []string{"serverChannelMaxIdleTimeSeconds"}, Default: 120,
		Doc: "seconds without inbound traffic after which a connection is closed; 0 never closes idle connections"},
	{Path: "namesrv.maxFrameSize", Role: "namesrv", Default: 16 << 20,
		Doc: "largest remoting frame accepted, in bytes (RocketMQ's com.rocketmq.remoting.frameMaxLength)"},
	{Path: "namesrv.maxConnections", Role: "namesrv", Default: 10000,
		Doc: "open connections accepted; one more is closed at once (0: no bound)"},
	{Path: "namesrv.maxConnectionsPerHost", Role: "namesrv", Default: 2000,
		Doc: "open connections accepted from one remote IP address (0: no bound)"},
	{Path: "namesrv.aclEnable", Role: "namesrv", RocketMQ: []string{"aclEnable"}, Default: false,
		Doc: "check every request against the plain ACL file (acl.file): signature and account; admin-only requests (broker registration, KV config, permissions) need an admin account"},
	{Path: "namesrv.maxInflightRequests", Role: "namesrv", Default: 10000,
		Doc: "requests of one connection handled at once; one more is answered SYSTEM_BUSY (0: no bound)"},
}

func init() {
	config.Register(keys...)
	// Accepted from a RocketMQ namesrv.properties without effect: Go needs no
	// thread pools or Netty buffers, nothing reads productEnvName or clusterTest,
	// and runtime config updates are not persisted (configStorePath).
	config.RegisterUnimplemented("namesrv",
		"rocketmqHome", "configStorePath", "productEnvName", "clusterTest",
		"serverWorkerThreads", "serverSelectorThreads", "serverCallbackExecutorThreads",
		"serverOnewaySemaphoreValue", "serverAsyncSemaphoreValue",
		"serverSocketSndBufSize", "serverSocketRcvBufSize", "serverSocketBacklog",
		"serverPooledByteBufAllocatorEnable", "useEpollNativeSelector",
		"writeBufferHighWaterMark", "writeBufferLowWaterMark",
		"supportActingMaster", "returnOrderTopicConfigToBroker",
		"clientRequestThreadPoolNums", "configBlackList")
}

// DefaultConfig returns the registered defaults.
func DefaultConfig() Config {
	return Config{
		ListenPort:                      9876,
		KVConfigPath:                    "./data/namesrv/kvConfig.json",
		ScanNotActiveBrokerInterval:     10000,
		BrokerChannelExpiredTime:        120000,
		ServerChannelMaxIdleTimeSeconds: 120,
		MaxFrameSize:                    16 << 20,
		MaxConnections:                  10000,
		MaxConnectionsPerHost:           2000,
		MaxInflightRequests:             10000,
	}
}

// Validate checks ranges.
func (c *Config) Validate() error {
	switch {
	case c.ListenPort < 0 || c.ListenPort > 65535:
		return fmt.Errorf("namesrv.listenPort %d: want 0-65535", c.ListenPort)
	case c.KVConfigPath == "":
		return fmt.Errorf("namesrv.kvConfigPath is empty")
	case c.ScanNotActiveBrokerInterval <= 0:
		return fmt.Errorf("namesrv.scanNotActiveBrokerInterval %d: want > 0 ms", c.ScanNotActiveBrokerInterval)
	case c.BrokerChannelExpiredTime <= 0:
		return fmt.Errorf("namesrv.brokerChannelExpiredTime %d: want > 0 ms", c.BrokerChannelExpiredTime)
	case c.ServerChannelMaxIdleTimeSeconds < 0:
		return fmt.Errorf("namesrv.serverChannelMaxIdleTimeSeconds %d: want >= 0 (0 disables)", c.ServerChannelMaxIdleTimeSeconds)
	case c.MaxFrameSize < 1024:
		return fmt.Errorf("namesrv.maxFrameSize %d: want at least 1024 bytes", c.MaxFrameSize)
	case c.MaxConnections < 0 || c.MaxConnectionsPerHost < 0 || c.MaxInflightRequests < 0:
		return fmt.Errorf("namesrv.maxConnections, maxConnectionsPerHost and maxInflightRequests must not be negative (0: no bound)")
	}
	return nil
}

// settings holds the configuration as it is now: the live keys change through
// UPDATE_NAMESRV_CONFIG.
type settings struct {
	mu  sync.RWMutex
	cfg Config
}

func (s *settings) get() Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

func (s *settings) orderMessageEnable() bool { return s.get().OrderMessageEnable }
func (s *settings) scanInterval() time.Duration {
	return time.Duration(s.get().ScanNotActiveBrokerInterval) * time.Millisecond
}
func (s *settings) brokerExpiry() time.Duration {
	return time.Duration(s.get().BrokerChannelExpiredTime) * time.Millisecond
}

// keyName is how a key appears in GET/UPDATE_NAMESRV_CONFIG bodies: its RocketMQ
// name, or for mqd-only keys the last label of its path.
func keyName(k config.Key) string {
	if len(k.RocketMQ) > 0 {
		return k.RocketMQ[0]
	}
	return k.Path[strings.LastIndexByte(k.Path, '.')+1:]
}

// field returns the value of the Config field a key fills, by its koanf name.
func (c *Config) field(name string) any {
	switch name {
	case "listenPort":
		return c.ListenPort
	case "kvConfigPath":
		return c.KVConfigPath
	case "orderMessageEnable":
		return c.OrderMessageEnable
	case "scanNotActiveBrokerInterval":
		return c.ScanNotActiveBrokerInterval
	case "brokerChannelExpiredTime":
		return c.BrokerChannelExpiredTime
	case "serverChannelMaxIdleTimeSeconds":
		return c.ServerChannelMaxIdleTimeSeconds
	case "maxFrameSize":
		return c.MaxFrameSize
	case "maxConnections":
		return c.MaxConnections
	case "maxConnectionsPerHost":
		return c.MaxConnectionsPerHost
	case "maxInflightRequests":
		return c.MaxInflightRequests
	}
	return nil
}

// setLive sets a live key's field from a parsed value.
func (c *Config) setLive(name string, v any) {
	switch name {
	case "orderMessageEnable":
		c.OrderMessageEnable = v.(bool)
	case "scanNotActiveBrokerInterval":
		c.ScanNotActiveBrokerInterval = v.(int64)
	case "brokerChannelExpiredTime":
		c.BrokerChannelExpiredTime = v.(int64)
	}
}

// propertiesText renders the configuration as java.util.Properties text
// (GET_NAMESRV_CONFIG), sorted by name.
func (s *settings) propertiesText() []byte {
	cfg := s.get()
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k.Path[strings.LastIndexByte(k.Path, '.')+1:]
		var v string
		switch x := cfg.field(name).(type) {
		case int:
			v = strconv.Itoa(x)
		case int64:
			v = strconv.FormatInt(x, 10)
		case bool:
			v = strconv.FormatBool(x)
		case string:
			v = escapeProperty(x)
		}
		lines = append(lines, keyName(k)+"="+v+"\n")
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, ""))
}

// escapeProperty escapes what java.util.Properties would misread in a value.
func escapeProperty(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\f", `\f`)
	s = r.Replace(s)
	if strings.HasPrefix(s, " ") {
		s = `\` + s
	}
	return s
}

// update applies a properties text of live keys (UPDATE_NAMESRV_CONFIG). All
// keys are checked before any is applied: an update is applied whole or not at
// all. Keys are matched against the registered key table, not a literal list,
// so a path key (kvConfigPath, configStorePath, ...) can never slip through a
// misspelt blacklist (CVE-2023-37582).
func (s *settings) update(text []byte) (applied []string, err error) {
	props, err := config.ParseProperties(text)
	if err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	if len(props) == 0 {
		return nil, fmt.Errorf("no properties in the request body")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cfg
	for _, p := range props {
		k, ok := lookupKey(p.Key)
		if !ok {
			return nil, &updateRejected{fmt.Sprintf("%s is not a name server key that can be updated at runtime (updatable: %s)", p.Key, liveKeyNames())}
		}
		if !k.Live {
			return nil, &updateRejected{fmt.Sprintf("%s cannot be updated at runtime; set it in the configuration and restart (updatable: %s)", p.Key, liveKeyNames())}
		}
		v, err := config.Parse(p.Value, k)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %v", p.Key, p.Value, err)
		}
		next.setLive(k.Path[strings.LastIndexByte(k.Path, '.')+1:], v)
		applied = append(applied, keyName(k))
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	s.cfg = next
	return applied, nil
}

// updateRejected is an update naming a key that may not change at runtime.
type updateRejected struct{ msg string }

func (e *updateRejected) Error() string { return e.msg }

// lookupKey finds one of this package's keys by RocketMQ name, last label or path.
func lookupKey(name string) (config.Key, bool) {
	for _, k := range keys {
		if name == k.Path || name == keyName(k) || name == k.Path[strings.LastIndexByte(k.Path, '.')+1:] {
			return k, true
		}
	}
	return config.Key{}, false
}

func liveKeyNames() string {
	var names []string
	for _, k := range keys {
		if k.Live {
			names = append(names, keyName(k))
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
