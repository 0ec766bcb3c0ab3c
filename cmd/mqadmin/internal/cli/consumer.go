package cli

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

func consumerCommands(e *env) []*cobra.Command {
	var group, showIP string
	cp := &cobra.Command{Use: "consumerProgress", Short: "Query consumers's progress, speed",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			if group != "" {
				return consumerProgressGroup(e, strings.TrimSpace(group), strings.EqualFold(showIP, "true"))
			}
			return consumerProgressAll(e)
		})}
	cp.Flags().StringVarP(&group, "groupName", "g", "", "consumer group name")
	cp.Flags().StringVarP(&showIP, "showClientIP", "s", "", "Show Client IP per Queue")

	var broker string
	cc := &cobra.Command{Use: "consumerConnection", Short: "Query consumer's socket connection, client version and subscription",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return consumerConnection(e, strings.TrimSpace(group), broker) })}
	cc.Flags().StringVarP(&group, "consumerGroup", "g", "", "consumer group name")
	cc.Flags().StringVarP(&broker, "brokerAddr", "b", "", "broker address")
	required(cc, "consumerGroup")

	var clientID string
	var jstack bool
	cs := &cobra.Command{Use: "consumerStatus", Short: "Query consumer's internal data structure",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			return consumerStatus(e, strings.TrimSpace(group), clientID, broker, jstack)
		})}
	cs.Flags().StringVarP(&group, "consumerGroup", "g", "", "consumer group name")
	cs.Flags().StringVarP(&clientID, "clientId", "i", "", "The consumer's client id")
	cs.Flags().StringVarP(&broker, "brokerAddr", "b", "", "broker address")
	cs.Flags().BoolVarP(&jstack, "jstack", "s", false, "Run jstack command in the consumer progress")
	required(cs, "consumerGroup")

	var topic string
	pc := &cobra.Command{Use: "producerConnection", Short: "Query producer's socket connection and client version",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			return producerConnection(e, strings.TrimSpace(group), strings.TrimSpace(topic))
		})}
	pc.Flags().StringVarP(&group, "producerGroup", "g", "", "producer group name")
	pc.Flags().StringVarP(&topic, "topic", "t", "", "topic name")
	required(pc, "producerGroup", "topic")

	var sg subGroupOpts
	usg := &cobra.Command{Use: "updateSubGroup", Short: "Update or create subscription group",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return updateSubGroup(e, cmd, &sg) })}
	f := usg.Flags()
	f.StringVarP(&sg.broker, "brokerAddr", "b", "", "create subscription group to which broker")
	f.StringVarP(&sg.cluster, "clusterName", "c", "", "create subscription group to which cluster")
	f.StringVarP(&sg.group, "groupName", "g", "", "consumer group name")
	boolArgVarP(f, &sg.c.ConsumeEnable, "consumeEnable", "s", true, "consume enable")
	boolArgVarP(f, &sg.c.ConsumeFromMinEnable, "consumeFromMinEnable", "m", false, "from min offset")
	boolArgVarP(f, &sg.c.ConsumeBroadcastEnable, "consumeBroadcastEnable", "d", false, "broadcast")
	f.Int32VarP(&sg.c.RetryQueueNums, "retryQueueNums", "q", 1, "retry queue nums")
	f.Int32VarP(&sg.c.RetryMaxTimes, "retryMaxTimes", "r", 16, "retry max times")
	f.Int64VarP(&sg.c.BrokerID, "brokerId", "i", 0, "consumer from which broker id")
	f.Int64VarP(&sg.c.WhichBrokerWhenConsumeSlowly, "whichBrokerWhenConsumeSlowly", "w", 1, "which broker id when consume slowly")
	boolArgVarP(f, &sg.c.NotifyConsumerIdsChangedEnable, "notifyConsumerIdsChanged", "a", true, "notify consumerId changed")
	required(usg, "groupName")
	usg.MarkFlagsOneRequired("brokerAddr", "clusterName")
	usg.MarkFlagsMutuallyExclusive("brokerAddr", "clusterName")

	var dsg subGroupOpts
	var removeOffset bool
	dsgc := &cobra.Command{Use: "deleteSubGroup", Short: "Delete subscription group from broker.",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return deleteSubGroup(e, &dsg, removeOffset) })}
	dsgc.Flags().StringVarP(&dsg.broker, "brokerAddr", "b", "", "delete subscription group from which broker")
	dsgc.Flags().StringVarP(&dsg.cluster, "clusterName", "c", "", "delete subscription group from which cluster")
	dsgc.Flags().StringVarP(&dsg.group, "groupName", "g", "", "subscription group name")
	boolArgVarP(dsgc.Flags(), &removeOffset, "removeOffset", "r", false, "remove offset")
	required(dsgc, "groupName")
	dsgc.MarkFlagsOneRequired("brokerAddr", "clusterName")

	var ro resetOpts
	rst := &cobra.Command{Use: "resetOffsetByTime", Short: "Reset consumer offset by timestamp(without client restart).",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return resetOffsetByTime(e, &ro) })}
	rst.Flags().StringVarP(&ro.group, "group", "g", "", "set the consumer group")
	rst.Flags().StringVarP(&ro.topic, "topic", "t", "", "set the topic")
	rst.Flags().StringVarP(&ro.ts, "timestamp", "s", "", "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]")
	boolArgVarP(rst.Flags(), &ro.force, "force", "f", true, "set the force rollback by timestamp switch[true|false]")
	rst.Flags().BoolVarP(&ro.cplus, "cplus", "c", false, "reset c++ client offset")
	required(rst, "group", "topic", "timestamp")

	var sa statsOpts
	sac := &cobra.Command{Use: "statsAll", Short: "Topic and Consumer tps stats",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return statsAll(e, &sa) })}
	sac.Flags().BoolVarP(&sa.active, "activeTopic", "a", false, "print active topic only")
	sac.Flags().StringVarP(&sa.topic, "topic", "t", "", "print select topic only")

	return []*cobra.Command{withOutput(e, cp, true), withOutput(e, cc, true), withOutput(e, cs, true),
		withOutput(e, pc, true), withOutput(e, usg, true), withOutput(e, dsgc, true), withOutput(e, rst, true),
		withOutput(e, sac, true)}
}

func consumerProgressGroup(e *env, group string, showIP bool) error {
	a := e.admin()
	cs, err := a.ConsumeStats(group, "")
	if err != nil {
		return err
	}
	var owner map[admin.MessageQueue]string
	if showIP {
		owner = queueOwners(e, group)
	}
	type row struct {
		admin.OffsetWrapper
		ClientIP string `json:"clientIp,omitempty"`
		Diff     int64  `json:"diff"`
	}
	var rows []row
	var total int64
	for _, o := range cs.Offsets {
		r := row{OffsetWrapper: o, Diff: o.BrokerOffset - o.ConsumerOffset}
		if showIP {
			r.ClientIP = owner[o.Queue]
			if r.ClientIP == "" {
				r.ClientIP = "N/A"
			}
		}
		total += r.Diff
		rows = append(rows, r)
	}
	if e.json() {
		return e.printJSON(map[string]any{"offsets": rows, "consumeTps": cs.ConsumeTps, "diffTotal": total})
	}
	if showIP {
		e.printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s  %s\n", "#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Client IP", "#Diff", "#LastTime")
	} else {
		e.printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s  %s\n", "#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime")
	}
	for _, r := range rows {
		last := "N/A"
		if r.LastTimestamp != 0 {
			last = millisTime(r.LastTimestamp).Format(fmtSecond)
		}
		t, b := frontString(r.Queue.Topic, 64), frontString(r.Queue.BrokerName, 32)
		if showIP {
			e.printf("%-64s  %-32s  %-4d  %-20d  %-20d  %-20s %-20d  %s\n", t, b, r.Queue.QueueID, r.BrokerOffset, r.ConsumerOffset, r.ClientIP, r.Diff, last)
		} else {
			e.printf("%-64s  %-32s  %-4d  %-20d  %-20d  %-20d  %s\n", t, b, r.Queue.QueueID, r.BrokerOffset, r.ConsumerOffset, r.Diff, last)
		}
	}
	e.printf("\n")
	e.printf("Consume TPS: %.2f\n", cs.ConsumeTps)
	e.printf("Diff Total: %d\n", total)
	return nil
}

// queueOwners maps each queue to the IP of the client that holds it, from the
// clients' running info (mqTable keys).
func queueOwners(e *env, group string) map[admin.MessageQueue]string {
	out := map[admin.MessageQueue]string{}
	cc, addr, err := groupConnection(e, group, "")
	if err != nil {
		return out
	}
	for _, c := range cc.ConnectionSet {
		v, _, err := e.admin().ConsumerRunningInfo(addr, group, c.ClientID, false)
		if err != nil {
			continue
		}
		ip, _, _ := strings.Cut(c.ClientID, "@")
		for _, p := range v.Get("mqTable").Pairs {
			out[admin.MessageQueue{Topic: p.Key.Get("topic").String(), BrokerName: p.Key.Get("brokerName").String(),
				QueueID: int32(p.Key.Get("queueId").Int())}] = ip
		}
	}
	return out
}

func consumerProgressAll(e *env) error {
	a := e.admin()
	topics, err := a.TopicList()
	if err != nil {
		return err
	}
	type row struct {
		Group     string `json:"group"`
		Count     int    `json:"count"`
		Version   string `json:"version"`
		Type      string `json:"consumeType"`
		Model     string `json:"messageModel"`
		TPS       int64  `json:"consumeTps"`
		DiffTotal int64  `json:"diffTotal"`
	}
	var rows []row
	for _, t := range topics {
		if !strings.HasPrefix(t, admin.RetryPrefix) {
			continue
		}
		g := strings.TrimPrefix(t, admin.RetryPrefix)
		r := row{Group: g}
		if cs, err := a.ConsumeStats(g, ""); err == nil {
			r.TPS = int64(cs.ConsumeTps)
			r.DiffTotal = cs.TotalDiff()
		}
		if cc, _, err := groupConnection(e, g, ""); err == nil && len(cc.ConnectionSet) > 0 {
			r.Count = len(cc.ConnectionSet)
			minV := int32(1 << 30)
			for _, c := range cc.ConnectionSet {
				if c.Version < minV {
					minV = c.Version
				}
			}
			r.Version = admin.VersionDesc(minV)
			r.Type = "PUSH"
			if cc.ConsumeType == body.ConsumeActively {
				r.Type = "PULL"
			}
			r.Model = cc.MessageModel
		} else {
			r.Version = "OFFLINE"
		}
		rows = append(rows, r)
	}
	if e.json() {
		return e.printJSON(rows)
	}
	e.printf("%-64s  %-6s  %-24s %-5s  %-14s  %-7s  %s\n", "#Group", "#Count", "#Version", "#Type", "#Model", "#TPS", "#Diff Total")
	for _, r := range rows {
		e.printf("%-64s  %-6d  %-24s %-5s  %-14s  %-7d  %d\n", frontString(r.Group, 64), r.Count, r.Version, r.Type, r.Model, r.TPS, r.DiffTotal)
	}
	return nil
}

// groupConnection asks one broker of the group's retry-topic route (a random
// broker group's master, or addr) for the group's connections.
func groupConnection(e *env, group, addr string) (*body.ConsumerConnection, string, error) {
	a := e.admin()
	if addr == "" {
		route, err := a.Route(admin.RetryPrefix + group)
		if err != nil {
			return nil, "", err
		}
		if len(route.BrokerDatas) == 0 {
			return nil, "", fmt.Errorf("group %s: no broker in the route of its retry topic", group)
		}
		addr = selectAddr(route.BrokerDatas[rand.IntN(len(route.BrokerDatas))])
	}
	cc, err := a.ConsumerConnection(addr, group)
	if err != nil {
		if admin.IsCode(err, remoting.ConsumerNotOnline) {
			return nil, addr, fmt.Errorf("the consumer group %s is not online", group)
		}
		return nil, addr, err
	}
	return cc, addr, nil
}

func consumerConnection(e *env, group, addr string) error {
	cc, _, err := groupConnection(e, group, addr)
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(cc)
	}
	e.printf("%-36s %-22s %-10s %s\n", "#ClientId", "#ClientAddr", "#Language", "#Version")
	for _, c := range cc.ConnectionSet {
		e.printf("%-36s %-22s %-10s %s\n", c.ClientID, c.ClientAddr, c.Language, admin.VersionDesc(c.Version))
	}
	e.printf("\nBelow is subscription:\n")
	e.printf("%-20s %s\n", "#Topic", "#SubExpression")
	topics := make([]string, 0, len(cc.SubscriptionTable))
	for t := range cc.SubscriptionTable {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		sd := cc.SubscriptionTable[t]
		e.printf("%-20s %s\n", sd.Topic, sd.SubString)
	}
	e.printf("\n")
	e.printf("ConsumeType: %s\n", cc.ConsumeType)
	e.printf("MessageModel: %s\n", cc.MessageModel)
	e.printf("ConsumeFromWhere: %s\n", cc.ConsumeFromWhere)
	return nil
}

func consumerStatus(e *env, group, clientID, addr string, jstack bool) error {
	cc, brokerAddr, err := groupConnection(e, group, addr)
	if err != nil {
		return err
	}
	a := e.admin()
	if clientID != "" {
		v, raw, err := a.ConsumerRunningInfo(brokerAddr, group, strings.TrimSpace(clientID), jstack)
		if err != nil {
			return err
		}
		if e.json() {
			_, err := e.out.Write(append(raw, '\n'))
			return err
		}
		e.printf("%s", formatRunningInfo(v))
		return nil
	}
	now := time.Now().UnixMilli()
	type row struct {
		Index    int    `json:"index"`
		ClientID string `json:"clientId"`
		Version  string `json:"version"`
		File     string `json:"file"`
	}
	var rows []row
	if !e.json() {
		e.printf("%-10s %-40s %-20s %s\n", "#Index", "#ClientId", "#Version", "#ConsumerRunningInfoFile")
	}
	conns := append([]body.Connection(nil), cc.ConnectionSet...)
	sort.Slice(conns, func(i, j int) bool { return conns[i].ClientID < conns[j].ClientID })
	for _, c := range conns {
		v, _, err := a.ConsumerRunningInfo(brokerAddr, group, c.ClientID, jstack)
		if err != nil {
			fmt.Fprintf(e.errOut, "mqadmin consumerStatus: %s: %v\n", c.ClientID, err)
			continue
		}
		path := filepath.Join(strconv.FormatInt(now, 10), c.ClientID)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			_ = os.WriteFile(path, []byte(formatRunningInfo(v)), 0o644)
		}
		r := row{Index: len(rows) + 1, ClientID: c.ClientID, Version: admin.VersionDesc(c.Version), File: path}
		rows = append(rows, r)
		if !e.json() {
			e.printf("%-10d %-40s %-20s %s\n", r.Index, r.ClientID, r.Version, r.File)
		}
	}
	if e.json() {
		return e.printJSON(rows)
	}
	return nil
}

// formatRunningInfo renders a ConsumerRunningInfo in the layout of Java's
// ConsumerRunningInfo.formatString.
func formatRunningInfo(v admin.Value) string {
	var b strings.Builder
	b.WriteString("#Consumer Properties#\n")
	props := v.Get("properties").Pairs
	sort.Slice(props, func(i, j int) bool { return props[i].Key.String() < props[j].Key.String() })
	for _, p := range props {
		fmt.Fprintf(&b, "%-40s: %s\n", p.Key.String(), p.Val.String())
	}
	b.WriteString("\n\n#Consumer Subscription#\n")
	for i, s := range v.Get("subscriptionSet").Arr {
		fmt.Fprintf(&b, "%03d Topic: %-40s ClassFilter: %-8s SubExpression: %s\n", i+1, s.Get("topic").String(),
			s.Get("classFilterMode").String(), s.Get("subString").String())
	}
	b.WriteString("\n\n#Consumer Offset#\n")
	fmt.Fprintf(&b, "%-32s  %-32s  %-4s  %-20s\n", "#Topic", "#Broker Name", "#QID", "#Consumer Offset")
	mq := v.Get("mqTable").Pairs
	sort.Slice(mq, func(i, j int) bool {
		return admin.LessQueue(queueKey(mq[i].Key), queueKey(mq[j].Key))
	})
	for _, p := range mq {
		q := queueKey(p.Key)
		fmt.Fprintf(&b, "%-32s  %-32s  %-4d  %-20d\n", q.Topic, q.BrokerName, q.QueueID, p.Val.Get("commitOffset").Int())
	}
	b.WriteString("\n\n#Consumer RT&TPS#\n")
	fmt.Fprintf(&b, "%-32s  %14s %14s %14s %14s %18s %25s\n", "#Topic", "#Pull RT", "#Pull TPS", "#Consume RT", "#ConsumeOK TPS", "#ConsumeFailed TPS", "#ConsumeFailedMsgsInHour")
	for _, p := range v.Get("statusTable").Pairs {
		s := p.Val
		fmt.Fprintf(&b, "%-32s  %14.2f %14.2f %14.2f %14.2f %18.2f %25d\n", p.Key.String(), s.Get("pullRT").Float(), s.Get("pullTPS").Float(),
			s.Get("consumeRT").Float(), s.Get("consumeOKTPS").Float(), s.Get("consumeFailedTPS").Float(), s.Get("consumeFailedMsgs").Int())
	}
	return b.String()
}

func queueKey(v admin.Value) admin.MessageQueue {
	return admin.MessageQueue{Topic: v.Get("topic").String(), BrokerName: v.Get("brokerName").String(), QueueID: int32(v.Get("queueId").Int())}
}

func producerConnection(e *env, group, topic string) error {
	a := e.admin()
	route, err := a.Route(topic)
	if err != nil {
		return err
	}
	if len(route.BrokerDatas) == 0 {
		return fmt.Errorf("topic %s has no broker in its route", topic)
	}
	addr := selectAddr(route.BrokerDatas[rand.IntN(len(route.BrokerDatas))])
	pc, err := a.ProducerConnection(addr, group)
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(pc)
	}
	for i, c := range pc.ConnectionSet {
		e.printf("%04d  %-32s %-22s %-8s %s\n", i+1, c.ClientID, c.ClientAddr, c.Language, admin.VersionDesc(c.Version))
	}
	return nil
}

type subGroupOpts struct {
	broker, cluster, group string
	c                      body.SubscriptionGroupConfig
}

// subGroupString is SubscriptionGroupConfig.toString.
func subGroupString(c body.SubscriptionGroupConfig) string {
	return fmt.Sprintf("SubscriptionGroupConfig [groupName=%s, consumeEnable=%t, consumeFromMinEnable=%t, consumeBroadcastEnable=%t, retryQueueNums=%d, retryMaxTimes=%d, brokerId=%d, whichBrokerWhenConsumeSlowly=%d, notifyConsumerIdsChangedEnable=%t]",
		c.GroupName, c.ConsumeEnable, c.ConsumeFromMinEnable, c.ConsumeBroadcastEnable, c.RetryQueueNums, c.RetryMaxTimes,
		c.BrokerID, c.WhichBrokerWhenConsumeSlowly, c.NotifyConsumerIdsChangedEnable)
}

func subGroupTargets(e *env, broker, cluster string) ([]string, error) {
	if broker != "" {
		return []string{strings.TrimSpace(broker)}, nil
	}
	ci, err := e.admin().ClusterInfo()
	if err != nil {
		return nil, err
	}
	if _, ok := ci.ClusterAddrTable[cluster]; !ok {
		return nil, fmt.Errorf("cluster %s not found on the name server", cluster)
	}
	return admin.MasterAddrs(ci, cluster), nil
}

func updateSubGroup(e *env, cmd *cobra.Command, o *subGroupOpts) error {
	c := o.c
	c.GroupName = strings.TrimSpace(o.group)
	addrs, err := subGroupTargets(e, o.broker, o.cluster)
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		if err := e.admin().UpdateSubGroup(addr, c); err != nil {
			return err
		}
		if !e.json() {
			e.printf("create subscription group to %s success.\n", addr)
		}
	}
	if e.json() {
		return e.printJSON(map[string]any{"brokers": addrs, "subscriptionGroupConfig": c})
	}
	e.printf("%s\n", subGroupString(c))
	return nil
}

func deleteSubGroup(e *env, o *subGroupOpts, removeOffset bool) error {
	group := strings.TrimSpace(o.group)
	addrs, err := subGroupTargets(e, o.broker, o.cluster)
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		if err := e.admin().DeleteSubGroup(addr, group, removeOffset); err != nil {
			return err
		}
		if !e.json() {
			if o.broker != "" {
				e.printf("delete subscription group [%s] from broker [%s] success.\n", group, addr)
			} else {
				e.printf("delete subscription group [%s] from broker [%s] in cluster [%s] success.\n", group, addr, o.cluster)
			}
		}
	}
	if o.cluster != "" {
		// Java also deletes the group's retry and DLQ topics from the cluster.
		for _, t := range []string{admin.RetryPrefix + group, admin.DLQPrefix + group} {
			if err := deleteTopicQuiet(e, t, o.cluster); err == nil && !e.json() {
				e.printf("delete topic [%s] from cluster [%s] success.\n", t, o.cluster)
			}
		}
	}
	if e.json() {
		return e.printJSON(map[string]any{"group": group, "brokers": addrs, "result": "deleted"})
	}
	return nil
}

func deleteTopicQuiet(e *env, topic, cluster string) error {
	a := e.admin()
	ci, err := a.ClusterInfo()
	if err != nil {
		return err
	}
	for _, addr := range admin.MasterAddrs(ci, cluster) {
		if err := a.DeleteTopicInBroker(addr, topic); err != nil {
			return err
		}
	}
	for _, ns := range a.NameServers() {
		if err := a.DeleteTopicInNamesrv(ns, topic, cluster); err != nil {
			return err
		}
	}
	return nil
}

type resetOpts struct {
	group, topic, ts string
	force, cplus     bool
}

// parseResetTime is ResetOffsetByTimeCommand's -s: now (-1), millis, or
// yyyy-MM-dd#HH:mm:ss:SSS in local time.
func parseResetTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return -1, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.ParseInLocation("2006-01-02#15:04:05:000", s, time.Local)
	if err != nil {
		return 0, cmdline.UsageError{Err: fmt.Errorf("-s %q: want now, milliseconds or yyyy-MM-dd#HH:mm:ss:SSS", s)}
	}
	return t.UnixMilli(), nil
}

func resetOffsetByTime(e *env, o *resetOpts) error {
	ts, err := parseResetTime(o.ts)
	if err != nil {
		return err
	}
	a := e.admin()
	group, topic := strings.TrimSpace(o.group), strings.TrimSpace(o.topic)
	route, err := a.Route(topic)
	if err != nil {
		return err
	}
	var all []admin.OffsetWrapper
	for _, bd := range route.BrokerDatas {
		addr := bd.MasterAddr()
		if addr == "" {
			continue
		}
		offs, err := a.ResetOffset(addr, topic, group, ts, o.force)
		if err != nil {
			if admin.IsCode(err, remoting.ConsumerNotOnline) {
				return resetOffsetOld(e, route, group, topic, ts, o)
			}
			return err
		}
		all = append(all, offs...)
	}
	if e.json() {
		return e.printJSON(all)
	}
	e.printf("rollback consumer offset by specified group[%s], topic[%s], force[%t], timestamp(string)[%s], timestamp(long)[%d]\n",
		group, topic, o.force, o.ts, ts)
	e.printf("%-40s  %-40s  %-40s\n", "#brokerName", "#queueId", "#offset")
	for _, r := range all {
		e.printf("%-40s  %-40d  %-40d\n", frontString(r.Queue.BrokerName, 32), r.Queue.QueueID, r.ConsumerOffset)
	}
	return nil
}

// resetOffsetOld is the path for a group with no online consumer
// (DefaultMQAdminExtImpl.resetOffsetByTimestampOld): offsets are computed here
// and written with UPDATE_CONSUMER_OFFSET.
func resetOffsetOld(e *env, route *body.TopicRouteData, group, topic string, ts int64, o *resetOpts) error {
	a := e.admin()
	type rollback struct {
		BrokerName      string `json:"brokerName"`
		QueueID         int32  `json:"queueId"`
		BrokerOffset    int64  `json:"brokerOffset"`
		ConsumerOffset  int64  `json:"consumerOffset"`
		TimestampOffset int64  `json:"timestampOffset"`
		RollbackOffset  int64  `json:"rollbackOffset"`
	}
	var rows []rollback
	for _, bd := range route.BrokerDatas {
		addr := bd.MasterAddr()
		if addr == "" {
			continue
		}
		var queues []admin.OffsetWrapper
		if cs, err := a.ConsumeStatsAt(addr, group, topic); err == nil {
			for _, q := range cs.Offsets {
				if q.Queue.Topic == topic {
					queues = append(queues, q)
				}
			}
		}
		if len(queues) == 0 {
			st, err := a.TopicStats(addr, topic)
			if err != nil {
				return err
			}
			for _, s := range st {
				queues = append(queues, admin.OffsetWrapper{Queue: s.Queue, BrokerOffset: s.MaxOffset, ConsumerOffset: s.MinOffset})
			}
		}
		sort.Slice(queues, func(i, j int) bool { return admin.LessQueue(queues[i].Queue, queues[j].Queue) })
		for _, q := range queues {
			var reset int64
			var err error
			if ts == -1 {
				reset, err = a.QueueOffset(addr, remoting.GetMaxOffset, topic, q.Queue.QueueID, 0)
			} else {
				reset, err = a.QueueOffset(addr, remoting.SearchOffsetByTimestamp, topic, q.Queue.QueueID, ts)
			}
			if err != nil {
				return err
			}
			r := rollback{BrokerName: q.Queue.BrokerName, QueueID: q.Queue.QueueID, BrokerOffset: q.BrokerOffset,
				ConsumerOffset: q.ConsumerOffset, TimestampOffset: reset, RollbackOffset: q.ConsumerOffset}
			if o.force || reset <= q.ConsumerOffset {
				r.RollbackOffset = reset
				if err := a.UpdateConsumerOffset(addr, group, topic, q.Queue.QueueID, reset); err != nil {
					return err
				}
			}
			rows = append(rows, r)
		}
	}
	if e.json() {
		return e.printJSON(rows)
	}
	e.printf("rollback consumer offset by specified consumerGroup[%s], topic[%s], force[%t], timestamp(string)[%s], timestamp(long)[%d]\n",
		group, topic, o.force, o.ts, ts)
	e.printf("%-20s  %-20s  %-20s  %-20s  %-20s  %-20s\n", "#brokerName", "#queueId", "#brokerOffset", "#consumerOffset", "#timestampOffset", "#rollbackOffset")
	for _, r := range rows {
		e.printf("%-20s  %-20d  %-20d  %-20d  %-20d  %-20d\n", frontString(r.BrokerName, 32), r.QueueID, r.BrokerOffset, r.ConsumerOffset, r.TimestampOffset, r.RollbackOffset)
	}
	return nil
}

type statsOpts struct {
	active bool
	topic  string
}

func statsAll(e *env, o *statsOpts) error {
	a := e.admin()
	topics, err := a.TopicList()
	if err != nil {
		return err
	}
	type row struct {
		Topic        string  `json:"topic"`
		Group        string  `json:"consumerGroup"`
		Accumulation int64   `json:"accumulation"`
		InTPS        float64 `json:"inTps"`
		OutTPS       float64 `json:"outTps"`
		InMsg24Hour  int64   `json:"inMsg24Hour"`
		OutMsg24Hour int64   `json:"outMsg24Hour"`
		NoConsumer   bool    `json:"noConsumer,omitempty"`
	}
	var rows []row
	if !e.json() {
		e.printf("%-64s  %-64s %12s %11s %11s %14s %14s\n", "#Topic", "#Consumer Group", "#Accumulation", "#InTPS", "#OutTPS", "#InMsg24Hour", "#OutMsg24Hour")
	}
	for _, t := range topics {
		if strings.HasPrefix(t, admin.RetryPrefix) || strings.HasPrefix(t, admin.DLQPrefix) || (o.topic != "" && t != o.topic) {
			continue
		}
		route, err := a.Route(t)
		if err != nil || len(route.BrokerDatas) == 0 {
			continue
		}
		var groups []string
		if addr := selectAddr(route.BrokerDatas[0]); addr != "" {
			groups, _ = a.GroupsOfTopic(addr, t)
		}
		var inTPS float64
		var in24 int64
		for _, bd := range route.BrokerDatas {
			if m := bd.MasterAddr(); m != "" {
				if d, err := a.ViewStats(m, "TOPIC_PUT_NUMS", t); err == nil {
					inTPS += d.StatsMinute.Tps
					in24 += d.Sum24h()
				}
			}
		}
		if len(groups) == 0 {
			if !o.active || in24 > 0 {
				r := row{Topic: t, InTPS: inTPS, InMsg24Hour: in24, NoConsumer: true}
				rows = append(rows, r)
				if !e.json() {
					e.printf("%-64s  %-64s %12d %11.2f %11s %14d %14s\n", frontString(t, 64), "", 0, inTPS, "", in24, "NO_CONSUMER")
				}
			}
			continue
		}
		for _, g := range groups {
			var outTPS float64
			var out24 int64
			for _, bd := range route.BrokerDatas {
				if m := bd.MasterAddr(); m != "" {
					if d, err := a.ViewStats(m, "GROUP_GET_NUMS", t+"@"+g); err == nil {
						outTPS += d.StatsMinute.Tps
						out24 += d.Sum24h()
					}
				}
			}
			var acc int64
			if cs, err := a.ConsumeStats(g, t); err == nil {
				if acc = cs.TotalDiff(); acc < 0 {
					acc = 0
				}
			}
			if !o.active || in24 > 0 || out24 > 0 {
				r := row{Topic: t, Group: g, Accumulation: acc, InTPS: inTPS, OutTPS: outTPS, InMsg24Hour: in24, OutMsg24Hour: out24}
				rows = append(rows, r)
				if !e.json() {
					e.printf("%-64s  %-64s %12d %11.2f %11.2f %14d %14d\n", frontString(t, 64), frontString(g, 64), acc, inTPS, outTPS, in24, out24)
				}
			}
		}
	}
	if e.json() {
		return e.printJSON(rows)
	}
	return nil
}
