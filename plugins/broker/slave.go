package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
// Offsets committed to a slave while the master is gone (the Java client
// commits, and reads its offsets, at whichever broker of the group it finds;
// the Go client only ever talks offsets with the master) are given back to the
// master when it returns (RocketMQ 4.x overwrites them with the master's older
// values, and its consumers re-read after failback). The slave remembers
// each queue a client committed through UPDATE_CONSUMER_OFFSET as unconfirmed.
// Each round, once GET_ALL_CONSUMER_OFFSET answers, an unconfirmed queue whose
// local offset is ahead of the master's (or unknown to it) keeps its local
// value and is sent to the master as the client would send it
// (UPDATE_CONSUMER_OFFSET: no request code of our own); a queue for which the
// master shows the same offset or more is confirmed and takes the master's
// value. Offsets only move forward this way: a master ahead wins (its
// consumer moved on there), and a client that reset its offset backwards on
// the slave during the outage is overridden by the master. A master that
// cannot be reached or refuses an update leaves the queue unconfirmed for the
// next round (logged once a round). The unconfirmed set is written to
// config/consumerOffsetUnconfirmed.json each round and at shutdown, so a slave
// restarted during the outage still gives its offsets back; a slave killed
// forgets the queues first committed since its last round, as
// consumerOffset.json loses the commits since its last flush.
//
// Limits: an offset reset backwards on the master (mqadmin resetOffsetByTime)
// between its return and the slave's next round is undone by a push that is
// ahead of it; a Go client consumer that stops during the outage loses its
// progress in the client (it never commits at a slave).

type slaveSyncer struct {
	b    *Broker
	wake chan struct{}

	// asked holds the topics replicated without a config that already woke
	// a synchronisation since the last periodic round: a topic the master
	// does not know either (a delayed message delivered to a topic deleted
	// meanwhile) asks once a round, not once a record.
	askedMu sync.Mutex
	asked   map[string]struct{}
}

// slaveSyncer is the syncer of a slave, nil on a master.
func (h *haService) slaveSyncer() *slaveSyncer {
	if h == nil {
		return nil
	}
	return h.syncer
}

// replicated is called for every record the slave dispatches. A topic with
// no config here was created on the master since the last copy: copy now,
// not up to slaveSyncInterval later, so that a master dying in between
// leaves the config on this slave (docs/replication.md, "Promoting a slave").
func (s *slaveSyncer) replicated(topic string) {
	if s.b.topics.has(topic) || isSystemTopic(topic) {
		return
	}
	s.askedMu.Lock()
	_, done := s.asked[topic]
	if !done {
		s.asked[topic] = struct{}{}
	}
	s.askedMu.Unlock()
	if !done {
		s.kick()
	}
}

func newSlaveSyncer(b *Broker) *slaveSyncer {
	if n, err := b.offsets.loadUnconfirmed(); err != nil {
		b.log.Warn().Err(err).Msg("consumer offsets committed on this slave before its restart: unreadable; " +
			"they stay as committed here but are not given back to the master")
	} else if n > 0 {
		b.log.Info().Int("queues", n).Msg("consumer offsets committed on this slave before its restart are not confirmed by the master yet; they will be given back")
	}
	return &slaveSyncer{b: b, wake: make(chan struct{}, 1), asked: map[string]struct{}{}}
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
		s.persistUnconfirmed()
		select {
		case <-stop:
			s.persistUnconfirmed()
			return
		case <-t.C:
			s.forgetAsked()
		case <-s.wake:
		}
	}
}

func (s *slaveSyncer) forgetAsked() {
	s.askedMu.Lock()
	clear(s.asked)
	s.askedMu.Unlock()
}

// call is one request to the master, abandoned when the broker stops: a
// master that hangs (SIGSTOP, a partition) must not hold up the stop for a
// timeout per request of a round.
func (s *slaveSyncer) call(addr string, req *remoting.Command) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return s.b.nsClient.Invoke(ctx, addr, req)
}

func (s *slaveSyncer) invoke(addr string, code int16) ([]byte, error) {
	resp, err := s.call(addr, remoting.NewRequest(code, nil, nil))
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
		s.forgetAsked() // the next record of an unknown topic asks again
	} else if err := b.topics.replaceFromMaster(data); err != nil {
		warn("topic configs", err)
		s.forgetAsked()
	}
	s.syncOffsets(addr, warn)
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

// syncOffsets copies the master's consumer offsets and gives back those
// clients committed here that the master is behind on.
func (s *slaveSyncer) syncOffsets(addr string, warn func(string, error)) {
	data, err := s.invoke(addr, remoting.GetAllConsumerOffset)
	if err != nil {
		warn("consumer offsets", err)
		return
	}
	push, err := s.b.offsets.mergeFromMaster(data)
	if err != nil {
		warn("consumer offsets", err)
	}
	if len(push) > 0 {
		s.pushOffsets(addr, push)
	}
}

// offsetPush is an offset committed on this slave that the master is behind on.
type offsetPush struct {
	key    offsetKey
	offset int64
}

// mergeFromMaster puts the master's offsets over the local ones, except where
// a client committed a higher offset here that the master has not confirmed:
// those keep the local value and are returned, to be pushed to the master.
// Unconfirmed queues the master has caught up with are confirmed.
func (m *ConsumerOffsetManager) mergeFromMaster(data []byte) ([]offsetPush, error) {
	t, err := body.DecodeConsumerOffsetTable(data)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var push []offsetPush
	m.mu.Lock()
	for key, qs := range t.OffsetTable {
		topic, group, ok := strings.Cut(key, "@")
		if !ok {
			continue
		}
		for q, off := range qs {
			k := offsetKey{topic, group, q}
			cur, have := m.table[k]
			if _, ok := m.unconfirmed[k]; ok {
				if have && cur > off {
					push = append(push, offsetPush{k, cur})
					continue
				}
				delete(m.unconfirmed, k) // confirmed, or the master moved past it
				m.unconfirmedChanges++
			}
			if !have || cur != off {
				m.table[k] = off
				m.changes++
			}
		}
	}
	for k := range m.unconfirmed {
		if _, known := t.OffsetTable[k.topic+"@"+k.group][k.queueID]; known {
			continue // decided above
		}
		cur, have := m.table[k]
		if !have { // its topic or group was deleted here since
			delete(m.unconfirmed, k)
			m.unconfirmedChanges++
			continue
		}
		push = append(push, offsetPush{k, cur})
	}
	m.mu.Unlock()
	return push, m.Persist()
}

// pushOffsets sends the master, as UPDATE_CONSUMER_OFFSET with the header a
// client sends, each offset committed here that it is behind on. They stay
// unconfirmed until a later round reads them back from the master's table.
// Failures are logged once for the round; the next round retries.
func (s *slaveSyncer) pushOffsets(addr string, push []offsetPush) {
	log := s.b.log
	sent, rejected := 0, 0
	var firstReject *remoteError
	var firstKey offsetKey
	for i, p := range push {
		resp, err := s.call(addr, remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{
			"consumerGroup": p.key.group,
			"topic":         p.key.topic,
			"queueId":       strconv.FormatInt(int64(p.key.queueID), 10),
			"commitOffset":  strconv.FormatInt(p.offset, 10),
		}, nil))
		if err != nil {
			// The master went away again: the rest waits for the next round.
			log.Warn().Err(err).Str("master", addr).Int("pushed", sent).Int("pending", len(push)-i).
				Msg("slave synchronize: giving consumer offsets committed on this slave back to the master failed; retried next round")
			return
		}
		if resp.Code != remoting.Success {
			if rejected == 0 {
				firstReject, firstKey = &remoteError{resp.Code, resp.Remark}, p.key
			}
			rejected++
			continue
		}
		sent++
	}
	if rejected > 0 {
		log.Warn().Err(firstReject).Str("master", addr).Int("rejected", rejected).
			Str("first", firstKey.topic+"@"+firstKey.group+"/"+strconv.FormatInt(int64(firstKey.queueID), 10)).
			Msg("slave synchronize: the master rejected consumer offsets committed on this slave; they stay unconfirmed and are pushed again next round")
	}
	if sent > 0 {
		log.Info().Str("master", addr).Int("queues", sent).
			Msg("slave synchronize: consumer offsets committed on this slave given back to the master")
	}
}

// commitClientOffset stores a client's UPDATE_CONSUMER_OFFSET. On a slave the
// queue is also remembered as unconfirmed until the master shows the offset.
func (b *Broker) commitClientOffset(group, topic string, queueID int32, offset int64) {
	if h := b.ha; h == nil || h.Role() != storage.RoleSlave || offset < 0 {
		b.offsets.Commit(group, topic, queueID, offset)
		return
	}
	m := b.offsets
	k := offsetKey{topic, group, queueID}
	m.mu.Lock()
	if old, ok := m.table[k]; !ok || old != offset {
		m.table[k] = offset
		m.changes++
		m.unconfirmedChanges++
	}
	if m.unconfirmed == nil {
		m.unconfirmed = make(map[offsetKey]struct{})
	}
	if _, ok := m.unconfirmed[k]; !ok {
		m.unconfirmed[k] = struct{}{}
		m.unconfirmedChanges++
	}
	m.mu.Unlock()
}

// unconfirmedOffsetFile holds, on a slave, the offsets of the unconfirmed
// queues (consumerOffset.json's format), so that they survive a restart.
const unconfirmedOffsetFile = "consumerOffsetUnconfirmed.json"

// persistUnconfirmed writes the unconfirmed offsets when they changed.
func (s *slaveSyncer) persistUnconfirmed() {
	if err := s.b.offsets.persistUnconfirmed(); err != nil {
		s.b.log.Error().Err(err).Msg("persist consumer offsets not confirmed by the master")
	}
}

func (m *ConsumerOffsetManager) persistUnconfirmed() error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	t := &body.ConsumerOffsetTable{OffsetTable: make(map[string]map[int32]int64)}
	m.mu.RLock()
	changes := m.unconfirmedChanges
	if changes == m.unconfirmedSaved {
		m.mu.RUnlock()
		return nil
	}
	for k := range m.unconfirmed {
		key := k.topic + "@" + k.group
		if t.OffsetTable[key] == nil {
			t.OffsetTable[key] = make(map[int32]int64, 4)
		}
		t.OffsetTable[key][k.queueID] = m.table[k]
	}
	m.mu.RUnlock()
	if err := writeFileSafe(filepath.Join(m.b.configDir, unconfirmedOffsetFile), t.AppendFastjson(nil, true)); err != nil {
		return err
	}
	m.unconfirmedSaved = changes
	return nil
}

// loadUnconfirmed reads the unconfirmed offsets a slave saved before a
// restart; each one raises the committed offset it may have been saved after.
func (m *ConsumerOffsetManager) loadUnconfirmed() (int, error) {
	n := 0
	_, _, err := loadFileWithBak(filepath.Join(m.b.configDir, unconfirmedOffsetFile), func(data []byte) error {
		t, err := body.DecodeConsumerOffsetTable(data)
		if err != nil {
			return err
		}
		var keys []offsetPush
		for key, qs := range t.OffsetTable {
			topic, group, ok := strings.Cut(key, "@")
			if !ok {
				return fmt.Errorf("key %q is not <topic>@<group>", key)
			}
			for q, off := range qs {
				keys = append(keys, offsetPush{offsetKey{topic, group, q}, off})
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.unconfirmed == nil {
			m.unconfirmed = make(map[offsetKey]struct{}, len(keys))
		}
		for _, p := range keys {
			if cur, ok := m.table[p.key]; !ok || cur < p.offset {
				m.table[p.key] = p.offset
				m.changes++
			}
			m.unconfirmed[p.key] = struct{}{}
		}
		n = len(keys)
		return nil
	})
	return n, err
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
