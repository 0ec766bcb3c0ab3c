package broker

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// System consumer groups (MixAll), created at start like RocketMQ's
// SubscriptionGroupManager does.
var systemGroups = []string{
	"TOOLS_CONSUMER", "FILTERSRV_CONSUMER", "SELF_TEST_C_GROUP", "CID_ONS-HTTP-PROXY",
	"CID_ONSAPI_PULL", "CID_ONSAPI_PERMISSION", "CID_ONSAPI_OWNER", "CID_RMQ_SYS_TRANS",
}

// sysGroupPrefix marks groups the broker itself uses; they are created on demand
// even when autoCreateSubscriptionGroup is off (MixAll.isSysConsumerGroup).
const sysGroupPrefix = "CID_RMQ_SYS_"

const maxGroupLength = 255

// validateGroup checks a consumer or producer group name (the Go client's rule:
// not empty, at most 255 characters of [%|a-zA-Z0-9_-]).
func validateGroup(name string) error {
	if name == "" {
		return fmt.Errorf("the specified group is blank")
	}
	if len(name) > maxGroupLength {
		return fmt.Errorf("the specified group is longer than group max length %d", maxGroupLength)
	}
	if !validName(name) {
		return fmt.Errorf("the specified group[%s] contains illegal characters, allowing only ^[%%|a-zA-Z0-9_-]+$", name)
	}
	return nil
}

// SubscriptionGroupManager owns subscriptionGroup.json: each consumer group's
// settings (retry queues, max retries, whether it may consume or broadcast).
type SubscriptionGroupManager struct {
	b    *Broker
	path string

	mu      sync.RWMutex
	table   map[string]body.SubscriptionGroupConfig
	version body.DataVersion
	// loaded: subscriptionGroup.json (or its .bak) existed at start (adopt.go).
	loaded bool

	persister filePersister
}

func newSubscriptionGroupManager(b *Broker) (*SubscriptionGroupManager, error) {
	m := &SubscriptionGroupManager{
		b:     b,
		path:  filepath.Join(b.configDir, subscriptionGroupFile),
		table: make(map[string]body.SubscriptionGroupConfig, 32),
	}
	for _, g := range systemGroups {
		m.table[g] = body.NewSubscriptionGroupConfig(g)
	}
	found, err := b.loadMeta(m.path, "subscription groups", m.decode)
	if err != nil {
		return nil, err
	}
	m.loaded = found
	return m, nil
}

func (m *SubscriptionGroupManager) decode(data []byte) error {
	w, err := body.DecodeSubscriptionGroupWrapper(data)
	if err != nil {
		return err
	}
	maps.Copy(m.table, w.SubscriptionGroupTable)
	m.version = w.DataVersion
	return nil
}

// Get returns a group's config without creating it.
func (m *SubscriptionGroupManager) Get(group string) (body.SubscriptionGroupConfig, bool) {
	m.mu.RLock()
	c, ok := m.table[group]
	m.mu.RUnlock()
	return c, ok
}

// FindOrCreate returns a group's config, creating it with defaults when
// autoCreateSubscriptionGroup is on or the group is a system group. ok is false
// when the group is unknown and may not be created (SUBSCRIPTION_GROUP_NOT_EXIST).
func (m *SubscriptionGroupManager) FindOrCreate(group string) (body.SubscriptionGroupConfig, bool) {
	if c, ok := m.Get(group); ok {
		return c, true
	}
	if !m.b.autoCreateSubscriptionGroup() && !strings.HasPrefix(group, sysGroupPrefix) {
		return body.SubscriptionGroupConfig{}, false
	}
	if validateGroup(group) != nil {
		return body.SubscriptionGroupConfig{}, false
	}
	m.mu.Lock()
	c, ok := m.table[group]
	if !ok {
		c = body.NewSubscriptionGroupConfig(group)
		m.table[group] = c
		m.version.Next()
	}
	m.mu.Unlock()
	if !ok {
		m.b.log.Info().Str("group", group).Msg("subscription group auto-created")
		if err := m.persist(); err != nil {
			m.b.log.Error().Err(err).Msg("persist subscription groups")
		}
	}
	return c, true
}

// Update creates or replaces a group's config (admin) and persists it.
func (m *SubscriptionGroupManager) Update(c body.SubscriptionGroupConfig) error {
	if err := validateGroup(c.GroupName); err != nil {
		return err
	}
	if c.RetryQueueNums < 0 || c.RetryQueueNums > maxQueueNums {
		return fmt.Errorf("group %s: retryQueueNums %d out of range [0, %d]", c.GroupName, c.RetryQueueNums, maxQueueNums)
	}
	m.mu.Lock()
	m.table[c.GroupName] = c
	m.version.Next()
	m.mu.Unlock()
	m.b.log.Info().Str("group", c.GroupName).Msg("subscription group updated")
	return m.persist()
}

// Delete removes a group's config; it reports whether the group existed.
func (m *SubscriptionGroupManager) Delete(group string) bool {
	m.mu.Lock()
	_, ok := m.table[group]
	if ok {
		delete(m.table, group)
		m.version.Next()
	}
	m.mu.Unlock()
	if ok {
		m.b.log.Info().Str("group", group).Msg("subscription group deleted")
		if err := m.persist(); err != nil {
			m.b.log.Error().Err(err).Msg("persist subscription groups")
		}
	}
	return ok
}

// Snapshot returns a copy of the table and its version.
func (m *SubscriptionGroupManager) Snapshot() (map[string]body.SubscriptionGroupConfig, body.DataVersion) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.table), m.version
}

func (m *SubscriptionGroupManager) encode(pretty bool) ([]byte, error) {
	table, v := m.Snapshot()
	return encodeTable(&body.SubscriptionGroupWrapper{SubscriptionGroupTable: table, DataVersion: v}, pretty)
}

// persist writes subscriptionGroup.json.
func (m *SubscriptionGroupManager) persist() error {
	return m.persister.persist(m.path, m.encode)
}
