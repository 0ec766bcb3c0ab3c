package namesrv

import (
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// Channel is the connection a broker registered over. The route table keeps it
// to find the broker when the connection closes, and closes it when the broker
// expires. *remoting.Conn implements it.
type Channel interface{ Close() error }

// liveBroker is a brokerLiveTable entry: when the broker last registered, the
// topic-config version it reported, and where it did so from.
type liveBroker struct {
	lastUpdate   time.Time // monotonic: wall-clock jumps do not expire brokers
	dataVersion  body.DataVersion
	channel      Channel
	haServerAddr string
	cluster      string
	brokerName   string
	brokerID     int64
}

// RouteTable is the name server's route state (Java's RouteInfoManager): topics
// to queue data, broker groups and their member addresses, clusters, and live
// brokers. It lives in memory only and is rebuilt from registrations. One
// RWMutex guards every table, so each request sees a consistent state.
type RouteTable struct {
	mu sync.RWMutex
	// topics maps a topic to one QueueData per broker group, sorted by broker
	// name so routes come out in a stable order without sorting per request.
	topics   map[string][]body.QueueData
	brokers  map[string]*body.BrokerData    // brokerName -> group
	clusters map[string]map[string]struct{} // clusterName -> brokerNames
	live     map[string]*liveBroker         // brokerAddr -> liveness
	filters  map[string][]string            // brokerAddr -> filter servers (legacy)

	log zerolog.Logger
}

// NewRouteTable returns an empty table logging broker membership changes to log.
func NewRouteTable(log zerolog.Logger) *RouteTable {
	return &RouteTable{
		topics:   map[string][]body.QueueData{},
		brokers:  map[string]*body.BrokerData{},
		clusters: map[string]map[string]struct{}{},
		live:     map[string]*liveBroker{},
		filters:  map[string][]string{},
		log:      log,
	}
}

// Registration is one REGISTER_BROKER request.
type Registration struct {
	Cluster       string
	BrokerName    string
	BrokerAddr    string
	BrokerID      int64
	HAServerAddr  string
	Topics        body.TopicConfigSerializeWrapper
	FilterServers []string
	Channel       Channel
}

// RegisterResult is what a registering broker is told.
type RegisterResult struct {
	// MasterAddr and HAServerAddr are the group master's addresses, for a slave
	// registration whose master is registered and alive; empty otherwise.
	MasterAddr   string
	HAServerAddr string
	// New is true when the address was not live before (first registration, or
	// back after expiry or a closed connection).
	New bool
}

// Register applies a broker registration (Java's registerBroker): the group and
// cluster membership, the queue data of its topics when it is the master and its
// topic config changed (or it is new), and its liveness.
func (t *RouteTable) Register(r Registration, now time.Time) RegisterResult {
	t.mu.Lock()
	defer t.mu.Unlock()

	names := t.clusters[r.Cluster]
	if names == nil {
		names = map[string]struct{}{}
		t.clusters[r.Cluster] = names
	}
	names[r.BrokerName] = struct{}{}

	registerFirst := false
	bd := t.brokers[r.BrokerName]
	if bd == nil {
		registerFirst = true
		bd = &body.BrokerData{Cluster: r.Cluster, BrokerName: r.BrokerName, BrokerAddrs: map[int64]string{}}
		t.brokers[r.BrokerName] = bd
	}
	// One address holds one id: a broker that switched role (slave re-registering
	// as master) drops its old id first.
	for id, addr := range bd.BrokerAddrs {
		if addr == r.BrokerAddr && id != r.BrokerID {
			delete(bd.BrokerAddrs, id)
			t.log.Info().Str("cluster", r.Cluster).Str("brokerName", r.BrokerName).Str("brokerAddr", r.BrokerAddr).
				Int64("oldBrokerId", id).Int64("brokerId", r.BrokerID).Msg("broker changed id")
		}
	}
	if old, ok := bd.BrokerAddrs[r.BrokerID]; ok && old != r.BrokerAddr {
		// Controller mode: a deposed master that cannot hear of its
		// successor keeps registering as master; the one of the newer
		// master epoch keeps the id (RocketMQ 5's stateVersion rule).
		if ob := t.live[old]; ob != nil && ob.dataVersion.StateVersion > r.Topics.DataVersion.StateVersion {
			t.log.Warn().Str("cluster", r.Cluster).Str("brokerName", r.BrokerName).Int64("brokerId", r.BrokerID).
				Str("brokerAddr", old).Int64("stateVersion", ob.dataVersion.StateVersion).
				Str("refusedAddr", r.BrokerAddr).Int64("refusedStateVersion", r.Topics.DataVersion.StateVersion).
				Msg("registration refused: another broker holds this id with a newer master epoch")
			delete(t.live, r.BrokerAddr)
			return RegisterResult{}
		}
	}
	if old, ok := bd.BrokerAddrs[r.BrokerID]; !ok {
		registerFirst = true
	} else if old != r.BrokerAddr {
		t.log.Info().Str("cluster", r.Cluster).Str("brokerName", r.BrokerName).Int64("brokerId", r.BrokerID).
			Str("oldBrokerAddr", old).Str("brokerAddr", r.BrokerAddr).Msg("broker address replaced")
	}
	bd.BrokerAddrs[r.BrokerID] = r.BrokerAddr

	prev := t.live[r.BrokerAddr]
	if r.BrokerID == body.MasterID && (registerFirst || prev == nil || prev.dataVersion != r.Topics.DataVersion) {
		for name, tc := range r.Topics.TopicConfigTable {
			if tc.TopicName == "" {
				tc.TopicName = name
			}
			t.putQueueDataLocked(r.BrokerName, &tc)
		}
	}

	t.live[r.BrokerAddr] = &liveBroker{
		lastUpdate:   now,
		dataVersion:  r.Topics.DataVersion,
		channel:      r.Channel,
		haServerAddr: r.HAServerAddr,
		cluster:      r.Cluster,
		brokerName:   r.BrokerName,
		brokerID:     r.BrokerID,
	}
	if len(r.FilterServers) == 0 {
		delete(t.filters, r.BrokerAddr)
	} else {
		t.filters[r.BrokerAddr] = append([]string(nil), r.FilterServers...)
	}

	res := RegisterResult{New: prev == nil}
	if r.BrokerID != body.MasterID {
		if master, ok := bd.BrokerAddrs[body.MasterID]; ok {
			if ml := t.live[master]; ml != nil {
				res.MasterAddr = master
				res.HAServerAddr = ml.haServerAddr
			}
		}
	}
	return res
}

// putQueueDataLocked sets a topic's queue data for one broker group.
func (t *RouteTable) putQueueDataLocked(brokerName string, tc *body.TopicConfig) {
	qd := body.QueueData{
		BrokerName:     brokerName,
		ReadQueueNums:  tc.ReadQueueNums,
		WriteQueueNums: tc.WriteQueueNums,
		Perm:           tc.Perm,
		TopicSysFlag:   tc.TopicSysFlag,
	}
	qds := t.topics[tc.TopicName]
	i := sort.Search(len(qds), func(i int) bool { return qds[i].BrokerName >= brokerName })
	switch {
	case i < len(qds) && qds[i].BrokerName == brokerName:
		if qds[i] != qd {
			t.log.Debug().Str("topic", tc.TopicName).Str("brokerName", brokerName).Msg("topic queue data changed")
		}
		qds[i] = qd
	default:
		if len(qds) == 0 {
			t.log.Debug().Str("topic", tc.TopicName).Str("brokerName", brokerName).Msg("new topic registered")
		}
		qds = append(qds, body.QueueData{})
		copy(qds[i+1:], qds[i:])
		qds[i] = qd
		t.topics[tc.TopicName] = qds
	}
}

// Unregister removes one broker (UNREGISTER_BROKER, sent on a clean shutdown).
// It reports whether the broker was known.
func (t *RouteTable) Unregister(cluster, brokerName, brokerAddr string, brokerID int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, wasLive := t.live[brokerAddr]
	delete(t.live, brokerAddr)
	delete(t.filters, brokerAddr)
	known := wasLive
	if bd := t.brokers[brokerName]; bd != nil {
		if addr, ok := bd.BrokerAddrs[brokerID]; ok && addr == brokerAddr {
			known = true
		}
		// Java removes the id whatever address it maps to; so do we.
		delete(bd.BrokerAddrs, brokerID)
		if len(bd.BrokerAddrs) == 0 {
			delete(t.brokers, brokerName)
			t.removeBrokerNameLocked(cluster, brokerName)
		}
	}
	return known
}

// removeBrokerNameLocked drops an emptied broker group from its cluster and from
// every topic; topics left without queues vanish.
func (t *RouteTable) removeBrokerNameLocked(cluster, brokerName string) {
	if names := t.clusters[cluster]; names != nil {
		delete(names, brokerName)
		if len(names) == 0 {
			delete(t.clusters, cluster)
		}
	}
	for topic, qds := range t.topics {
		for i := range qds {
			if qds[i].BrokerName == brokerName {
				qds = append(qds[:i], qds[i+1:]...)
				break
			}
		}
		if len(qds) == 0 {
			delete(t.topics, topic)
			t.log.Debug().Str("topic", topic).Str("brokerName", brokerName).Msg("topic removed with its last broker")
		} else {
			t.topics[topic] = qds
		}
	}
}

// RemovedBroker describes a broker dropped because its connection closed or it
// stopped registering.
type RemovedBroker struct {
	Cluster    string
	BrokerName string
	BrokerAddr string
	BrokerID   int64
	Channel    Channel
}

// RemoveChannel drops every broker that registered over ch (Java's
// onChannelDestroy), as unregistering would.
func (t *RouteTable) RemoveChannel(ch Channel) []RemovedBroker {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []RemovedBroker
	for addr, lb := range t.live {
		if lb.channel == ch {
			out = append(out, t.removeAddrLocked(addr, lb))
		}
	}
	return out
}

// ScanNotActive drops brokers whose last registration is older than ttl and
// returns them; the caller closes their channels (not under the lock, since a
// close hook may call RemoveChannel).
func (t *RouteTable) ScanNotActive(now time.Time, ttl time.Duration) []RemovedBroker {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []RemovedBroker
	for addr, lb := range t.live {
		if now.Sub(lb.lastUpdate) > ttl {
			out = append(out, t.removeAddrLocked(addr, lb))
		}
	}
	return out
}

// removeAddrLocked removes a live broker address from every group it appears in.
func (t *RouteTable) removeAddrLocked(addr string, lb *liveBroker) RemovedBroker {
	delete(t.live, addr)
	delete(t.filters, addr)
	for name, bd := range t.brokers {
		for id, a := range bd.BrokerAddrs {
			if a == addr {
				delete(bd.BrokerAddrs, id)
			}
		}
		if len(bd.BrokerAddrs) == 0 {
			delete(t.brokers, name)
			t.removeBrokerNameLocked(bd.Cluster, name)
		}
	}
	return RemovedBroker{Cluster: lb.cluster, BrokerName: lb.brokerName, BrokerAddr: addr, BrokerID: lb.brokerID, Channel: lb.channel}
}

// routeScratch is reused across route encodings so a route costs one
// allocation, its output.
type routeScratch struct {
	route body.TopicRouteData
}

var routePool = sync.Pool{New: func() any { return new(routeScratch) }}

// AppendRoute appends the topic's route JSON to dst. ok is false when the topic
// has no queue data on any registered broker group (TOPIC_NOT_EXIST).
func (t *RouteTable) AppendRoute(dst []byte, topic, orderTopicConf string, keys body.KeyStyle) ([]byte, bool) {
	s := routePool.Get().(*routeScratch)
	defer routePool.Put(s)
	r := &s.route
	r.OrderTopicConf = orderTopicConf
	r.BrokerDatas = r.BrokerDatas[:0]
	r.FilterServerTable = nil

	t.mu.RLock()
	defer t.mu.RUnlock()
	qds := t.topics[topic]
	if len(qds) == 0 {
		return dst, false
	}
	r.QueueDatas = qds
	for i := range qds {
		bd := t.brokers[qds[i].BrokerName]
		if bd == nil {
			continue
		}
		r.BrokerDatas = append(r.BrokerDatas, *bd)
		if len(t.filters) > 0 {
			for _, addr := range bd.BrokerAddrs {
				if fs := t.filters[addr]; len(fs) > 0 {
					if r.FilterServerTable == nil {
						r.FilterServerTable = map[string][]string{}
					}
					r.FilterServerTable[addr] = fs
				}
			}
		}
	}
	if len(r.BrokerDatas) == 0 {
		r.QueueDatas = nil
		return dst, false
	}
	dst = r.AppendJSON(dst, keys)
	// Drop references into the tables before the scratch goes back to the pool.
	r.QueueDatas = nil
	clear(r.BrokerDatas)
	r.FilterServerTable = nil
	return dst, true
}

// Route returns a copy of the topic's route, or nil.
func (t *RouteTable) Route(topic string) *body.TopicRouteData {
	t.mu.RLock()
	defer t.mu.RUnlock()
	qds := t.topics[topic]
	if len(qds) == 0 {
		return nil
	}
	r := &body.TopicRouteData{QueueDatas: append([]body.QueueData(nil), qds...), FilterServerTable: map[string][]string{}}
	for i := range qds {
		if bd := t.brokers[qds[i].BrokerName]; bd != nil {
			r.BrokerDatas = append(r.BrokerDatas, bd.Clone())
			for _, addr := range bd.BrokerAddrs {
				if fs := t.filters[addr]; len(fs) > 0 {
					r.FilterServerTable[addr] = append([]string(nil), fs...)
				}
			}
		}
	}
	if len(r.BrokerDatas) == 0 {
		return nil
	}
	return r
}

// ClusterInfo returns a copy of the broker and cluster tables.
func (t *RouteTable) ClusterInfo() *body.ClusterInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ci := &body.ClusterInfo{
		BrokerAddrTable:  make(map[string]body.BrokerData, len(t.brokers)),
		ClusterAddrTable: make(map[string][]string, len(t.clusters)),
	}
	for name, bd := range t.brokers {
		ci.BrokerAddrTable[name] = bd.Clone()
	}
	for cluster, names := range t.clusters {
		ci.ClusterAddrTable[cluster] = sortedSet(names)
	}
	return ci
}

// Topics returns every topic, sorted.
func (t *RouteTable) Topics() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.topics))
	for topic := range t.topics {
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}

// TopicsByCluster returns the topics with queues on any broker group of cluster.
func (t *RouteTable) TopicsByCluster(cluster string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := []string{}
	names := t.clusters[cluster]
	if len(names) == 0 {
		return out
	}
	for topic, qds := range t.topics {
		for i := range qds {
			if _, ok := names[qds[i].BrokerName]; ok {
				out = append(out, topic)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// TopicsBySysFlag returns the topics whose queue data's system flag satisfies match.
func (t *RouteTable) TopicsBySysFlag(match func(flag int32) bool) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := []string{}
	for topic, qds := range t.topics {
		if len(qds) > 0 && match(qds[0].TopicSysFlag) {
			out = append(out, topic)
		}
	}
	sort.Strings(out)
	return out
}

// SystemTopics returns what GET_SYSTEM_TOPIC_LIST_FROM_NS lists: every cluster
// name and broker name (each is a topic brokers create), and the address of one
// broker to ask for more.
func (t *RouteTable) SystemTopics() (topics []string, brokerAddr string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	seen := map[string]struct{}{}
	for cluster, names := range t.clusters {
		seen[cluster] = struct{}{}
		for name := range names {
			seen[name] = struct{}{}
		}
	}
	topics = sortedSet(seen)
	brokerNames := make([]string, 0, len(t.brokers))
	for name := range t.brokers {
		brokerNames = append(brokerNames, name)
	}
	sort.Strings(brokerNames)
	for _, name := range brokerNames {
		bd := t.brokers[name]
		best := int64(-1)
		for id, addr := range bd.BrokerAddrs {
			if best < 0 || id < best {
				best, brokerAddr = id, addr
			}
		}
		if brokerAddr != "" {
			break
		}
	}
	return topics, brokerAddr
}

// DeleteTopic removes a topic's route (DELETE_TOPIC_IN_NAMESRV); with a cluster,
// only its queue data on that cluster's broker groups. It reports whether
// anything was removed.
func (t *RouteTable) DeleteTopic(topic, cluster string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	qds, ok := t.topics[topic]
	if !ok {
		return false
	}
	if cluster == "" {
		delete(t.topics, topic)
		return true
	}
	names := t.clusters[cluster]
	kept := qds[:0]
	for _, qd := range qds {
		if _, inCluster := names[qd.BrokerName]; !inCluster {
			kept = append(kept, qd)
		}
	}
	removed := len(kept) != len(qds)
	clear(qds[len(kept):])
	if len(kept) == 0 {
		delete(t.topics, topic)
	} else {
		t.topics[topic] = kept
	}
	return removed
}

// WipeWritePerm clears the write bit of a broker group's queues in every topic
// and returns how many topics it touched.
func (t *RouteTable) WipeWritePerm(brokerName string) int {
	return t.operateWritePerm(brokerName, func(p int32) int32 { return p &^ body.PermWrite })
}

// AddWritePerm resets a broker group's queues in every topic to read-write and
// returns how many topics it touched (Java sets exactly R|W).
func (t *RouteTable) AddWritePerm(brokerName string) int {
	return t.operateWritePerm(brokerName, func(int32) int32 { return body.PermRead | body.PermWrite })
}

func (t *RouteTable) operateWritePerm(brokerName string, f func(int32) int32) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, qds := range t.topics {
		for i := range qds {
			if qds[i].BrokerName == brokerName {
				qds[i].Perm = f(qds[i].Perm)
				n++
				break
			}
		}
	}
	return n
}

// QueryDataVersion compares a broker's topic-config version with the stored one
// (QUERY_DATA_VERSION). When unchanged it counts as a heartbeat. It returns the
// stored version, if the broker is live.
func (t *RouteTable) QueryDataVersion(brokerAddr string, dv body.DataVersion, now time.Time) (changed bool, stored *body.DataVersion) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lb := t.live[brokerAddr]
	if lb == nil {
		return true, nil
	}
	if lb.dataVersion == dv {
		lb.lastUpdate = now
		changed = false
	} else {
		changed = true
	}
	v := lb.dataVersion
	return changed, &v
}

// LiveBrokers returns the number of live broker addresses.
func (t *RouteTable) LiveBrokers() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.live)
}

func sortedSet(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
