package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
)

// SlaveSynchronize: a slave copies its master's metadata every
// broker.slaveSyncInterval (RocketMQ: 10 s) over the master's remoting port:
// topic configs (GET_ALL_TOPIC_CONFIG, replaced when the master's dataVersion
// differs), consumer offsets (GET_ALL_CONSUMER_OFFSET, the master's values
// overwrite, local extra keys stay), delay offsets (GET_ALL_DELAY_OFFSET, the
// master's delayOffset.json written verbatim) and subscription groups
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, replaced when the version differs). Each
// step that fails is logged and retried on the next round.
//
// Offsets committed to a slave (the Go client commits wherever it reads while
// the master is gone) are kept until the next round, which overwrites them
// with the master's values once the master is back; like RocketMQ 4.x, the
// master does not take offsets back from the slave, so consumers that moved
// on the slave re-read from the master's offset after failback (duplicates,
// never loss).

type slaveSyncer struct {
	b    *Broker
	wake chan struct{}
}

func newSlaveSyncer(b *Broker) *slaveSyncer {
	return &slaveSyncer{b: b, wake: make(chan struct{}, 1)}
}

func (s *slaveSyncer) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *slaveSyncer) run(stop <-chan struct{}) {
	t := time.NewTicker(s.b.ha.syncInterval)
	defer t.Stop()
	for {
		if addr := *s.b.ha.masterAddr.Load(); addr != "" {
			s.syncAll(addr)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *slaveSyncer) invoke(addr string, code int16) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.b.nsClient.Invoke(ctx, addr, remoting.NewRequest(code, nil, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, &remoteError{resp.Code, resp.Remark}
	}
	return resp.Body, nil
}

func (s *slaveSyncer) syncAll(addr string) {
	b := s.b
	warn := func(what string, err error) {
		b.log.Warn().Err(err).Str("master", addr).Msg("slave synchronize: " + what)
	}
	if data, err := s.invoke(addr, remoting.GetAllTopicConfig); err != nil {
		warn("topic configs", err)
	} else if err := b.topics.replaceFromMaster(data); err != nil {
		warn("topic configs", err)
	}
	if data, err := s.invoke(addr, remoting.GetAllConsumerOffset); err != nil {
		warn("consumer offsets", err)
	} else if err := b.offsets.mergeFromMaster(data); err != nil {
		warn("consumer offsets", err)
	}
	if data, err := s.invoke(addr, remoting.GetAllDelayOffset); err != nil {
		if re, ok := err.(*remoteError); !ok || re.code != remoting.RequestCodeNotSupported {
			warn("delay offsets", err)
		}
	} else if len(data) > 0 {
		if err := writeFileSafe(filepath.Join(b.configDir, "delayOffset.json"), data); err != nil {
			warn("delay offsets", err)
		}
	}
	if data, err := s.invoke(addr, remoting.GetAllSubscriptionGroupConfig); err != nil {
		warn("subscription groups", err)
	} else if err := b.subGroups.replaceFromMaster(data); err != nil {
		warn("subscription groups", err)
	}
}

// replaceFromMaster adopts the master's topic table when its version differs.
func (m *TopicConfigManager) replaceFromMaster(data []byte) error {
	var w body.TopicConfigSerializeWrapper
	if err := body.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	m.mu.Lock()
	if m.version == w.DataVersion {
		m.mu.Unlock()
		return nil
	}
	table := make(map[string]body.TopicConfig, len(w.TopicConfigTable))
	for name, tc := range w.TopicConfigTable {
		if validateTopic(name) != nil {
			continue
		}
		if tc.TopicName == "" {
			tc.TopicName = name
		}
		table[name] = tc
	}
	m.table, m.version = table, w.DataVersion
	m.mu.Unlock()
	m.changed()
	return nil
}

// mergeFromMaster puts the master's offsets over the local ones.
func (m *ConsumerOffsetManager) mergeFromMaster(data []byte) error {
	t, err := body.DecodeConsumerOffsetTable(data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	m.mu.Lock()
	for key, qs := range t.OffsetTable {
		topic, group, ok := strings.Cut(key, "@")
		if !ok {
			continue
		}
		for q, off := range qs {
			k := offsetKey{topic, group, q}
			if cur, ok := m.table[k]; !ok || cur != off {
				m.table[k] = off
				m.changes++
			}
		}
	}
	m.mu.Unlock()
	return m.Persist()
}

// replaceFromMaster adopts the master's subscription groups when the version differs.
func (m *SubscriptionGroupManager) replaceFromMaster(data []byte) error {
	w, err := body.DecodeSubscriptionGroupWrapper(data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	m.mu.Lock()
	if m.version == w.DataVersion {
		m.mu.Unlock()
		return nil
	}
	table := w.SubscriptionGroupTable
	if table == nil {
		table = map[string]body.SubscriptionGroupConfig{}
	}
	m.table, m.version = table, w.DataVersion
	m.mu.Unlock()
	return m.persist()
}

// slaveTopicConfig answers, on a slave, for a topic that its replicated store
// holds but whose config has not been copied from the master yet (the topic
// was created less than slaveSyncInterval before the master went away): the
// records are on this slave, so consumers falling back to it must be able to
// read them. The config is read-only and transient; the next synchronisation
// with the master replaces the whole table.
func (b *Broker) slaveTopicConfig(topic string) (body.TopicConfig, bool) {
	h := b.ha
	if h == nil || h.Role() != storage.RoleSlave {
		return body.TopicConfig{}, false
	}
	ids := b.store.QueueIDs(topic)
	if len(ids) == 0 {
		return body.TopicConfig{}, false
	}
	n := int32(0)
	for _, id := range ids {
		n = max(n, id+1)
	}
	return body.TopicConfig{TopicName: topic, ReadQueueNums: n, WriteQueueNums: n, Perm: body.PermRead}, true
}
