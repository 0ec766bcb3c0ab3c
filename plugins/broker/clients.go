package broker

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// SubscriptionData is a consumer group's subscription to one topic, as registered
// by heartbeat. Values are immutable once registered: a newer subscription
// replaces the pointer, so callers may keep and read one without locks.
type SubscriptionData struct {
	Topic     string
	SubString string // "*" for everything
	TagsSet   []string
	// CodeSet holds the Java hash (message.TagsHashCode) of each tag, computed by
	// the broker from TagsSet rather than taken from the client: the Go client
	// sends them as strings, Java as numbers, and neither is trusted.
	CodeSet         map[int64]struct{}
	SubVersion      int64  // ms (Java) or ns (Go client); only compared
	ExpressionType  string // TAG or SQL92
	ClassFilterMode bool
}

// SubAll reports whether the subscription takes every message of the topic.
func (s *SubscriptionData) SubAll() bool { return s.SubString == body.SubAll }

// IsTagType reports whether the subscription filters by tag (an empty type is TAG).
func (s *SubscriptionData) IsTagType() bool {
	return s.ExpressionType == "" || s.ExpressionType == body.ExpressionTag
}

// MatchTagsCode reports whether a consume-queue tags code passes the
// subscription; codes compare as 32-bit values, as Java's Integer set does.
// Other expression types (SQL92) are decided on the record, so every code passes.
func (s *SubscriptionData) MatchTagsCode(code int64) bool {
	if s.SubAll() || !s.IsTagType() {
		return true
	}
	_, ok := s.CodeSet[int64(int32(code))]
	return ok
}

// newSubscriptionData converts a heartbeat subscription. For TAG subscriptions
// the tags are taken from tagsSet, or parsed from subString ("a || b") when the
// set is empty, and hashed here.
func newSubscriptionData(w *body.SubscriptionData) *SubscriptionData {
	s := &SubscriptionData{
		Topic:           w.Topic,
		SubString:       strings.TrimSpace(w.SubString),
		SubVersion:      w.SubVersion,
		ExpressionType:  w.ExpressionType,
		ClassFilterMode: w.ClassFilterMode,
	}
	if !s.IsTagType() {
		s.TagsSet = slices.Clone(w.TagsSet)
		return s
	}
	if s.SubString == "" || s.SubString == body.SubAll {
		s.SubString = body.SubAll
		return s
	}
	tags := w.TagsSet
	if len(tags) == 0 {
		tags = strings.Split(s.SubString, "||")
	}
	s.CodeSet = make(map[int64]struct{}, len(tags))
	for _, t := range tags {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(s.TagsSet, t) {
			s.TagsSet = append(s.TagsSet, t)
			s.CodeSet[int64(int32(message.TagsHashCode(t)))] = struct{}{}
		}
	}
	return s
}

// wire converts back to the JSON form (consumer connection lists).
func (s *SubscriptionData) wire() body.SubscriptionData {
	w := body.SubscriptionData{
		ClassFilterMode: s.ClassFilterMode, Topic: s.Topic, SubString: s.SubString,
		TagsSet: s.TagsSet, SubVersion: s.SubVersion, ExpressionType: s.ExpressionType,
		CodeSet: make(body.CodeSet, 0, len(s.CodeSet)),
	}
	if w.TagsSet == nil {
		w.TagsSet = []string{}
	}
	for c := range s.CodeSet {
		w.CodeSet = append(w.CodeSet, c)
	}
	slices.Sort(w.CodeSet)
	return w
}

// ClientChannelInfo is one client connection of a group.
type ClientChannelInfo struct {
	Conn     *remoting.Conn
	ClientID string
	Language remoting.LanguageCode
	Version  int16
}

// ConsumerGroupInfo is a read-only snapshot of a consumer group, rebuilt when
// the group changes; ClientManager.ConsumerGroup returns it without copying.
type ConsumerGroupInfo struct {
	Group            string
	ConsumeType      string // CONSUME_PASSIVELY (push) / CONSUME_ACTIVELY (pull)
	MessageModel     string // CLUSTERING / BROADCASTING
	ConsumeFromWhere string
	ClientIDs        []string // distinct, sorted
	Channels         []ClientChannelInfo
	Subscriptions    map[string]*SubscriptionData // by topic
}

// clientChannel is the registry's mutable record of a connection in a group.
type clientChannel struct {
	ClientChannelInfo
	lastUpdate time.Time
}

type consumerGroup struct {
	consumeType, messageModel, consumeFromWhere string
	channels                                    map[uint64]*clientChannel // by conn ID
	subs                                        map[string]*SubscriptionData
	info                                        *ConsumerGroupInfo
}

// rebuild refreshes the snapshot after a change.
func (g *consumerGroup) rebuild(name string) {
	info := &ConsumerGroupInfo{
		Group: name, ConsumeType: g.consumeType, MessageModel: g.messageModel,
		ConsumeFromWhere: g.consumeFromWhere, Subscriptions: maps.Clone(g.subs),
	}
	for _, ch := range g.channels {
		info.Channels = append(info.Channels, ch.ClientChannelInfo)
		if !slices.Contains(info.ClientIDs, ch.ClientID) {
			info.ClientIDs = append(info.ClientIDs, ch.ClientID)
		}
	}
	sort.Strings(info.ClientIDs)
	sort.Slice(info.Channels, func(i, j int) bool { return info.Channels[i].Conn.ID() < info.Channels[j].Conn.ID() })
	g.info = info
}

// ClientManager is the registry of connected producers and consumers, fed by
// heartbeats and emptied by connection close, UNREGISTER_CLIENT and expiry.
// Consumers of a group are told (NOTIFY_CONSUMER_IDS_CHANGED) when the group's
// members or subscriptions change, so they rebalance at once.
type ClientManager struct {
	b *Broker

	mu        sync.RWMutex
	consumers map[string]*consumerGroup
	producers map[string]map[uint64]*clientChannel // group -> conn ID -> channel

	now func() time.Time
}

func newClientManager(b *Broker) *ClientManager {
	return &ClientManager{
		b:         b,
		consumers: make(map[string]*consumerGroup),
		producers: make(map[string]map[uint64]*clientChannel),
		now:       time.Now,
	}
}

// FindSubscription returns a group's registered subscription of a topic.
func (m *ClientManager) FindSubscription(group, topic string) (*SubscriptionData, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil, false
	}
	s, ok := g.subs[topic]
	return s, ok
}

// ConsumerGroup returns the snapshot of an online consumer group.
func (m *ClientManager) ConsumerGroup(group string) (*ConsumerGroupInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil, false
	}
	return g.info, true
}

// ConsumerGroups lists the online consumer groups, sorted.
func (m *ClientManager) ConsumerGroups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.consumers))
}

// ProducerConns returns the connections of a producer group (transaction
// check-backs pick one).
func (m *ClientManager) ProducerConns(group string) []*remoting.Conn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	chs := m.producers[group]
	out := make([]*remoting.Conn, 0, len(chs))
	for _, ch := range chs {
		out = append(out, ch.Conn)
	}
	return out
}

// producerChannels returns a producer group's channels, sorted by connection.
func (m *ClientManager) producerChannels(group string) []ClientChannelInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	chs := m.producers[group]
	out := make([]ClientChannelInfo, 0, len(chs))
	for _, ch := range chs {
		out = append(out, ch.ClientChannelInfo)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Conn.ID() < out[j].Conn.ID() })
	return out
}

// RegisterProducer records a producer group's connection.
func (m *ClientManager) RegisterProducer(group string, ch ClientChannelInfo) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	chs := m.producers[group]
	if chs == nil {
		chs = make(map[uint64]*clientChannel, 2)
		m.producers[group] = chs
	}
	if c := chs[ch.Conn.ID()]; c != nil {
		c.ClientChannelInfo = ch
		c.lastUpdate = now
		return
	}
	chs[ch.Conn.ID()] = &clientChannel{ClientChannelInfo: ch, lastUpdate: now}
}

// UnregisterProducer removes a producer group's connection.
func (m *ClientManager) UnregisterProducer(group string, conn *remoting.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if chs := m.producers[group]; chs != nil {
		delete(chs, conn.ID())
		if len(chs) == 0 {
			delete(m.producers, group)
		}
	}
}

// RegisterConsumer records a consumer connection and the group's subscriptions
// (RocketMQ's ConsumerManager.registerConsumer): it reports whether the group's
// members or subscribed topics changed, and then, when notify is set, tells
// every member to rebalance.
func (m *ClientManager) RegisterConsumer(group string, ch ClientChannelInfo, consumeType, messageModel, consumeFromWhere string, subs []*SubscriptionData, notify bool) bool {
	now := m.now()
	m.mu.Lock()
	g := m.consumers[group]
	if g == nil {
		g = &consumerGroup{channels: make(map[uint64]*clientChannel, 4), subs: make(map[string]*SubscriptionData, len(subs))}
		m.consumers[group] = g
	}
	changed := false // members or topics changed: notify
	rebuild := g.info == nil
	if c := g.channels[ch.Conn.ID()]; c == nil {
		g.channels[ch.Conn.ID()] = &clientChannel{ClientChannelInfo: ch, lastUpdate: now}
		changed = true
	} else {
		if c.ClientID != ch.ClientID {
			m.b.log.Warn().Str("group", group).Str("old", c.ClientID).Str("new", ch.ClientID).
				Str("addr", remoteAddrString(ch.Conn)).Msg("connection changed its client ID")
			changed = true
		}
		if c.ClientChannelInfo != ch {
			c.ClientChannelInfo = ch
			rebuild = true
		}
		c.lastUpdate = now
	}
	if g.consumeType != consumeType || g.messageModel != messageModel || g.consumeFromWhere != consumeFromWhere {
		g.consumeType, g.messageModel, g.consumeFromWhere = consumeType, messageModel, consumeFromWhere
		rebuild = true
	}
	// Subscriptions are per group (as in Java): a newer version replaces the
	// old one, and topics the heartbeat no longer lists are dropped.
	for _, s := range subs {
		old := g.subs[s.Topic]
		if old == nil {
			g.subs[s.Topic] = s
			changed = true
		} else if s.SubVersion > old.SubVersion {
			g.subs[s.Topic] = s
			rebuild = true
		}
	}
	for topic := range g.subs {
		if !slices.ContainsFunc(subs, func(s *SubscriptionData) bool { return s.Topic == topic }) {
			delete(g.subs, topic)
			changed = true
		}
	}
	if changed || rebuild {
		g.rebuild(group)
	}
	info := g.info
	m.mu.Unlock()
	if changed && notify {
		m.notifyIDsChanged(group, info.Channels)
	}
	return changed
}

// UnregisterConsumer removes a consumer connection from a group
// (UNREGISTER_CLIENT) and tells the remaining members when notify is set.
func (m *ClientManager) UnregisterConsumer(group string, conn *remoting.Conn, notify bool) {
	m.mu.Lock()
	info := m.removeConsumerLocked(group, conn.ID())
	m.mu.Unlock()
	if info != nil && notify {
		m.notifyIDsChanged(group, info.Channels)
	}
}

// removeConsumerLocked drops a connection from a group and returns the group's
// new snapshot when members remain to be told, or nil.
func (m *ClientManager) removeConsumerLocked(group string, connID uint64) *ConsumerGroupInfo {
	g := m.consumers[group]
	if g == nil || g.channels[connID] == nil {
		return nil
	}
	delete(g.channels, connID)
	if len(g.channels) == 0 {
		delete(m.consumers, group)
		m.b.log.Info().Str("group", group).Msg("consumer group offline")
		return nil
	}
	g.rebuild(group)
	return g.info
}

// OnConnClose drops a closed connection from every group and notifies the
// remaining consumers of the groups it belonged to.
func (m *ClientManager) OnConnClose(c *remoting.Conn) {
	m.removeConn(c.ID())
}

type groupNotice struct {
	group    string
	channels []ClientChannelInfo
}

func (m *ClientManager) removeConn(id uint64) {
	var notices []groupNotice
	m.mu.Lock()
	for group := range m.consumers {
		if info := m.removeConsumerLocked(group, id); info != nil {
			notices = append(notices, groupNotice{group, info.Channels})
		}
	}
	for group, chs := range m.producers {
		if chs[id] != nil {
			delete(chs, id)
			if len(chs) == 0 {
				delete(m.producers, group)
			}
		}
	}
	m.mu.Unlock()
	for _, n := range notices {
		m.notifyIDsChanged(n.group, n.channels)
	}
}

// notifyIDsChanged sends NOTIFY_CONSUMER_IDS_CHANGED (40) oneway to each channel.
func (m *ClientManager) notifyIDsChanged(group string, channels []ClientChannelInfo) {
	if !m.b.notifyIDsChangedEnable() {
		return
	}
	for _, ch := range channels {
		req := remoting.NewRequest(remoting.NotifyConsumerIdsChanged, map[string]string{"consumerGroup": group}, nil)
		if err := ch.Conn.InvokeOneway(req); err != nil {
			m.b.log.Debug().Err(err).Str("group", group).Str("clientId", ch.ClientID).Msg("notify consumer ids changed")
		}
	}
}

// scanExpired drops connections that sent no heartbeat for channelExpiredTimeout,
// closes them and notifies the groups they left.
func (m *ClientManager) scanExpired() {
	timeout := time.Duration(m.b.cfg.ChannelExpiredTimeout) * time.Millisecond
	if timeout <= 0 {
		return
	}
	deadline := m.now().Add(-timeout)
	expired := map[uint64]*clientChannel{}
	m.mu.RLock()
	for _, g := range m.consumers {
		for id, ch := range g.channels {
			if ch.lastUpdate.Before(deadline) {
				expired[id] = ch
			}
		}
	}
	for _, chs := range m.producers {
		for id, ch := range chs {
			if ch.lastUpdate.Before(deadline) {
				expired[id] = ch
			}
		}
	}
	m.mu.RUnlock()
	for id, ch := range expired {
		m.b.log.Warn().Str("clientId", ch.ClientID).Str("addr", remoteAddrString(ch.Conn)).
			Dur("timeout", timeout).Msg("client expired: no heartbeat")
		m.removeExpired(id, deadline)
		ch.Conn.Close()
	}
}

// removeExpired removes a connection's registrations still older than deadline
// (a heartbeat may have arrived since the scan).
func (m *ClientManager) removeExpired(id uint64, deadline time.Time) {
	var notices []groupNotice
	m.mu.Lock()
	for group, g := range m.consumers {
		if ch := g.channels[id]; ch != nil && ch.lastUpdate.Before(deadline) {
			if info := m.removeConsumerLocked(group, id); info != nil {
				notices = append(notices, groupNotice{group, info.Channels})
			}
		}
	}
	for group, chs := range m.producers {
		if ch := chs[id]; ch != nil && ch.lastUpdate.Before(deadline) {
			delete(chs, id)
			if len(chs) == 0 {
				delete(m.producers, group)
			}
		}
	}
	m.mu.Unlock()
	for _, n := range notices {
		m.notifyIDsChanged(n.group, n.channels)
	}
}

func remoteAddrString(c *remoting.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	return c.RemoteAddr().String()
}

// handleHeartbeat serves HEART_BEAT (34): registers the client's producer and
// consumer groups, creating each clustering group's retry topic. Java answers
// code 0 with no body.
func (b *Broker) handleHeartbeat(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var hb body.HeartbeatData
	if err := body.Unmarshal(req.Body, &hb); err != nil {
		return remoting.NewResponse(remoting.SystemError, "bad heartbeat body: "+err.Error())
	}
	if hb.ClientID == "" {
		return remoting.NewResponse(remoting.SystemError, "heartbeat without clientID")
	}
	ch := ClientChannelInfo{Conn: conn, ClientID: hb.ClientID, Language: req.Language, Version: req.Version}
	for i := range hb.ConsumerDataSet {
		cd := &hb.ConsumerDataSet[i]
		if err := validateGroup(cd.GroupName); err != nil {
			return remoting.NewResponse(remoting.SystemError, "heartbeat: consumer "+err.Error())
		}
		notify := true
		if sg, ok := b.subGroups.FindOrCreate(cd.GroupName); ok {
			notify = sg.NotifyConsumerIdsChangedEnable
			if cd.MessageModel != body.Broadcasting {
				var sysFlag int32
				if cd.UnitMode {
					sysFlag = topicSysFlagUnitSub
				}
				b.topics.CreateInSendBack(retryTopic(cd.GroupName), sg.RetryQueueNums, body.PermRead|body.PermWrite, sysFlag)
			}
		}
		subs := make([]*SubscriptionData, 0, len(cd.SubscriptionDataSet))
		for j := range cd.SubscriptionDataSet {
			subs = append(subs, newSubscriptionData(&cd.SubscriptionDataSet[j]))
		}
		if b.clients.RegisterConsumer(cd.GroupName, ch, cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere, subs, notify) {
			b.log.Info().Str("group", cd.GroupName).Str("clientId", hb.ClientID).Str("addr", remoteAddrString(conn)).
				Msg("consumer group changed")
		}
	}
	for _, pd := range hb.ProducerDataSet {
		if pd.GroupName == "" {
			continue
		}
		b.clients.RegisterProducer(pd.GroupName, ch)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// handleUnregisterClient serves UNREGISTER_CLIENT (35): ext clientID,
// producerGroup, consumerGroup.
func (b *Broker) handleUnregisterClient(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	if g := req.Ext("producerGroup"); g != "" {
		b.clients.UnregisterProducer(g, conn)
	}
	if g := req.Ext("consumerGroup"); g != "" {
		notify := true
		if sg, ok := b.subGroups.Get(g); ok {
			notify = sg.NotifyConsumerIdsChangedEnable
		}
		b.clients.UnregisterConsumer(g, conn, notify)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// handleGetConsumerList serves GET_CONSUMER_LIST_BY_GROUP (38).
func (b *Broker) handleGetConsumerList(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("consumerGroup")
	if info, ok := b.clients.ConsumerGroup(group); ok && len(info.ClientIDs) > 0 {
		data, err := body.Marshal(&body.ConsumerListBody{ConsumerIDList: info.ClientIDs})
		if err != nil {
			return remoting.NewResponse(remoting.SystemError, err.Error())
		}
		resp := remoting.NewResponse(remoting.Success, "")
		resp.Body = data
		return resp
	}
	return remoting.NewResponse(remoting.SystemError, "no consumer for this group, "+group)
}

// handleCheckClientConfig serves CHECK_CLIENT_CONFIG (46), which Java clients
// send before subscribing: tag subscriptions are always fine; SQL92 needs
// enablePropertyFilter and an expression that compiles.
func (b *Broker) handleCheckClientConfig(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	var r body.CheckClientRequestBody
	if len(req.Body) > 0 {
		if err := body.Unmarshal(req.Body, &r); err != nil {
			return remoting.NewResponse(remoting.SystemError, "bad check client config body: "+err.Error())
		}
	}
	if sd := r.SubscriptionData; sd != nil && sd.ExpressionType != "" && sd.ExpressionType != body.ExpressionTag {
		if !b.cfg.EnablePropertyFilter {
			return unsupportedFilter(sd.ExpressionType)
		}
		if _, resp := b.compileSQLFilter(r.Group, sd.Topic, sd.ExpressionType, sd.SubString, remoting.SubscriptionParseFailed); resp != nil {
			return resp
		}
	}
	return remoting.NewResponse(remoting.Success, "")
}

func connection(ch ClientChannelInfo) body.Connection {
	return body.Connection{ClientID: ch.ClientID, ClientAddr: remoteAddrString(ch.Conn), Language: ch.Language.String(), Version: int32(ch.Version)}
}

// handleGetConsumerConnectionList serves GET_CONSUMER_CONNECTION_LIST (203).
func (b *Broker) handleGetConsumerConnectionList(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("consumerGroup")
	info, ok := b.clients.ConsumerGroup(group)
	if !ok {
		return remoting.NewResponse(remoting.ConsumerNotOnline, "the consumer group["+group+"] not online")
	}
	cc := body.ConsumerConnection{
		ConnectionSet:     make([]body.Connection, 0, len(info.Channels)),
		SubscriptionTable: make(map[string]body.SubscriptionData, len(info.Subscriptions)),
		ConsumeType:       info.ConsumeType, MessageModel: info.MessageModel, ConsumeFromWhere: info.ConsumeFromWhere,
	}
	for _, ch := range info.Channels {
		cc.ConnectionSet = append(cc.ConnectionSet, connection(ch))
	}
	for topic, s := range info.Subscriptions {
		cc.SubscriptionTable[topic] = s.wire()
	}
	return jsonResponse(&cc)
}

// handleGetProducerConnectionList serves GET_PRODUCER_CONNECTION_LIST (204).
func (b *Broker) handleGetProducerConnectionList(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("producerGroup")
	chs := b.clients.producerChannels(group)
	if len(chs) == 0 {
		return remoting.NewResponse(remoting.SystemError, "the producer group["+group+"] not exist")
	}
	pc := body.ProducerConnection{ConnectionSet: make([]body.Connection, 0, len(chs))}
	for _, ch := range chs {
		pc.ConnectionSet = append(pc.ConnectionSet, connection(ch))
	}
	return jsonResponse(&pc)
}

// jsonResponse returns a SUCCESS response with v as JSON body.
func jsonResponse(v any) *remoting.Command {
	data, err := body.Marshal(v)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = data
	return resp
}

// ProducerConnByClientID finds the connection of a producer client by its
// client ID (request-reply pushes the reply to the requester's connection).
func (m *ClientManager) ProducerConnByClientID(clientID string) *remoting.Conn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, chs := range m.producers {
		for _, ch := range chs {
			if ch.ClientID == clientID {
				return ch.Conn
			}
		}
	}
	return nil
}
