package cli

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// RocketMQ 5's controller-mode commands (tools/.../command/controller, ha and
// broker/GetBrokerEpochSubCommand of 5.3.3): getControllerMetaData,
// getSyncStateSet, getBrokerEpoch and electMaster, with the Java tool's
// options and printf formats.

func controllerCommands(e *env) []*cobra.Command {
	var mdAddr string
	gcm := &cobra.Command{Use: "getControllerMetaData", Short: "Get controller cluster's metadata.",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return getControllerMetaData(e, mdAddr) })}
	gcm.Flags().StringVarP(&mdAddr, "controllerAddress", "a", "", "the address of controller")
	required(gcm, "controllerAddress")

	var ss syncStateOpts
	gss := &cobra.Command{Use: "getSyncStateSet", Short: "Fetch syncStateSet for target brokers.",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			ss.byBroker = cmd.Flags().Changed("brokerName")
			return every(cmd, ss.interval, func() error { return getSyncStateSet(e, &ss) })
		})}
	gss.Flags().StringVarP(&ss.controller, "controllerAddress", "a", "", "the address of controller")
	gss.Flags().StringVarP(&ss.cluster, "clusterName", "c", "", "which cluster")
	gss.Flags().StringVarP(&ss.broker, "brokerName", "b", "", "which broker to fetch")
	gss.Flags().StringVarP(&ss.interval, "interval", "i", "", "the interval(second) of get info (repeats until interrupted; blank: 3)")
	required(gss, "controllerAddress")
	gss.MarkFlagsOneRequired("brokerName", "clusterName")

	var ep epochOpts
	gbe := &cobra.Command{Use: "getBrokerEpoch", Short: "Fetch broker epoch entries.",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			ep.byBroker = cmd.Flags().Changed("brokerName")
			return every(cmd, ep.interval, func() error { return getBrokerEpoch(e, &ep) })
		})}
	gbe.Flags().StringVarP(&ep.cluster, "clusterName", "c", "", "which cluster")
	gbe.Flags().StringVarP(&ep.broker, "brokerName", "b", "", "which broker to fetch")
	gbe.Flags().StringVarP(&ep.interval, "interval", "i", "", "the interval(second) of get info (repeats until interrupted; blank: 3)")
	gbe.MarkFlagsOneRequired("brokerName", "clusterName")

	var el electOpts
	em := &cobra.Command{Use: "electMaster", Short: "Re-elect the specified broker as master.",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return electMaster(e, &el) })}
	em.Flags().StringVarP(&el.controller, "controllerAddress", "a", "", "The address of controller")
	em.Flags().Int64VarP(&el.brokerID, "brokerId", "b", 0, "The id of the broker which requires to become master")
	em.Flags().StringVar(&el.brokerName, "brokerName", "", "The broker name of the replicas that require to be manipulated")
	javaShort(em, "bn", "brokerName")
	em.Flags().StringVarP(&el.cluster, "clusterName", "c", "", "the clusterName of broker")
	required(em, "controllerAddress", "brokerId", "brokerName", "clusterName")

	return []*cobra.Command{withOutput(e, gcm, true), withOutput(e, gss, true), withOutput(e, gbe, true), withOutput(e, em, true)}
}

// every runs round once or, when the command's -i/--interval was given,
// again interval seconds after each round (GetSyncStateSetSubCommand's
// loop), until a round fails or the command's context ends; the Java tool
// loops until it is killed. A blank interval is 3 s, as there.
func every(cmd *cobra.Command, interval string, round func() error) error {
	if !cmd.Flags().Changed("interval") {
		return round()
	}
	secs := 3
	if s := strings.TrimSpace(interval); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return cmdline.Usagef("-i %q: want a positive number of seconds", interval)
		}
		secs = n
	}
	ctx := cmd.Context()
	for {
		if err := round(); err != nil {
			return err
		}
		t := time.NewTimer(time.Duration(secs) * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// javaNull prints a value the Java tool prints with %s or %d: a missing one
// (null there) as "null".
func javaNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func javaNum[T int32 | int64](p *T) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatInt(int64(*p), 10)
}

// javaSplit is Java's String.split on a plain separator: trailing empty
// strings are dropped.
func javaSplit(s, sep string) []string {
	parts := strings.Split(s, sep)
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// errNoCluster is CommandUtil's ERROR_MESSAGE.
const errNoCluster = "Make sure the specified clusterName exists or the name server connected to is correct."

func getControllerMetaData(e *env, addr string) error {
	md, err := e.admin().ControllerMetaData(strings.TrimSpace(addr))
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(md)
	}
	e.printf("\n#ControllerGroup\t%s", javaNull(md.Group))
	e.printf("\n#ControllerLeaderId\t%s", javaNull(md.ControllerLeaderID))
	e.printf("\n#ControllerLeaderAddress\t%s", javaNull(md.ControllerLeaderAddress))
	if md.Peers != "" {
		for _, p := range javaSplit(md.Peers, ";") {
			e.printf("\n#Peer:\t%s", p)
		}
	}
	e.printf("\n")
	return nil
}

type syncStateOpts struct {
	controller, cluster, broker, interval string
	byBroker                              bool
}

func getSyncStateSet(e *env, o *syncStateOpts) error {
	addr := strings.Split(strings.TrimSpace(o.controller), ";")[0]
	var names []string
	if o.byBroker { // -b wins over -c, as in the Java tool
		names = []string{strings.TrimSpace(o.broker)}
	} else {
		ci, err := e.admin().ClusterInfo()
		if err != nil {
			return err
		}
		names = ci.ClusterAddrTable[strings.TrimSpace(o.cluster)]
		if len(names) == 0 {
			return errors.New(errNoCluster)
		}
		names = append([]string(nil), names...)
		sort.Strings(names)
	}
	leader, err := e.admin().ControllerLeader(addr)
	if err != nil {
		return err
	}
	info, err := e.admin().SyncStateData(leader, names)
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(info)
	}
	keys := make([]string, 0, len(info.ReplicasInfoTable))
	for k := range info.ReplicasInfoTable {
		keys = append(keys, k)
	}
	sort.Strings(keys) // Java prints in HashMap order
	for _, k := range keys {
		ri := info.ReplicasInfoTable[k]
		e.printf("\n#brokerName\t%s\n#MasterBrokerId\t%s\n#MasterAddr\t%s\n#MasterEpoch\t%d\n#SyncStateSetEpoch\t%d\n#SyncStateSetNums\t%d\n",
			k, javaNum(ri.MasterBrokerID), javaNull(ri.MasterAddress), ri.MasterEpoch, ri.SyncStateSetEpoch, len(ri.InSyncReplicas))
		for _, m := range ri.InSyncReplicas {
			e.printf("\nInSyncReplica:\t%s\n", replicaString(m))
		}
		for _, m := range ri.NotInSyncReplicas {
			e.printf("\nNotInSyncReplica:\t%s\n", replicaString(m))
		}
	}
	return nil
}

// replicaString is BrokerReplicasInfo.ReplicaIdentity.toString.
func replicaString(r body.ReplicaIdentity) string {
	return fmt.Sprintf("ReplicaIdentity{brokerName='%s', brokerId=%d, brokerAddress='%s', alive=%t}",
		javaNull(r.BrokerName), r.BrokerID, javaNull(r.BrokerAddress), r.Alive)
}

type epochOpts struct {
	cluster, broker, interval string
	byBroker                  bool
}

// epochJSON is one broker's epochs as -o json prints them.
type epochJSON struct {
	BrokerAddr string                `json:"brokerAddr"`
	Cache      *body.EpochEntryCache `json:"epochCache"`
}

func getBrokerEpoch(e *env, o *epochOpts) error {
	ci, err := e.admin().ClusterInfo()
	if err != nil {
		return err
	}
	var names []string
	if o.byBroker {
		names = []string{strings.TrimSpace(o.broker)}
	} else {
		var ok bool
		names, ok = ci.ClusterAddrTable[strings.TrimSpace(o.cluster)]
		if !ok {
			// CommandUtil.fetchMasterAndSlaveAddrByClusterName prints this
			// (without a newline) and the command goes on with no broker.
			if !e.json() {
				e.printf("[error] %s", errNoCluster)
				return nil
			}
			return errors.New(errNoCluster)
		}
		names = append([]string(nil), names...)
		sort.Strings(names)
	}
	// Every address (master and slaves) of the groups, once; Java's HashSet
	// has no order, this is by broker name and id.
	var addrs []string
	seen := map[string]bool{}
	for _, name := range names {
		bd, ok := ci.BrokerAddrTable[name]
		if !ok {
			continue
		}
		for _, id := range sortedIDs(bd) {
			if a := bd.BrokerAddrs[id]; !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	out := []epochJSON{}
	for _, addr := range addrs {
		c, err := e.admin().BrokerEpochCache(addr)
		if err != nil {
			return err
		}
		if n := len(c.EpochList); n > 0 {
			c.EpochList[n-1].EndOffset = c.MaxOffset // as the Java tool does before printing
		}
		if e.json() {
			out = append(out, epochJSON{BrokerAddr: addr, Cache: c})
			continue
		}
		e.printf("\n#clusterName\t%s\n#brokerName\t%s\n#brokerAddr\t%s\n#brokerId\t%d",
			javaNull(c.ClusterName), javaNull(c.BrokerName), addr, c.BrokerID)
		for _, en := range c.EpochList {
			e.printf("\n#Epoch: EpochEntry{epoch=%d, startOffset=%d, endOffset=%d}", en.Epoch, en.StartOffset, en.EndOffset)
		}
		e.printf("\n")
	}
	if e.json() {
		return e.printJSON(out)
	}
	return nil
}

type electOpts struct {
	controller, brokerName, cluster string
	brokerID                        int64
}

func electMaster(e *env, o *electOpts) error {
	cluster, name := strings.TrimSpace(o.cluster), strings.TrimSpace(o.brokerName)
	leader, err := e.admin().ControllerLeader(strings.TrimSpace(o.controller))
	if err != nil {
		return err
	}
	res, err := e.admin().ElectMaster(leader, cluster, name, o.brokerID)
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(res)
	}
	e.printf("\n#ClusterName\t%s", cluster)
	e.printf("\n#BrokerName\t%s", name)
	e.printf("\n#BrokerMasterAddr\t%s", javaNull(res.MasterAddress))
	e.printf("\n#MasterEpoch\t%s", javaNum(res.MasterEpoch))
	e.printf("\n#SyncStateSetEpoch\t%s\n", javaNum(res.SyncStateSetEpoch))
	// Departure from RocketMQ 5.3.3: MQClientAPIImpl.electMaster decodes
	// the body, an ElectMasterResponseBody, as a BrokerMemberGroup, which
	// leaves brokerAddrs empty, so the Java tool never prints these lines.
	// mqd reads the body's brokerMemberGroup and prints its replicas, by id.
	if res.Body != nil && res.Body.BrokerMemberGroup != nil {
		addrs := res.Body.BrokerMemberGroup.BrokerAddrs
		ids := make([]int64, 0, len(addrs))
		for id := range addrs {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			e.printf("\t#Broker\t%d\t%s\n", id, addrs[id])
		}
	}
	return nil
}
