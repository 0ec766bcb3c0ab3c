package admin

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// Prefixes of the per-group system topics.
const (
	RetryPrefix = "%RETRY%"
	DLQPrefix   = "%DLQ%"
)

// VersionDesc returns the RocketMQ version name of an ordinal (MQVersion.getVersionDesc).
func VersionDesc(v int32) string {
	if v < 0 {
		return versionNames[0]
	}
	if int(v) >= len(versionNames) {
		return versionNames[len(versionNames)-1]
	}
	return versionNames[v]
}

// ---- name server ----

// ClusterInfo asks a name server for the clusters and broker groups (106).
func (a *Admin) ClusterInfo() (*body.ClusterInfo, error) {
	resp, err := a.invokeNS(remoting.GetBrokerClusterInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	return body.DecodeClusterInfo(resp.Body)
}

// TopicList lists every topic the name servers know (206).
func (a *Admin) TopicList() ([]string, error) {
	resp, err := a.invokeNS(remoting.GetAllTopicListFromNameServer, nil, nil)
	if err != nil {
		return nil, err
	}
	var tl body.TopicList
	if err := body.Unmarshal(resp.Body, &tl); err != nil {
		return nil, fmt.Errorf("topic list body: %w", err)
	}
	return tl.TopicList, nil
}

// Route returns a topic's route (105).
func (a *Admin) Route(topic string) (*body.TopicRouteData, error) {
	resp, err := a.invokeNS(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	if err != nil {
		if IsCode(err, remoting.TopicNotExist) {
			return nil, fmt.Errorf("no route for topic %s: the name server does not know it", topic)
		}
		return nil, err
	}
	return body.DecodeTopicRouteData(resp.Body)
}

// WipeWritePerm removes write permission of a broker group on one name server
// (205) and returns how many topics it touched.
func (a *Admin) WipeWritePerm(ns, brokerName string) (int, error) {
	resp, err := a.invoke(ns, remoting.WipeWritePermOfBroker, map[string]string{"brokerName": brokerName}, nil)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(resp.Ext("wipeTopicCount"))
	return n, nil
}

// AddWritePerm restores write permission of a broker group on one name server (327).
func (a *Admin) AddWritePerm(ns, brokerName string) (int, error) {
	resp, err := a.invoke(ns, remoting.AddWritePermOfBroker, map[string]string{"brokerName": brokerName}, nil)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(resp.Ext("addTopicCount"))
	return n, nil
}

// DeleteTopicInNamesrv removes a topic's route from one name server (216).
func (a *Admin) DeleteTopicInNamesrv(ns, topic, cluster string) error {
	ext := map[string]string{"topic": topic}
	if cluster != "" {
		ext["clusterName"] = cluster
	}
	_, err := a.invoke(ns, remoting.DeleteTopicInNamesrv, ext, nil)
	return err
}

// PutKV writes a KV config entry on one name server (100).
func (a *Admin) PutKV(ns, namespace, key, value string) error {
	_, err := a.invoke(ns, remoting.PutKVConfig, map[string]string{"namespace": namespace, "key": key, "value": value}, nil)
	return err
}

// ---- brokers ----

// RuntimeInfo returns a broker's GET_BROKER_RUNTIME_INFO table (28).
func (a *Admin) RuntimeInfo(addr string) (map[string]string, error) {
	resp, err := a.invoke(addr, remoting.GetBrokerRuntimeInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	var kv body.KVTable
	if err := body.Unmarshal(resp.Body, &kv); err != nil {
		return nil, fmt.Errorf("runtime info body from %s: %w", addr, err)
	}
	return kv.Table, nil
}

// Property is one key=value of a broker configuration, in body order.
type Property struct{ Key, Value string }

// BrokerConfig returns a broker's configuration (26) in the order it sent it.
func (a *Admin) BrokerConfig(addr string) ([]Property, error) {
	resp, err := a.invoke(addr, remoting.GetBrokerConfig, nil, nil)
	if err != nil {
		return nil, err
	}
	return ParseProperties(string(resp.Body)), nil
}

// ParseProperties parses a Java properties text (key=value lines; # and !
// comments). Escapes other than "\\=" and "\\:" are left as written.
func ParseProperties(text string) []Property {
	var out []Property
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out = append(out, Property{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	return out
}

// UpdateBrokerConfig sends properties to a broker (25).
func (a *Admin) UpdateBrokerConfig(addr string, props []Property) error {
	var sb strings.Builder
	for _, p := range props {
		sb.WriteString(p.Key + "=" + p.Value + "\n")
	}
	_, err := a.invoke(addr, remoting.UpdateBrokerConfig, nil, []byte(sb.String()))
	return err
}

// CreateTopic creates or updates a topic on one broker (17).
func (a *Admin) CreateTopic(addr string, tc body.TopicConfig) error {
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	ext := map[string]string{
		"topic":           tc.TopicName,
		"defaultTopic":    "TBW102",
		"readQueueNums":   strconv.Itoa(int(tc.ReadQueueNums)),
		"writeQueueNums":  strconv.Itoa(int(tc.WriteQueueNums)),
		"perm":            strconv.Itoa(int(tc.Perm)),
		"topicFilterType": tc.TopicFilterType,
		"topicSysFlag":    strconv.Itoa(int(tc.TopicSysFlag)),
		"order":           strconv.FormatBool(tc.Order),
	}
	_, err := a.invoke(addr, remoting.UpdateAndCreateTopic, ext, nil)
	return err
}

// DeleteTopicInBroker deletes a topic on one broker (215).
func (a *Admin) DeleteTopicInBroker(addr, topic string) error {
	_, err := a.invoke(addr, remoting.DeleteTopicInBroker, map[string]string{"topic": topic}, nil)
	return err
}

// UpdateSubGroup creates or updates a subscription group on one broker (200).
func (a *Admin) UpdateSubGroup(addr string, c body.SubscriptionGroupConfig) error {
	data, err := body.Marshal(c)
	if err != nil {
		return err
	}
	_, err = a.invoke(addr, remoting.UpdateAndCreateSubscriptionGroup, nil, data)
	return err
}

// DeleteSubGroup deletes a subscription group on one broker (207).
func (a *Admin) DeleteSubGroup(addr, group string, removeOffset bool) error {
	_, err := a.invoke(addr, remoting.DeleteSubscriptionGroup,
		map[string]string{"groupName": group, "removeOffset": strconv.FormatBool(removeOffset)}, nil)
	return err
}

// MessageQueue identifies a queue; it sorts like Java's MessageQueue.compareTo
// (topic, broker name, queue id).
type MessageQueue = body.MessageQueue

// SortQueues sorts queues as Java's Collections.sort over MessageQueue.
func SortQueues(mqs []MessageQueue) {
	sort.Slice(mqs, func(i, j int) bool { return LessQueue(mqs[i], mqs[j]) })
}

// LessQueue is MessageQueue.compareTo.
func LessQueue(a, b MessageQueue) bool {
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	if a.BrokerName != b.BrokerName {
		return a.BrokerName < b.BrokerName
	}
	return a.QueueID < b.QueueID
}

func queueOf(v Value) MessageQueue {
	return MessageQueue{Topic: v.Get("topic").String(), BrokerName: v.Get("brokerName").String(), QueueID: int32(v.Get("queueId").Int())}
}

// TopicOffset is one queue's row of GET_TOPIC_STATS_INFO.
type TopicOffset struct {
	Queue               MessageQueue `json:"queue"`
	MinOffset           int64        `json:"minOffset"`
	MaxOffset           int64        `json:"maxOffset"`
	LastUpdateTimestamp int64        `json:"lastUpdateTimestamp"`
}

// TopicStats returns a topic's queue offsets on one broker (202).
func (a *Admin) TopicStats(addr, topic string) ([]TopicOffset, error) {
	resp, err := a.invoke(addr, remoting.GetTopicStatsInfo, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, err
	}
	v, err := ParseJSON(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("topic stats body from %s: %w", addr, err)
	}
	var out []TopicOffset
	for _, p := range v.Get("offsetTable").Pairs {
		out = append(out, TopicOffset{Queue: queueOf(p.Key), MinOffset: p.Val.Get("minOffset").Int(),
			MaxOffset: p.Val.Get("maxOffset").Int(), LastUpdateTimestamp: p.Val.Get("lastUpdateTimestamp").Int()})
	}
	return out, nil
}

// OffsetWrapper is one queue's row of GET_CONSUME_STATS.
type OffsetWrapper struct {
	Queue          MessageQueue `json:"queue"`
	BrokerOffset   int64        `json:"brokerOffset"`
	ConsumerOffset int64        `json:"consumerOffset"`
	LastTimestamp  int64        `json:"lastTimestamp"`
}

// ConsumeStats is a group's progress on one or more brokers.
type ConsumeStats struct {
	ConsumeTps float64         `json:"consumeTps"`
	Offsets    []OffsetWrapper `json:"offsets"`
}

// TotalDiff sums brokerOffset - consumerOffset (ConsumeStats.computeTotalDiff).
func (s *ConsumeStats) TotalDiff() int64 {
	var d int64
	for _, o := range s.Offsets {
		d += o.BrokerOffset - o.ConsumerOffset
	}
	return d
}

// ConsumeStatsAt returns a group's progress on one broker (208); topic "" means
// every topic the group subscribes.
func (a *Admin) ConsumeStatsAt(addr, group, topic string) (*ConsumeStats, error) {
	ext := map[string]string{"consumerGroup": group}
	if topic != "" {
		ext["topic"] = topic
	}
	resp, err := a.invoke(addr, remoting.GetConsumeStats, ext, nil)
	if err != nil {
		return nil, err
	}
	v, err := ParseJSON(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("consume stats body from %s: %w", addr, err)
	}
	cs := &ConsumeStats{ConsumeTps: v.Get("consumeTps").Float()}
	for _, p := range v.Get("offsetTable").Pairs {
		cs.Offsets = append(cs.Offsets, OffsetWrapper{Queue: queueOf(p.Key), BrokerOffset: p.Val.Get("brokerOffset").Int(),
			ConsumerOffset: p.Val.Get("consumerOffset").Int(), LastTimestamp: p.Val.Get("lastTimestamp").Int()})
	}
	return cs, nil
}

// ConsumeStats merges a group's progress over every broker group of its retry
// topic's route (DefaultMQAdminExtImpl.examineConsumeStats); topic "" for all.
func (a *Admin) ConsumeStats(group, topic string) (*ConsumeStats, error) {
	route, err := a.Route(RetryPrefix + group)
	if err != nil {
		return nil, err
	}
	out := &ConsumeStats{}
	for _, bd := range route.BrokerDatas {
		addr := bd.MasterAddr()
		if addr == "" {
			continue
		}
		cs, err := a.ConsumeStatsAt(addr, group, topic)
		if err != nil {
			return nil, err
		}
		out.ConsumeTps += cs.ConsumeTps
		out.Offsets = append(out.Offsets, cs.Offsets...)
	}
	if topic == "" && len(out.Offsets) == 0 {
		return nil, fmt.Errorf("group %s has no consume offsets (not online, or consumes nothing)", group)
	}
	sort.Slice(out.Offsets, func(i, j int) bool { return LessQueue(out.Offsets[i].Queue, out.Offsets[j].Queue) })
	return out, nil
}

// ConsumerConnection returns a group's online consumers on one broker (203).
func (a *Admin) ConsumerConnection(addr, group string) (*body.ConsumerConnection, error) {
	resp, err := a.invoke(addr, remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": group}, nil)
	if err != nil {
		return nil, err
	}
	var cc body.ConsumerConnection
	if err := body.Unmarshal(resp.Body, &cc); err != nil {
		return nil, fmt.Errorf("consumer connection body from %s: %w", addr, err)
	}
	return &cc, nil
}

// ProducerConnection returns a producer group's connections on one broker (204).
func (a *Admin) ProducerConnection(addr, group string) (*body.ProducerConnection, error) {
	resp, err := a.invoke(addr, remoting.GetProducerConnectionList, map[string]string{"producerGroup": group}, nil)
	if err != nil {
		return nil, err
	}
	var pc body.ProducerConnection
	if err := body.Unmarshal(resp.Body, &pc); err != nil {
		return nil, fmt.Errorf("producer connection body from %s: %w", addr, err)
	}
	return &pc, nil
}

// ConsumerRunningInfo asks a broker to fetch a client's running info (307).
func (a *Admin) ConsumerRunningInfo(addr, group, clientID string, jstack bool) (Value, []byte, error) {
	resp, err := a.invoke(addr, remoting.GetConsumerRunningInfo,
		map[string]string{"consumerGroup": group, "clientId": clientID, "jstackEnable": strconv.FormatBool(jstack)}, nil)
	if err != nil {
		return Value{}, nil, err
	}
	v, err := ParseJSON(resp.Body)
	return v, resp.Body, err
}

// GroupsOfTopic returns the groups consuming a topic, per one broker (300).
func (a *Admin) GroupsOfTopic(addr, topic string) ([]string, error) {
	resp, err := a.invoke(addr, remoting.QueryTopicConsumeByWho, map[string]string{"topic": topic}, nil)
	if err != nil {
		return nil, err
	}
	var gl struct {
		GroupList []string `json:"groupList"`
	}
	if err := body.Unmarshal(resp.Body, &gl); err != nil {
		return nil, fmt.Errorf("group list body from %s: %w", addr, err)
	}
	sort.Strings(gl.GroupList)
	return gl.GroupList, nil
}

// StatsItem is one window of VIEW_BROKER_STATS_DATA.
type StatsItem struct {
	Sum   int64   `json:"sum"`
	Tps   float64 `json:"tps"`
	Avgpt float64 `json:"avgpt"`
}

// BrokerStatsData is the body of VIEW_BROKER_STATS_DATA (315).
type BrokerStatsData struct {
	StatsMinute StatsItem `json:"statsMinute"`
	StatsHour   StatsItem `json:"statsHour"`
	StatsDay    StatsItem `json:"statsDay"`
}

// Sum24h is StatsAllSubCommand.compute24HourSum.
func (d *BrokerStatsData) Sum24h() int64 {
	switch {
	case d.StatsDay.Sum != 0:
		return d.StatsDay.Sum
	case d.StatsHour.Sum != 0:
		return d.StatsHour.Sum
	default:
		return d.StatsMinute.Sum
	}
}

// ViewStats reads one statistics item of a broker (315).
func (a *Admin) ViewStats(addr, name, key string) (*BrokerStatsData, error) {
	resp, err := a.invoke(addr, remoting.ViewBrokerStatsData, map[string]string{"statsName": name, "statsKey": key}, nil)
	if err != nil {
		return nil, err
	}
	var d BrokerStatsData
	if err := json.Unmarshal(resp.Body, &d); err != nil {
		return nil, fmt.Errorf("stats body from %s: %w", addr, err)
	}
	return &d, nil
}

// ResetOffset asks a broker to move a group's offsets of a topic to a time
// (222) and returns the new offsets per queue.
func (a *Admin) ResetOffset(addr, topic, group string, timestamp int64, force bool) ([]OffsetWrapper, error) {
	resp, err := a.invoke(addr, remoting.InvokeBrokerToResetOffset, map[string]string{
		"topic": topic, "group": group, "timestamp": strconv.FormatInt(timestamp, 10), "isForce": strconv.FormatBool(force),
	}, nil)
	if err != nil {
		return nil, err
	}
	var out []OffsetWrapper
	if len(resp.Body) == 0 {
		return out, nil
	}
	v, err := ParseJSON(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reset offset body from %s: %w", addr, err)
	}
	for _, p := range v.Get("offsetTable").Pairs {
		out = append(out, OffsetWrapper{Queue: queueOf(p.Key), ConsumerOffset: p.Val.Int()})
	}
	sort.Slice(out, func(i, j int) bool { return LessQueue(out[i].Queue, out[j].Queue) })
	return out, nil
}

// QueueOffset asks a broker for a queue's min (31) or max (30) offset or the
// offset at a time (29).
func (a *Admin) QueueOffset(addr string, code int16, topic string, queueID int32, timestamp int64) (int64, error) {
	ext := map[string]string{"topic": topic, "queueId": strconv.Itoa(int(queueID))}
	if code == remoting.SearchOffsetByTimestamp {
		ext["timestamp"] = strconv.FormatInt(timestamp, 10)
	}
	resp, err := a.invoke(addr, code, ext, nil)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(resp.Ext("offset"), 10, 64)
}

// MasterAddrs returns the master address of every broker group in a cluster
// ("" for all clusters), sorted by broker name.
func MasterAddrs(ci *body.ClusterInfo, cluster string) []string {
	var out []string
	for _, name := range BrokerNames(ci, cluster) {
		if bd, ok := ci.BrokerAddrTable[name]; ok {
			if m := bd.MasterAddr(); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

// AllAddrs returns every broker address (masters and slaves) of a cluster.
func AllAddrs(ci *body.ClusterInfo, cluster string) []string {
	var out []string
	for _, name := range BrokerNames(ci, cluster) {
		bd := ci.BrokerAddrTable[name]
		ids := make([]int64, 0, len(bd.BrokerAddrs))
		for id := range bd.BrokerAddrs {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			out = append(out, bd.BrokerAddrs[id])
		}
	}
	return out
}

// BrokerNames returns a cluster's broker names, sorted ("" for every cluster).
func BrokerNames(ci *body.ClusterInfo, cluster string) []string {
	var out []string
	for c, names := range ci.ClusterAddrTable {
		if cluster == "" || c == cluster {
			out = append(out, names...)
		}
	}
	sort.Strings(out)
	return out
}

// ClusterOf returns the cluster a broker name belongs to.
func ClusterOf(ci *body.ClusterInfo, brokerName string) string {
	for c, names := range ci.ClusterAddrTable {
		for _, n := range names {
			if n == brokerName {
				return c
			}
		}
	}
	return ""
}

// UpdateConsumerOffset commits a group's offset of one queue on a broker (15).
func (a *Admin) UpdateConsumerOffset(addr, group, topic string, queueID int32, offset int64) error {
	_, err := a.invoke(addr, remoting.UpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(queueID)), "commitOffset": strconv.FormatInt(offset, 10),
	}, nil)
	return err
}
