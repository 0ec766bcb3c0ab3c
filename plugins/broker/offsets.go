package broker

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// offsetKey identifies one committed offset. A struct key keeps Commit free of
// allocation (Java builds "topic@group" strings per call).
type offsetKey struct {
	topic, group string
	queueID      int32
}

// ConsumerOffsetManager owns consumerOffset.json: the next offset to consume of
// every (topic, group, queue) committed by clustering consumers. Commits only
// touch memory; the table is written every flushConsumerOffsetInterval and at
// shutdown.
type ConsumerOffsetManager struct {
	b    *Broker
	path string

	mu        sync.RWMutex
	table     map[offsetKey]int64
	changes   uint64 // bumped by every change, under mu
	persisted uint64 // changes at the last successful persist, under persistMu

	// On a slave: the queues whose offset a client committed here and the
	// master has not confirmed yet (slave.go). Under mu; unconfirmedSaved
	// under persistMu.
	unconfirmed        map[offsetKey]struct{}
	unconfirmedChanges uint64
	unconfirmedSaved   uint64

	persistMu sync.Mutex
}

func newConsumerOffsetManager(b *Broker) (*ConsumerOffsetManager, error) {
	m := &ConsumerOffsetManager{
		b:     b,
		path:  filepath.Join(b.configDir, consumerOffsetFile),
		table: make(map[offsetKey]int64, 256),
	}
	if _, err := b.loadMeta(m.path, "consumer offsets", m.decode); err != nil {
		return nil, err
	}
	return m, nil
}

// decode replaces the table with a consumerOffset.json, bare or quoted queue ids.
func (m *ConsumerOffsetManager) decode(data []byte) error {
	t, err := body.DecodeConsumerOffsetTable(data)
	if err != nil {
		return err
	}
	table := make(map[offsetKey]int64, len(t.OffsetTable)*4)
	for key, qs := range t.OffsetTable {
		// The topic may not contain '@' (validateTopic) but a group might, so split
		// at the first '@' as Java's readers do.
		topic, group, ok := strings.Cut(key, "@")
		if !ok {
			return fmt.Errorf("consumer offsets: key %q is not <topic>@<group>", key)
		}
		for q, off := range qs {
			table[offsetKey{topic, group, q}] = off
		}
	}
	m.table = table
	return nil
}

// Query returns the committed offset of a queue.
func (m *ConsumerOffsetManager) Query(group, topic string, queueID int32) (int64, bool) {
	m.mu.RLock()
	off, ok := m.table[offsetKey{topic, group, queueID}]
	m.mu.RUnlock()
	return off, ok
}

// Commit stores the next offset to consume of a queue.
func (m *ConsumerOffsetManager) Commit(group, topic string, queueID int32, offset int64) {
	k := offsetKey{topic, group, queueID}
	m.mu.Lock()
	if old, ok := m.table[k]; !ok || old != offset {
		m.table[k] = offset
		m.changes++
	}
	m.mu.Unlock()
}

// QueryAll returns a group's committed offsets of a topic by queue id.
func (m *ConsumerOffsetManager) QueryAll(group, topic string) map[int32]int64 {
	out := make(map[int32]int64)
	m.mu.RLock()
	for k, off := range m.table {
		if k.topic == topic && k.group == group {
			out[k.queueID] = off
		}
	}
	m.mu.RUnlock()
	return out
}

// GroupsOf lists, sorted, the groups with offsets committed on a topic.
func (m *ConsumerOffsetManager) GroupsOf(topic string) []string {
	set := map[string]struct{}{}
	m.mu.RLock()
	for k := range m.table {
		if k.topic == topic {
			set[k.group] = struct{}{}
		}
	}
	m.mu.RUnlock()
	return sortedSet(set)
}

// TopicsOf lists, sorted, the topics a group has committed offsets on.
func (m *ConsumerOffsetManager) TopicsOf(group string) []string {
	set := map[string]struct{}{}
	m.mu.RLock()
	for k := range m.table {
		if k.group == group {
			set[k.topic] = struct{}{}
		}
	}
	m.mu.RUnlock()
	return sortedSet(set)
}

// DeleteTopic drops every offset of a topic.
func (m *ConsumerOffsetManager) DeleteTopic(topic string) {
	m.deleteWhere(func(k offsetKey) bool { return k.topic == topic })
}

// DeleteGroup drops every offset of a group.
func (m *ConsumerOffsetManager) DeleteGroup(group string) {
	m.deleteWhere(func(k offsetKey) bool { return k.group == group })
}

func (m *ConsumerOffsetManager) deleteWhere(match func(offsetKey) bool) {
	m.mu.Lock()
	for k := range m.table {
		if match(k) {
			delete(m.table, k)
			m.changes++
		}
	}
	m.mu.Unlock()
}

// Table returns the offsets in RocketMQ's wire/file form.
func (m *ConsumerOffsetManager) Table() *body.ConsumerOffsetTable {
	t, _ := m.snapshot()
	return t
}

func (m *ConsumerOffsetManager) snapshot() (*body.ConsumerOffsetTable, uint64) {
	t := &body.ConsumerOffsetTable{OffsetTable: make(map[string]map[int32]int64)}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for k, off := range m.table {
		key := k.topic + "@" + k.group
		qs := t.OffsetTable[key]
		if qs == nil {
			qs = make(map[int32]int64, 8)
			t.OffsetTable[key] = qs
		}
		qs[k.queueID] = off
	}
	return t, m.changes
}

// Persist writes consumerOffset.json when anything changed since the last write.
func (m *ConsumerOffsetManager) Persist() error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	t, changes := m.snapshot()
	if changes == m.persisted {
		return nil
	}
	if err := writeFileSafe(m.path, t.AppendFastjson(nil, true)); err != nil {
		return err
	}
	m.persisted = changes
	return nil
}

func sortedSet(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
