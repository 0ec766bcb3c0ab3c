package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
	"github.com/mqd/mqd/protocols/remoting/body"
)

func topicCommands(e *env) []*cobra.Command {
	var withCluster bool
	tl := &cobra.Command{Use: "topicList", Short: "Fetch all topic list from name server",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return topicList(e, withCluster) })}
	tl.Flags().BoolVarP(&withCluster, "clusterModel", "c", false, "clusterModel")

	var topic string
	var list bool
	tr := &cobra.Command{Use: "topicRoute", Short: "Examine topic route info",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return topicRoute(e, topic, list) })}
	tr.Flags().StringVarP(&topic, "topic", "t", "", "topic name")
	tr.Flags().BoolVarP(&list, "list", "l", false, "Use list format to print data")
	required(tr, "topic")

	ts := &cobra.Command{Use: "topicStatus", Short: "Examine topic Status info",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return topicStatus(e, topic) })}
	ts.Flags().StringVarP(&topic, "topic", "t", "", "topic name")
	ts.Flags().StringP("cluster", "c", "", "cluster name or lmq parent topic, lmq is used to find the route.")
	required(ts, "topic")

	var u updateTopicOpts
	ut := &cobra.Command{Use: "updateTopic", Short: "Update or create topic",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return updateTopic(e, &u) })}
	ut.Flags().StringVarP(&u.broker, "brokerAddr", "b", "", "create topic to which broker")
	ut.Flags().StringVarP(&u.cluster, "clusterName", "c", "", "create topic to which cluster")
	ut.Flags().StringVarP(&u.topic, "topic", "t", "", "topic name")
	ut.Flags().Int32VarP(&u.read, "readQueueNums", "r", 8, "set read queue nums")
	ut.Flags().Int32VarP(&u.write, "writeQueueNums", "w", 8, "set write queue nums")
	ut.Flags().Int32VarP(&u.perm, "perm", "p", 6, "set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]")
	boolArgVarP(ut.Flags(), &u.order, "order", "o", false, "set topic's order(true|false)")
	boolArgVarP(ut.Flags(), &u.unit, "unit", "u", false, "is unit topic (true|false)")
	boolArgVarP(ut.Flags(), &u.unitSub, "hasUnitSub", "s", false, "has unit sub (true|false)")
	required(ut, "topic")
	ut.MarkFlagsOneRequired("brokerAddr", "clusterName")
	ut.MarkFlagsMutuallyExclusive("brokerAddr", "clusterName")

	var dt, dc string
	del := &cobra.Command{Use: "deleteTopic", Short: "Delete topic from broker and NameServer.",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return deleteTopic(e, dt, dc) })}
	del.Flags().StringVarP(&dt, "topic", "t", "", "topic name")
	del.Flags().StringVarP(&dc, "clusterName", "c", "", "delete topic from which cluster")
	required(del, "topic", "clusterName")

	return []*cobra.Command{withOutput(e, tl, true), withOutput(e, tr, true), withOutput(e, ts, true),
		withOutput(e, ut, false), withOutput(e, del, true)}
}

func topicList(e *env, withCluster bool) error {
	a := e.admin()
	topics, err := a.TopicList()
	if err != nil {
		return err
	}
	if !withCluster {
		if e.json() {
			return e.printJSON(topics)
		}
		for _, t := range topics {
			e.printf("%s\n", t)
		}
		return nil
	}
	ci, err := a.ClusterInfo()
	if err != nil {
		return err
	}
	type row struct {
		Cluster string `json:"cluster"`
		Topic   string `json:"topic"`
		Group   string `json:"consumerGroup"`
	}
	var rows []row
	for _, t := range topics {
		if strings.HasPrefix(t, admin.RetryPrefix) || strings.HasPrefix(t, admin.DLQPrefix) {
			continue
		}
		cluster := ""
		var groups []string
		if route, err := a.Route(t); err == nil && len(route.BrokerDatas) > 0 {
			bd := route.BrokerDatas[0]
			cluster = admin.ClusterOf(ci, bd.BrokerName)
			if addr := selectAddr(bd); addr != "" {
				groups, _ = a.GroupsOfTopic(addr, t)
			}
		}
		if len(groups) == 0 {
			groups = []string{""}
		}
		for _, g := range groups {
			rows = append(rows, row{cluster, t, g})
		}
	}
	if e.json() {
		return e.printJSON(rows)
	}
	e.printf("%-20s  %-48s  %-48s\n", "#Cluster Name", "#Topic", "#Consumer Group")
	for _, r := range rows {
		e.printf("%-20s  %-64s  %-64s\n", frontString(r.Cluster, 20), frontString(r.Topic, 64), frontString(r.Group, 64))
	}
	return nil
}

// selectAddr is BrokerData.selectBrokerAddr: the master, else any address.
func selectAddr(bd body.BrokerData) string {
	if m := bd.MasterAddr(); m != "" {
		return m
	}
	for _, id := range sortedIDs(bd) {
		return bd.BrokerAddrs[id]
	}
	return ""
}

func topicRoute(e *env, topic string, list bool) error {
	route, err := e.admin().Route(strings.TrimSpace(topic))
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(route)
	}
	if !list {
		e.printf("%s\n", fastjsonPretty(route))
		return nil
	}
	const f = "%-45s %-32s %-50s %-10s %-11s %-5s\n"
	qd := map[string]body.QueueData{}
	for _, q := range route.QueueDatas {
		qd[q.BrokerName] = q
	}
	bds := append([]body.BrokerData(nil), route.BrokerDatas...)
	sort.Slice(bds, func(i, j int) bool { return bds[i].BrokerName < bds[j].BrokerName })
	e.printf(f, "#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm")
	var tr, tw int32
	for _, bd := range bds {
		q := qd[bd.BrokerName]
		tr += q.ReadQueueNums
		tw += q.WriteQueueNums
		e.printf(f, bd.Cluster, bd.BrokerName, javaAddrMap(bd), strconv.Itoa(int(q.ReadQueueNums)),
			strconv.Itoa(int(q.WriteQueueNums)), strconv.Itoa(int(q.Perm)))
	}
	e.printf("%s\n", strings.Repeat("-", 158))
	e.printf(f, "Total:", strconv.Itoa(len(qd)), "", strconv.Itoa(int(tr)), strconv.Itoa(int(tw)), "")
	return nil
}

// javaAddrMap renders brokerAddrs as Java's HashMap.toString: {0=addr, 1=addr}.
func javaAddrMap(bd body.BrokerData) string {
	var parts []string
	for _, id := range sortedIDs(bd) {
		parts = append(parts, strconv.FormatInt(id, 10)+"="+bd.BrokerAddrs[id])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// fastjsonPretty renders a route as TopicRouteData.toJson(true) does: fastjson's
// pretty format (tabs, sorted keys, bare integer map keys, maps closed on their
// own line).
func fastjsonPretty(r *body.TopicRouteData) string {
	var b strings.Builder
	q := func(s string) string { return string(body.AppendString(nil, s)) }
	b.WriteString("{\n\t\"brokerDatas\":[")
	for i, bd := range r.BrokerDatas {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n\t\t{\n\t\t\t\"brokerAddrs\":{")
		for j, id := range sortedIDs(bd) {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString(strconv.FormatInt(id, 10) + ":" + q(bd.BrokerAddrs[id]))
		}
		if len(bd.BrokerAddrs) > 0 {
			b.WriteString("\n\t\t\t")
		}
		b.WriteString("},\n\t\t\t\"brokerName\":" + q(bd.BrokerName) + ",\n\t\t\t\"cluster\":" + q(bd.Cluster) + "\n\t\t}")
	}
	if len(r.BrokerDatas) > 0 {
		b.WriteString("\n\t")
	}
	b.WriteString("],\n\t\"filterServerTable\":{},\n\t\"queueDatas\":[")
	for i, qd := range r.QueueDatas {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n\t\t{\n\t\t\t\"brokerName\":%s,\n\t\t\t\"perm\":%d,\n\t\t\t\"readQueueNums\":%d,\n\t\t\t\"topicSysFlag\":%d,\n\t\t\t\"writeQueueNums\":%d\n\t\t}",
			q(qd.BrokerName), qd.Perm, qd.ReadQueueNums, qd.TopicSysFlag, qd.WriteQueueNums)
	}
	if len(r.QueueDatas) > 0 {
		b.WriteString("\n\t")
	}
	b.WriteString("]\n}")
	return b.String()
}

func topicStatus(e *env, topic string) error {
	a := e.admin()
	topic = strings.TrimSpace(topic)
	route, err := a.Route(topic)
	if err != nil {
		return err
	}
	var rows []admin.TopicOffset
	for _, bd := range route.BrokerDatas {
		addr := selectAddr(bd)
		if addr == "" {
			continue
		}
		st, err := a.TopicStats(addr, topic)
		if err != nil {
			return err
		}
		rows = append(rows, st...)
	}
	sort.Slice(rows, func(i, j int) bool { return admin.LessQueue(rows[i].Queue, rows[j].Queue) })
	if e.json() {
		return e.printJSON(rows)
	}
	e.printf("%-32s  %-4s  %-20s  %-20s    %s\n", "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated")
	for _, r := range rows {
		ts := ""
		if r.LastUpdateTimestamp > 0 {
			ts = millisTime(r.LastUpdateTimestamp).Format(fmtMilli)
		}
		e.printf("%-32s  %-4d  %-20d  %-20d    %s\n", frontString(r.Queue.BrokerName, 32), r.Queue.QueueID, r.MinOffset, r.MaxOffset, ts)
	}
	return nil
}

type updateTopicOpts struct {
	broker, cluster, topic string
	read, write, perm      int32
	order, unit, unitSub   bool
}

// topicConfigString is TopicConfig.toString.
func topicConfigString(tc body.TopicConfig) string {
	return fmt.Sprintf("TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%s, topicFilterType=%s, topicSysFlag=%d, order=%t]",
		tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, body.PermString(tc.Perm), tc.TopicFilterType, tc.TopicSysFlag, tc.Order)
}

func updateTopic(e *env, u *updateTopicOpts) error {
	a := e.admin()
	tc := body.NewTopicConfig(strings.TrimSpace(u.topic), u.read, u.write, u.perm)
	tc.TopicFilterType = "SINGLE_TAG"
	tc.Order = u.order
	if u.unit {
		tc.TopicSysFlag |= 1
	}
	if u.unitSub {
		tc.TopicSysFlag |= 2
	}
	var addrs []string
	var ci *body.ClusterInfo
	if u.broker != "" {
		addrs = []string{strings.TrimSpace(u.broker)}
	} else {
		var err error
		if ci, err = a.ClusterInfo(); err != nil {
			return err
		}
		if _, ok := ci.ClusterAddrTable[u.cluster]; !ok {
			return fmt.Errorf("cluster %s not found on the name server", u.cluster)
		}
		addrs = admin.MasterAddrs(ci, u.cluster)
	}
	var done []string
	for _, addr := range addrs {
		if err := a.CreateTopic(addr, tc); err != nil {
			return err
		}
		done = append(done, addr)
		if !e.json() {
			e.printf("create topic to %s success.\n", addr)
		}
	}
	orderConf := ""
	if u.order {
		// ORDER_TOPIC_CONFIG on the name servers: "brokerName:writeQueues;...".
		var names []string
		if ci == nil {
			var err error
			if ci, err = a.ClusterInfo(); err != nil {
				return err
			}
			for name, bd := range ci.BrokerAddrTable {
				for _, addr := range bd.BrokerAddrs {
					if addr == addrs[0] {
						names = append(names, name)
					}
				}
			}
		} else {
			names = admin.BrokerNames(ci, u.cluster)
		}
		var parts []string
		for _, n := range names {
			parts = append(parts, n+":"+strconv.Itoa(int(tc.WriteQueueNums)))
		}
		orderConf = strings.Join(parts, ";")
		for _, ns := range a.NameServers() {
			if err := a.PutKV(ns, "ORDER_TOPIC_CONFIG", tc.TopicName, orderConf); err != nil {
				return err
			}
		}
		if !e.json() {
			scope := "cluster"
			if u.broker != "" {
				scope = "broker"
			}
			e.printf("set %s orderConf. isOrder=%t, orderConf=[%s]", scope, u.order, orderConf)
		}
	}
	if e.json() {
		return e.printJSON(map[string]any{"brokers": done, "topicConfig": tc, "orderConf": orderConf})
	}
	e.printf("%s\n", topicConfigString(tc))
	return nil
}

func deleteTopic(e *env, topic, cluster string) error {
	a := e.admin()
	topic = strings.TrimSpace(topic)
	ci, err := a.ClusterInfo()
	if err != nil {
		return err
	}
	if _, ok := ci.ClusterAddrTable[cluster]; !ok {
		return fmt.Errorf("cluster %s not found on the name server", cluster)
	}
	for _, addr := range admin.MasterAddrs(ci, cluster) {
		if err := a.DeleteTopicInBroker(addr, topic); err != nil {
			return err
		}
	}
	if !e.json() {
		e.printf("delete topic [%s] from cluster [%s] success.\n", topic, cluster)
	}
	for _, ns := range a.NameServers() {
		if err := a.DeleteTopicInNamesrv(ns, topic, cluster); err != nil {
			return err
		}
	}
	if e.json() {
		return e.printJSON(map[string]string{"topic": topic, "cluster": cluster, "result": "deleted"})
	}
	e.printf("delete topic [%s] from NameServer success.\n", topic)
	return nil
}
