package broker

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
)

// A broker that starts as a master makes its metadata agree with its store
// before it serves or registers (docs/replication.md, "Promoting a slave").
//
// A slave copies its master's topic configs, subscription groups and offsets
// every slaveSyncInterval, and at once when it replicates a record of a topic
// it has no config for (slave.go); its commit log is copied continuously. So a
// slave restarted as the new master (brokerId=0, a master role, same store)
// can hold records whose config it never received: the master died between
// creating the topic and the slave's next copy. A master whose topics.json was
// lost is in the same state. Without a config the topic is neither registered
// nor readable, and every acknowledged message in it is lost to consumers.
//
// So at start, as a master:
//   - promoted (the previous run of this store was a slave: config/lastRole)
//     or with topics.json lost: every topic with queues in the store and no
//     config gets one (all queues readable and writable, perm RW); promoted,
//     a config with fewer read queues than the store holds is also widened
//     (the slave's copy can predate the master's last updateTopic);
//   - promoted or with subscriptionGroup.json lost: every consumer group with
//     committed offsets or a retry topic in the store and no subscription
//     group gets the default one;
//   - always: every committed offset beyond its queue's end is lowered to the
//     end. A slave's offsets can be ahead of its log (an ASYNC_MASTER's
//     consumers commit what the slave has not received yet), and an ASYNC
//     master's can be ahead of what a crash left; left as they are, the
//     consumer would skip the messages written there next. A lower offset
//     only redelivers.
//
// An ordinary restart of a master with its files does not adopt: a topic
// shrunk with updateTopic keeps its queue counts, and a topic or group
// deleted by an admin stays deleted even if its queues (or, after a crash,
// its re-dispatched records) are still in the store. System topics and
// groups (rmq_sys_*, the schedule and transaction topics, CID_RMQ_SYS_*) are
// the broker's own business and never adopted. Each change is persisted and
// logged as a warning naming the topics or groups.
//
// Delay offsets and the transaction checker's progress are clamped to their
// queues by their own loaders (schedule.go, txcheck.go).
//
// What cannot be rebuilt: a topic's settings other than its queues (order,
// filter type, flags, a narrower perm) revert to defaults, and a topic
// deleted on the old master whose queues remain on the slave comes back
// (RocketMQ's slaves keep a deleted topic's queues too); the warning names
// both kinds.

// lastRoleFile records, in the config directory, the role of the latest run
// of this store: a master whose previous run was a slave was promoted.
const lastRoleFile = "lastRole"

// previousRole is the role of the store's previous run ("" when unknown:
// an older store, or the first run).
func (b *Broker) previousRole() string {
	data, err := os.ReadFile(filepath.Join(b.configDir, lastRoleFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// adoptStore runs the checks above and records this run's role; a slave
// adopts nothing (its tables are its master's, and slaveTopicConfig serves
// what they lack).
func (b *Broker) adoptStore() {
	role := ""
	if h := b.ha; h != nil {
		role = h.Role()
	}
	if role != storage.RoleSlave {
		promoted := b.previousRole() == storage.RoleSlave
		if promoted {
			b.log.Warn().Msg("this store was last run by a slave: adopting what it replicated (docs/replication.md, \"Promoting a slave\")")
		}
		if promoted || !b.topics.loaded {
			b.adoptTopics(promoted)
		}
		if promoted || !b.subGroups.loaded {
			b.adoptGroups()
		}
		b.clampOffsets()
	}
	if role != "" {
		if err := writeFileSafe(filepath.Join(b.configDir, lastRoleFile), []byte(role+"\n")); err != nil {
			b.log.Warn().Err(err).Msg("record this run's role")
		}
	}
}

// queueCount is how many queues a topic needs to expose every queue the store has.
func queueCount(ids []int32) int32 {
	n := int32(0)
	for _, id := range ids {
		n = max(n, id+1)
	}
	return n
}

func (b *Broker) adoptTopics(widen bool) {
	need := map[string]int32{}
	for _, topic := range b.store.Topics() {
		if isSystemTopic(topic) {
			continue
		}
		if validateTopic(topic) != nil {
			b.log.Warn().Str("topic", topic).Msg("the store has queues of a topic with an invalid name; left unserved")
			continue
		}
		if n := queueCount(b.store.QueueIDs(topic)); n > 0 {
			need[topic] = n
		}
	}
	created, widened := b.topics.adopt(need, widen)
	if len(created) > 0 {
		b.log.Warn().Strs("topics", created).
			Msg("topics in the store had no config (created shortly before a promoted slave's master died, or topics.json lost): " +
				"configs rebuilt from their queues with default settings; check them (mqadmin topicList / updateTopic)")
	}
	if len(widened) > 0 {
		b.log.Warn().Strs("topics", widened).
			Msg("topic configs had fewer read queues than the store holds: widened so that every stored queue is readable")
	}
}

// adopt gives every topic of need without a config one with that many
// queues and, with widen, raises the read queues of a config with fewer; it
// returns the topics it created and those it widened.
func (m *TopicConfigManager) adopt(need map[string]int32, widen bool) (created, widened []string) {
	m.mu.Lock()
	for topic, n := range need {
		tc, ok := m.table[topic]
		switch {
		case !ok:
			m.table[topic] = body.NewTopicConfig(topic, n, n, body.PermRead|body.PermWrite)
			created = append(created, topic)
		case widen && tc.ReadQueueNums < n:
			tc.ReadQueueNums = n
			m.table[topic] = tc
			widened = append(widened, topic)
		}
	}
	if len(created)+len(widened) > 0 {
		m.version.Next()
	}
	m.mu.Unlock()
	if len(created)+len(widened) > 0 {
		slices.Sort(created)
		slices.Sort(widened)
		m.changed()
	}
	return created, widened
}

func (b *Broker) adoptGroups() {
	groups := map[string]struct{}{}
	for _, k := range b.offsets.keys() {
		if !strings.HasPrefix(k.group, sysGroupPrefix) {
			groups[k.group] = struct{}{}
		}
	}
	for _, topic := range b.store.Topics() {
		if g, ok := strings.CutPrefix(topic, retryTopicPrefix); ok {
			groups[g] = struct{}{}
		}
	}
	if added := b.subGroups.adopt(groups); len(added) > 0 {
		b.log.Warn().Strs("groups", added).
			Msg("consumer groups with offsets or retry messages here had no subscription group: created with default settings")
	}
}

// adopt creates the default config of every valid group in groups that has none.
func (m *SubscriptionGroupManager) adopt(groups map[string]struct{}) []string {
	var added []string
	m.mu.Lock()
	for g := range groups {
		if _, ok := m.table[g]; ok || validateGroup(g) != nil {
			continue
		}
		m.table[g] = body.NewSubscriptionGroupConfig(g)
		added = append(added, g)
	}
	if len(added) > 0 {
		m.version.Next()
	}
	m.mu.Unlock()
	if len(added) > 0 {
		slices.Sort(added)
		if err := m.persist(); err != nil {
			m.b.log.Error().Err(err).Msg("persist subscription groups")
		}
	}
	return added
}

func (b *Broker) clampOffsets() {
	lowered := b.offsets.clampTo(b.store.MaxOffset)
	if len(lowered) == 0 {
		return
	}
	first := lowered[0]
	b.log.Warn().Int("queues", len(lowered)).
		Str("first", first.key.topic+"@"+first.key.group+"/"+strconv.FormatInt(int64(first.key.queueID), 10)).Int64("firstOffset", first.offset).
		Msg("committed consumer offsets beyond the end of their queues (copied from a master ahead of this store) lowered to the end: " +
			"those consumers may get some messages again, and skip none")
	if err := b.offsets.Persist(); err != nil {
		b.log.Error().Err(err).Msg("persist consumer offsets")
	}
}

// keys lists the queues with committed offsets.
func (m *ConsumerOffsetManager) keys() []offsetKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]offsetKey, 0, len(m.table))
	for k := range m.table {
		out = append(out, k)
	}
	return out
}

// clampTo lowers every offset above its queue's end (maxOffset) to the end
// and returns the offsets as they were, sorted.
func (m *ConsumerOffsetManager) clampTo(maxOffset func(topic string, queueID int32) int64) []offsetPush {
	var lowered []offsetPush
	m.mu.Lock()
	for k, off := range m.table {
		if end := maxOffset(k.topic, k.queueID); off > end {
			lowered = append(lowered, offsetPush{k, off})
			m.table[k] = end
			m.changes++
		}
	}
	m.mu.Unlock()
	slices.SortFunc(lowered, func(a, b offsetPush) int {
		return cmp.Or(strings.Compare(a.key.topic, b.key.topic), strings.Compare(a.key.group, b.key.group), cmp.Compare(a.key.queueID, b.key.queueID))
	})
	return lowered
}
