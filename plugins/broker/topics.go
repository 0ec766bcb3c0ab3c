package broker

import (
	"fmt"
	"maps"
	"path/filepath"
	"sync"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// System topics (RocketMQ TopicValidator / MixAll).
const (
	topicAutoCreate       = "TBW102"
	topicSelfTest         = "SELF_TEST_TOPIC"
	topicBenchmark        = "BenchmarkTest"
	topicOffsetMovedEvent = "OFFSET_MOVED_EVENT"
	topicSchedule         = "SCHEDULE_TOPIC_XXXX"
	topicTransHalf        = "RMQ_SYS_TRANS_HALF_TOPIC"
	topicTransOpHalf      = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	topicTransCheckMax    = "TRANS_CHECK_MAX_TIME_TOPIC"
	topicTraceDefault     = "RMQ_SYS_TRACE_TOPIC"
	topicSysPrefix        = "rmq_sys_"
	replyTopicSuffix      = "_REPLY_TOPIC"

	scheduleQueueNums = 18 // one queue per delay level
	maxTopicLength    = 127
	maxQueueNums      = 65535
)

// systemTopics may not be created or deleted by admin requests (TopicValidator.SYSTEM_TOPIC_SET).
var systemTopics = map[string]bool{
	topicAutoCreate: true, topicSchedule: true, topicBenchmark: true, topicTransHalf: true,
	topicTraceDefault: true, topicTransOpHalf: true, topicTransCheckMax: true, topicSelfTest: true,
	topicOffsetMovedEvent: true,
}

// isSystemTopic reports whether admin requests must leave topic alone.
func isSystemTopic(topic string) bool {
	return systemTopics[topic] || (len(topic) >= len(topicSysPrefix) && topic[:len(topicSysPrefix)] == topicSysPrefix)
}

// retryTopic returns the retry topic of a consumer group.
func retryTopic(group string) string { return retryTopicPrefix + group }

// validateTopic checks a topic name against RocketMQ's rules: not empty, at most
// 127 characters of [%|a-zA-Z0-9_-]. Topic names become directory names in the
// store, so anything else (a path like ../x) is refused here. It does not
// allocate for a valid name.
func validateTopic(name string) error {
	if name == "" {
		return fmt.Errorf("the specified topic is blank")
	}
	if len(name) > maxTopicLength {
		return fmt.Errorf("the specified topic is longer than topic max length %d", maxTopicLength)
	}
	if !validName(name) {
		return fmt.Errorf("the specified topic[%s] contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
	}
	return nil
}

// validName reports whether s consists of [%|a-zA-Z0-9_-] only.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '%' || c == '|') {
			return false
		}
	}
	return true
}

// TopicConfigManager owns the broker's topic table (topics.json): the system
// topics created at start, auto-created topics, retry and DLQ topics and those
// created by admins. Every change bumps the data version, is persisted and
// triggers a registration with the name servers.
type TopicConfigManager struct {
	b    *Broker
	path string

	mu      sync.RWMutex
	table   map[string]body.TopicConfig
	version body.DataVersion

	persister filePersister
	// regKick asks the registration loop to register now (buffer 1: requests coalesce).
	regKick chan struct{}
	// configVersion versions the broker's settings for GET_BROKER_CONFIG; they
	// do not change while the broker runs.
	configVersion body.DataVersion
	// loaded: topics.json (or its .bak) existed at start (adopt.go).
	loaded bool
}

func newTopicConfigManager(b *Broker) (*TopicConfigManager, error) {
	m := &TopicConfigManager{
		b:       b,
		path:    filepath.Join(b.configDir, topicsFile),
		table:   make(map[string]body.TopicConfig, 64),
		regKick: make(chan struct{}, 1),
	}
	m.configVersion.Next()
	m.addSystemTopics()
	found, err := b.loadMeta(m.path, "topic configs", m.decode)
	if err != nil {
		return nil, err
	}
	m.loaded = found
	if found {
		b.log.Info().Int("topics", len(m.table)).Msg("topic configs loaded")
	}
	return m, nil
}

// addSystemTopics creates the topics RocketMQ's TopicConfigManager constructor
// creates; the file loaded afterwards overrides them.
func (m *TopicConfigManager) addSystemTopics() {
	cfg := &m.b.cfg
	add := func(name string, queues, perm int32) {
		if name == "" {
			return
		}
		m.table[name] = body.NewTopicConfig(name, queues, queues, perm)
	}
	rw := int32(body.PermRead | body.PermWrite)
	add(topicSelfTest, 1, rw)
	if cfg.AutoCreateTopicEnable {
		add(topicAutoCreate, cfg.DefaultTopicQueueNums, body.PermInherit|rw)
	}
	add(topicBenchmark, 1024, rw)
	perm := int32(body.PermInherit)
	if cfg.ClusterTopicEnable {
		perm |= rw
	}
	add(cfg.BrokerClusterName, 16, perm)
	perm = body.PermInherit
	if cfg.BrokerTopicEnable {
		perm |= rw
	}
	add(cfg.BrokerName, 1, perm)
	add(topicOffsetMovedEvent, 1, rw)
	add(topicSchedule, scheduleQueueNums, rw)
	if cfg.TraceTopicEnable {
		name := cfg.MsgTraceTopicName
		if name == "" {
			name = topicTraceDefault
		}
		add(name, 1, rw)
	}
	if cfg.BrokerClusterName != "" {
		add(cfg.BrokerClusterName+replyTopicSuffix, 1, rw)
	}
}

// decode merges a topics.json over the current table.
func (m *TopicConfigManager) decode(data []byte) error {
	var w body.TopicConfigSerializeWrapper
	if err := body.Unmarshal(data, &w); err != nil {
		return err
	}
	for name, tc := range w.TopicConfigTable {
		if err := validateTopic(name); err != nil {
			return fmt.Errorf("topic %q: %w", name, err)
		}
		if tc.TopicName == "" {
			tc.TopicName = name
		}
		if tc.TopicFilterType == "" {
			tc.TopicFilterType = "SINGLE_TAG"
		}
		m.table[name] = tc
	}
	m.version = w.DataVersion
	return nil
}

// Get returns a topic's config.
func (m *TopicConfigManager) Get(topic string) (body.TopicConfig, bool) {
	m.mu.RLock()
	tc, ok := m.table[topic]
	m.mu.RUnlock()
	return tc, ok
}

// has reports whether a topic has a config (no copy: slaves ask per record).
func (m *TopicConfigManager) has(topic string) bool {
	m.mu.RLock()
	_, ok := m.table[topic]
	m.mu.RUnlock()
	return ok
}

// CreateInSendMessage returns the topic's config, creating it from defaultTopic
// (TBW102) when it does not exist (RocketMQ's createTopicInSendMessageMethod):
// only with autoCreateTopicEnable and when the default topic exists with the
// INHERIT permission. The new topic gets min(client's, default's write) queues
// and the default's permission without INHERIT, is persisted and registered
// with the name servers at once. ok is false when the topic neither exists nor
// may be created.
func (m *TopicConfigManager) CreateInSendMessage(topic, defaultTopic, remoteAddr string, clientDefaultQueueNums int32, topicSysFlag int32) (body.TopicConfig, bool) {
	if tc, ok := m.Get(topic); ok {
		return tc, true
	}
	if err := validateTopic(topic); err != nil {
		return body.TopicConfig{}, false
	}
	m.mu.Lock()
	if tc, ok := m.table[topic]; ok {
		m.mu.Unlock()
		return tc, true
	}
	def, ok := m.table[defaultTopic]
	if !ok || !m.b.autoCreateTopicEnable() || def.Perm&body.PermInherit == 0 {
		m.mu.Unlock()
		// Debug, not Warn: a producer retrying an unknown topic would flood the log.
		m.b.log.Debug().Str("topic", topic).Str("defaultTopic", defaultTopic).Bool("defaultExists", ok).
			Bool("autoCreateTopicEnable", m.b.autoCreateTopicEnable()).Str("producer", remoteAddr).
			Msg("topic not created: the default topic does not allow it")
		return body.TopicConfig{}, false
	}
	queues := def.WriteQueueNums
	if clientDefaultQueueNums > 0 && clientDefaultQueueNums < queues {
		queues = clientDefaultQueueNums
	}
	tc := body.NewTopicConfig(topic, queues, queues, def.Perm&^body.PermInherit)
	tc.TopicSysFlag = topicSysFlag
	if def.TopicFilterType != "" {
		tc.TopicFilterType = def.TopicFilterType
	}
	m.table[topic] = tc
	m.version.Next()
	m.mu.Unlock()
	m.b.log.Info().Str("topic", topic).Str("defaultTopic", defaultTopic).Int32("queues", queues).
		Int32("perm", tc.Perm).Str("producer", remoteAddr).Msg("topic auto-created")
	m.changed()
	return tc, true
}

// CreateInSendBack returns a retry or DLQ topic's config, creating it with the
// given queues, permission and flag if missing (always allowed, as in RocketMQ).
// ok is false only for a name that is not a valid topic.
func (m *TopicConfigManager) CreateInSendBack(topic string, queueNums int32, perm int32, topicSysFlag int32) (body.TopicConfig, bool) {
	if tc, ok := m.Get(topic); ok {
		return tc, true
	}
	if err := validateTopic(topic); err != nil {
		return body.TopicConfig{}, false
	}
	m.mu.Lock()
	if tc, ok := m.table[topic]; ok {
		m.mu.Unlock()
		return tc, true
	}
	tc := body.NewTopicConfig(topic, queueNums, queueNums, perm)
	tc.TopicSysFlag = topicSysFlag
	m.table[topic] = tc
	m.version.Next()
	m.mu.Unlock()
	m.b.log.Info().Str("topic", topic).Int32("queues", queueNums).Int32("perm", perm).Msg("topic created")
	m.changed()
	return tc, true
}

// Update creates or replaces a topic config (admin), persists it and registers.
func (m *TopicConfigManager) Update(tc body.TopicConfig) error {
	if err := validateTopic(tc.TopicName); err != nil {
		return err
	}
	if tc.ReadQueueNums < 0 || tc.ReadQueueNums > maxQueueNums || tc.WriteQueueNums < 0 || tc.WriteQueueNums > maxQueueNums {
		return fmt.Errorf("topic %s: queue counts %d/%d out of range [0, %d]", tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, maxQueueNums)
	}
	if tc.Perm < 0 || tc.Perm > body.PermPriority|body.PermRead|body.PermWrite|body.PermInherit {
		return fmt.Errorf("topic %s: perm %d is not a permission", tc.TopicName, tc.Perm)
	}
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	m.mu.Lock()
	m.table[tc.TopicName] = tc
	m.version.Next()
	m.mu.Unlock()
	m.kickRegister()
	return m.persist()
}

// Delete removes a topic config. The name servers drop the topic through
// DELETE_TOPIC_IN_NAMESRV, not through registration (as in RocketMQ).
func (m *TopicConfigManager) Delete(topic string) {
	m.mu.Lock()
	_, ok := m.table[topic]
	if ok {
		delete(m.table, topic)
		m.version.Next()
	}
	m.mu.Unlock()
	if ok {
		m.b.log.Info().Str("topic", topic).Msg("topic deleted")
		if err := m.persist(); err != nil {
			m.b.log.Error().Err(err).Msg("persist topic configs")
		}
	}
}

// Snapshot returns a copy of the table and its version.
func (m *TopicConfigManager) Snapshot() (map[string]body.TopicConfig, body.DataVersion) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.table), m.version
}

// setStateVersion stamps the table's version with the master epoch a
// controller-mode broker runs under (name servers prefer the newer one).
func (m *TopicConfigManager) setStateVersion(epoch int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version.StateVersion = epoch
	m.version.Next()
}

// DataVersion returns the table's version.
func (m *TopicConfigManager) DataVersion() body.DataVersion {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version
}

// UpdateOrderFlags sets order=true on exactly the topics of the name server's
// ORDER_TOPIC_CONFIG table (RocketMQ's updateOrderTopicConfig).
func (m *TopicConfigManager) UpdateOrderFlags(orderTopics map[string]string) {
	changed := false
	m.mu.Lock()
	for name, tc := range m.table {
		_, want := orderTopics[name]
		if tc.Order != want {
			tc.Order = want
			m.table[name] = tc
			changed = true
		}
	}
	if changed {
		m.version.Next()
	}
	m.mu.Unlock()
	if changed {
		if err := m.persist(); err != nil {
			m.b.log.Error().Err(err).Msg("persist topic configs")
		}
	}
}

// changed persists after a creation and asks for a registration.
func (m *TopicConfigManager) changed() {
	if err := m.persist(); err != nil {
		m.b.log.Error().Err(err).Msg("persist topic configs")
	}
	m.kickRegister()
}

func (m *TopicConfigManager) kickRegister() {
	select {
	case m.regKick <- struct{}{}:
	default:
	}
}

// encode returns topics.json content (fastjson-style: tabs, keys sorted).
func (m *TopicConfigManager) encode(pretty bool) ([]byte, error) {
	table, v := m.Snapshot()
	return encodeTable(&body.TopicConfigSerializeWrapper{DataVersion: v, TopicConfigTable: table}, pretty)
}

// persist writes topics.json.
func (m *TopicConfigManager) persist() error {
	return m.persister.persist(m.path, m.encode)
}
