package broker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// Consumer administration: what mqadmin (consumerProgress, consumerStatus,
// resetOffsetByTime, cloneGroupOffset, topicStatus, topicList -c) and
// dashboards ask a broker about consumer groups (Java's AdminBrokerProcessor
// and Broker2Client).

// callClientTimeout bounds a request relayed to a client (Java: 5 s).
const callClientTimeout = 5 * time.Second

func (b *Broker) mq(topic string, queueID int32) body.MessageQueue {
	return body.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: queueID}
}

// groupTopics is the topics a request is about: the given one, or every topic
// the group has offsets on. Topics whose subscription the online group does
// not have are left out, as Java does.
func (b *Broker) groupTopics(group, topic string, checkSubscription bool) []string {
	topics := []string{topic}
	if topic == "" {
		topics = b.offsets.TopicsOf(group)
	}
	if !checkSubscription {
		return topics
	}
	info, online := b.clients.ConsumerGroup(group)
	if !online || len(info.Subscriptions) == 0 {
		return topics
	}
	out := topics[:0:0]
	for _, t := range topics {
		if _, ok := info.Subscriptions[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// handleGetConsumeStats serves GET_CONSUME_STATS (208): ext consumerGroup and
// optional topic; per readable queue the broker's max offset, the group's
// committed offset and the store time of the last consumed message.
func (b *Broker) handleGetConsumeStats(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("consumerGroup")
	if group == "" {
		return remoting.NewResponse(remoting.SystemError, "the custom field <consumerGroup> is null")
	}
	cs := body.ConsumeStats{OffsetTable: map[body.MessageQueue]body.OffsetWrapper{}}
	for _, topic := range b.groupTopics(group, req.Ext("topic"), true) {
		tc, ok := b.topics.Get(topic)
		if !ok {
			continue
		}
		for q := int32(0); q < tc.ReadQueueNums; q++ {
			w := body.OffsetWrapper{BrokerOffset: max(b.store.MaxOffset(topic, q), 0)}
			if off, ok := b.offsets.Query(group, topic, q); ok && off > 0 {
				w.ConsumerOffset = off
				if ts, err := b.store.MessageStoreTime(topic, q, off-1); err == nil && ts > 0 {
					w.LastTimestamp = ts
				}
			}
			cs.OffsetTable[b.mq(topic, q)] = w
		}
		cs.ConsumeTps += b.groupStats.tps(group, topic)
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = cs.AppendFastjson(nil)
	return resp
}

// handleGetTopicStatsInfo serves GET_TOPIC_STATS_INFO (202): per writable
// queue the min and max offsets and the store time of the newest message.
func (b *Broker) handleGetTopicStatsInfo(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	tc, ok := b.topics.Get(topic)
	if !ok {
		return remoting.NewResponse(remoting.TopicNotExist, "topic["+topic+"] not exist")
	}
	t := body.TopicStatsTable{OffsetTable: make(map[body.MessageQueue]body.TopicOffset, tc.WriteQueueNums)}
	for q := int32(0); q < tc.WriteQueueNums; q++ {
		o := body.TopicOffset{MinOffset: max(b.store.MinOffset(topic, q), 0), MaxOffset: max(b.store.MaxOffset(topic, q), 0)}
		if o.MaxOffset > 0 {
			if ts, err := b.store.MessageStoreTime(topic, q, o.MaxOffset-1); err == nil {
				o.LastUpdateTimestamp = ts
			}
		}
		t.OffsetTable[b.mq(topic, q)] = o
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = t.AppendFastjson(nil)
	return resp
}

// handleQueryTopicConsumeByWho serves QUERY_TOPIC_CONSUME_BY_WHO (300): the
// online groups subscribed to the topic and the groups with offsets on it.
func (b *Broker) handleQueryTopicConsumeByWho(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	set := map[string]struct{}{}
	for _, g := range b.clients.ConsumerGroups() {
		if _, ok := b.clients.FindSubscription(g, topic); ok {
			set[g] = struct{}{}
		}
	}
	for _, g := range b.offsets.GroupsOf(topic) {
		set[g] = struct{}{}
	}
	return jsonResponse(&body.GroupList{GroupList: sortedSet(set)})
}

// handleCloneGroupOffset serves CLONE_GROUP_OFFSET (314): ext srcGroup,
// destGroup, optional topic, offline. The destination gets the source's
// committed offsets of each topic.
func (b *Broker) handleCloneGroupOffset(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	src, dst := req.Ext("srcGroup"), req.Ext("destGroup")
	if src == "" || dst == "" {
		return remoting.NewResponse(remoting.SystemError, "the custom fields <srcGroup> and <destGroup> are required")
	}
	if err := validateGroup(dst); err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	for _, topic := range b.groupTopics(src, req.Ext("topic"), !req.ExtBool("offline")) {
		if _, ok := b.topics.Get(topic); !ok {
			continue
		}
		for q, off := range b.offsets.QueryAll(src, topic) {
			b.offsets.Commit(dst, topic, q, off)
		}
	}
	b.log.Info().Str("src", src).Str("dest", dst).Str("topic", req.Ext("topic")).Str("from", remoteAddrString(conn)).
		Msg("group offsets cloned by admin")
	return remoting.NewResponse(remoting.Success, "")
}

// handleResetOffset serves INVOKE_BROKER_TO_RESET_OFFSET (222): ext topic,
// group, timestamp (ms; -1 = the max offset) and isForce. Each queue's offset
// becomes the first message stored at or after the timestamp, moving only
// backwards unless forced; the broker commits the new offsets and pushes them
// to every online consumer of the group (RESET_CONSUMER_CLIENT_OFFSET, oneway),
// which is what moves a running consumer. An offline group answers
// CONSUMER_NOT_ONLINE, on which mqadmin falls back to committing offsets itself.
func (b *Broker) handleResetOffset(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic := r.str("topic", true)
	group := r.str("group", true)
	ts := r.int64("timestamp", true, 0)
	if resp := r.failure(); resp != nil {
		return resp
	}
	force := req.ExtBool("isForce")
	tc, ok := b.topics.Get(topic)
	if !ok {
		return remoting.NewResponse(remoting.SystemError, "[reset-offset] reset offset failed, no topic in this broker. topic="+topic)
	}
	committed := b.offsets.QueryAll(group, topic)
	if len(committed) == 0 {
		return remoting.NewResponse(remoting.SystemError, "THe consumer group <"+group+"> not exist")
	}
	info, online := b.clients.ConsumerGroup(group)
	if !online || len(info.Channels) == 0 {
		return remoting.NewResponse(remoting.ConsumerNotOnline, "Consumer not online, so can not reset offset, Group: "+
			group+" Topic: "+topic+" Timestamp: "+strconv.FormatInt(ts, 10))
	}
	table := make(map[body.MessageQueue]int64, tc.WriteQueueNums)
	for q := int32(0); q < tc.WriteQueueNums; q++ {
		var off int64
		if ts == -1 {
			off = b.store.MaxOffset(topic, q)
		} else {
			off = b.store.OffsetByTime(topic, q, ts)
		}
		off = max(off, 0)
		// A queue the group never committed takes the new offset (Java refuses
		// the whole reset instead).
		if cur, ok := committed[q]; ok && !force && off >= cur {
			off = cur
		}
		table[b.mq(topic, q)] = off
	}
	for mq, off := range table {
		b.offsets.Commit(group, topic, mq.QueueID, off)
	}
	rb := body.ResetOffsetBody{OffsetTable: table}
	data := rb.AppendFastjson(nil)
	for _, ch := range info.Channels {
		push := remoting.NewRequest(remoting.ResetConsumerClientOffset, map[string]string{
			"topic": topic, "group": group, "timestamp": strconv.FormatInt(ts, 10), "isForce": strconv.FormatBool(force),
		}, data)
		if err := ch.Conn.InvokeOneway(push); err != nil {
			b.log.Warn().Err(err).Str("group", group).Str("clientId", ch.ClientID).Msg("reset offset: push to client failed")
		}
	}
	b.log.Info().Str("topic", topic).Str("group", group).Int64("timestamp", ts).Bool("force", force).
		Int("clients", len(info.Channels)).Str("from", remoteAddrString(conn)).Msg("consumer offsets reset by admin")
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = data
	return resp
}

// handleGetConsumerRunningInfo serves GET_CONSUMER_RUNNING_INFO (307): ext
// consumerGroup, clientId, jstackEnable; the request goes on to that client's
// connection and its answer comes back as it is.
func (b *Broker) handleGetConsumerRunningInfo(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	return b.callConsumer(req, req.Ext("consumerGroup"), req.Ext("clientId"))
}

// callConsumer relays a request to one consumer client (Java's callConsumer).
func (b *Broker) callConsumer(req *remoting.Command, group, clientID string) *remoting.Command {
	var target *remoting.Conn
	if info, ok := b.clients.ConsumerGroup(group); ok {
		for _, ch := range info.Channels {
			if ch.ClientID == clientID {
				target = ch.Conn
				break
			}
		}
	}
	if target == nil {
		return remoting.NewResponse(remoting.SystemError, "The Consumer <"+group+"> <"+clientID+"> not online")
	}
	relay := remoting.NewRequestFields(req.Code, req.ExtFields.Clone(0), req.Body)
	ctx, cancel := context.WithTimeout(context.Background(), callClientTimeout)
	defer cancel()
	resp, err := target.Invoke(ctx, relay)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return remoting.NewResponse(remoting.ConsumeMsgTimeout, "consumer <"+group+"> <"+clientID+"> Timeout: "+err.Error())
		}
		return remoting.NewResponse(remoting.SystemError, "invoke consumer <"+group+"> <"+clientID+"> Exception: "+err.Error())
	}
	out := remoting.NewResponse(resp.Code, resp.Remark)
	out.ExtFields = resp.ExtFields
	out.Body = resp.Body
	return out
}

// groupGetStats counts messages pulled per group and topic for the consume
// TPS of GET_CONSUME_STATS. The pull path only adds to a counter; the rate is
// computed when asked, over windows of at least statsRateWindow.
type groupGetStats struct {
	mu sync.RWMutex
	m  map[groupTopic]*getCounter
}

type groupTopic struct{ group, topic string }

type getCounter struct {
	mu          sync.Mutex
	n           int64 // messages pulled since the broker started
	windowStart time.Time
	windowCount int64
	rate        float64
	hasRate     bool
}

const statsRateWindow = 10 * time.Second

// recordGet counts the n records of a successful pull.
func (s *groupGetStats) recordGet(group, topic string, n int64) {
	if n <= 0 {
		return
	}
	k := groupTopic{group, topic}
	s.mu.RLock()
	c := s.m[k]
	s.mu.RUnlock()
	if c == nil {
		s.mu.Lock()
		if s.m == nil {
			s.m = make(map[groupTopic]*getCounter)
		}
		if c = s.m[k]; c == nil {
			c = &getCounter{windowStart: time.Now()}
			s.m[k] = c
		}
		s.mu.Unlock()
	}
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
}

// tps is the group's pull rate of a topic in messages per second over the
// last complete window (or the current one when no window completed yet).
func (s *groupGetStats) tps(group, topic string) float64 {
	s.mu.RLock()
	c := s.m[groupTopic{group, topic}]
	s.mu.RUnlock()
	if c == nil {
		return 0
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	elapsed := now.Sub(c.windowStart)
	if elapsed >= statsRateWindow || !c.hasRate {
		if elapsed < time.Second {
			return 0
		}
		rate := float64(c.n-c.windowCount) / elapsed.Seconds()
		if elapsed >= statsRateWindow {
			c.rate, c.hasRate = rate, true
			c.windowStart, c.windowCount = now, c.n
		}
		return rate
	}
	return c.rate
}
