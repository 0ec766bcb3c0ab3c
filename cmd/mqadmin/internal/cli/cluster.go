package cli

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
	"github.com/mqd/mqd/protocols/remoting/body"
)

func clusterCommands(e *env) []*cobra.Command {
	var more bool
	var interval int
	cl := &cobra.Command{Use: "clusterList", Short: "List cluster infos",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			for {
				var err error
				if more {
					err = clusterMoreStats(e)
				} else {
					err = clusterBaseInfo(e)
				}
				if err != nil || !cmd.Flags().Changed("interval") {
					return err
				}
				time.Sleep(time.Duration(interval) * time.Second)
			}
		})}
	cl.Flags().BoolVarP(&more, "moreStats", "m", false, "Print more stats")
	cl.Flags().IntVarP(&interval, "interval", "i", 0, "specify intervals numbers, it is in seconds")

	var bsAddr, bsCluster string
	bs := &cobra.Command{Use: "brokerStatus", Short: "Fetch broker runtime status data",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return brokerStatus(e, bsAddr, bsCluster) })}
	bs.Flags().StringVarP(&bsAddr, "brokerAddr", "b", "", "Broker address")
	bs.Flags().StringVarP(&bsCluster, "clusterName", "c", "", "which cluster")
	bs.MarkFlagsOneRequired("brokerAddr", "clusterName")

	var rt rtOptions
	crt := &cobra.Command{Use: "clusterRT", Short: "List All clusters Message Send RT",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error {
			for {
				if err := clusterRT(e, &rt); err != nil || !cmd.Flags().Changed("interval") {
					return err
				}
				time.Sleep(time.Duration(rt.interval) * time.Second)
			}
		})}
	crt.Flags().Int64VarP(&rt.amount, "amount", "a", 100, "message amount | default 100")
	crt.Flags().Int64VarP(&rt.size, "size", "s", 128, "message size | default 128 Byte")
	crt.Flags().StringVarP(&rt.cluster, "cluster", "c", "", "cluster name | default display all cluster")
	boolArgVarP(crt.Flags(), &rt.tlog, "print log", "p", false, "print as tlog | default false")
	crt.Flags().StringVarP(&rt.room, "machine room", "m", "noname", "machine room name | default noname")
	crt.Flags().Int64VarP(&rt.interval, "interval", "i", 10, "print interval | default 10 seconds (mqd: repeats only when given)")

	perm := func(use, short string, add bool) *cobra.Command {
		var name string
		c := &cobra.Command{Use: use, Short: short,
			RunE: runner(e, func(e *env, cmd *cobra.Command) error { return writePerm(e, name, add) })}
		c.Flags().StringVarP(&name, "brokerName", "b", "", "broker name")
		required(c, "brokerName")
		return c
	}
	return []*cobra.Command{
		withOutput(e, cl, true), withOutput(e, bs, true), withOutput(e, crt, true),
		withOutput(e, perm("wipeWritePerm", "Wipe write perm of broker in all name server", false), true),
		withOutput(e, perm("addWritePerm", "Add write perm of broker in all name server", true), true),
	}
}

// brokerRow is one broker address of clusterList.
type brokerRow struct {
	Cluster    string            `json:"cluster"`
	BrokerName string            `json:"brokerName"`
	BrokerID   int64             `json:"brokerId"`
	Addr       string            `json:"addr"`
	Runtime    map[string]string `json:"runtime,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// clusterRows walks clusters (sorted), broker names (sorted, as Java's
// TreeSet) and broker ids, fetching each address's runtime info.
func clusterRows(e *env) ([]brokerRow, error) {
	ci, err := e.admin().ClusterInfo()
	if err != nil {
		return nil, err
	}
	clusters := make([]string, 0, len(ci.ClusterAddrTable))
	for c := range ci.ClusterAddrTable {
		clusters = append(clusters, c)
	}
	sort.Strings(clusters)
	var rows []brokerRow
	for _, c := range clusters {
		names := append([]string(nil), ci.ClusterAddrTable[c]...)
		sort.Strings(names)
		for _, name := range names {
			bd, ok := ci.BrokerAddrTable[name]
			if !ok {
				continue
			}
			for _, id := range sortedIDs(bd) {
				r := brokerRow{Cluster: c, BrokerName: name, BrokerID: id, Addr: bd.BrokerAddrs[id]}
				if rt, err := e.admin().RuntimeInfo(r.Addr); err != nil {
					r.Error = err.Error()
				} else {
					r.Runtime = rt
				}
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

func sortedIDs(bd body.BrokerData) []int64 {
	ids := make([]int64, 0, len(bd.BrokerAddrs))
	for id := range bd.BrokerAddrs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func firstNumber(s string) float64 {
	f, _ := strconv.ParseFloat(strings.Fields(s + " 0")[0], 64)
	return f
}

func clusterBaseInfo(e *env) error {
	rows, err := clusterRows(e)
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(rows)
	}
	const f = "%-16s  %-22s  %-4s  %-22s %-16s %19s %19s %10s %5s %6s\n"
	e.printf(f, "#Cluster Name", "#Broker Name", "#BID", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)", "#PCWait(ms)", "#Hour", "#SPACE")
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(e.errOut, "mqadmin clusterList: %s\n", r.Error)
		}
		t := r.Runtime
		hour, space := 0.0, 0.0
		if ts := t["earliestMessageTimeStamp"]; ts != "" {
			if ms, err := strconv.ParseInt(ts, 10, 64); err == nil {
				hour = float64(e.now().UnixMilli()-ms) / 1000 / 60 / 60
			}
		}
		if s := t["commitLogDiskRatio"]; s != "" {
			space, _ = strconv.ParseFloat(s, 64)
		}
		e.printf(f, r.Cluster, r.BrokerName, strconv.FormatInt(r.BrokerID, 10), r.Addr, t["brokerVersionDesc"],
			fmt.Sprintf("%9.2f(%s,%sms)", firstNumber(t["putTps"]), t["sendThreadPoolQueueSize"], t["sendThreadPoolQueueHeadWaitTimeMills"]),
			fmt.Sprintf("%9.2f(%s,%sms)", firstNumber(t["getTransferedTps"]), t["pullThreadPoolQueueSize"], t["pullThreadPoolQueueHeadWaitTimeMills"]),
			t["pageCacheLockTimeMills"], fmt.Sprintf("%2.2f", hour), fmt.Sprintf("%.4f", space))
	}
	return nil
}

func clusterMoreStats(e *env) error {
	rows, err := clusterRows(e)
	if err != nil {
		return err
	}
	type more struct {
		Cluster, BrokerName                                    string
		InTotalYest, OutTotalYest, InTotalToday, OutTotalToday int64
	}
	var out []more
	for _, r := range rows {
		t := r.Runtime
		n := func(k string) int64 { v, _ := strconv.ParseInt(t[k], 10, 64); return v }
		out = append(out, more{r.Cluster, r.BrokerName,
			n("msgPutTotalTodayMorning") - n("msgPutTotalYesterdayMorning"),
			n("msgGetTotalTodayMorning") - n("msgGetTotalYesterdayMorning"),
			n("msgPutTotalTodayNow") - n("msgPutTotalTodayMorning"),
			n("msgGetTotalTodayNow") - n("msgGetTotalTodayMorning")})
	}
	if e.json() {
		return e.printJSON(out)
	}
	e.printf("%-16s  %-32s %14s %14s %14s %14s\n", "#Cluster Name", "#Broker Name", "#InTotalYest", "#OutTotalYest", "#InTotalToday", "#OutTotalToday")
	for _, m := range out {
		e.printf("%-16s  %-32s %14d %14d %14d %14d\n", m.Cluster, m.BrokerName, m.InTotalYest, m.OutTotalYest, m.InTotalToday, m.OutTotalToday)
	}
	return nil
}

func brokerStatus(e *env, addr, cluster string) error {
	addrs := []string{addr}
	if addr == "" {
		ci, err := e.admin().ClusterInfo()
		if err != nil {
			return err
		}
		if _, ok := ci.ClusterAddrTable[cluster]; !ok {
			return fmt.Errorf("cluster %s not found on the name server", cluster)
		}
		addrs = admin.AllAddrs(ci, cluster)
	}
	all := map[string]map[string]string{}
	for _, a := range addrs {
		t, err := e.admin().RuntimeInfo(a)
		if err != nil {
			return err
		}
		all[a] = t
		if e.json() {
			continue
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if cluster != "" && addr == "" {
				e.printf("%-24s %-32s: %s\n", a, k, t[k])
			} else {
				e.printf("%-32s: %s\n", k, t[k])
			}
		}
	}
	if e.json() {
		if addr != "" {
			return e.printJSON(all[addr])
		}
		return e.printJSON(all)
	}
	return nil
}

type rtOptions struct {
	amount, size, interval int64
	cluster, room          string
	tlog                   bool
}

func clusterRT(e *env, o *rtOptions) error {
	if o.amount < 2 {
		return cmdline.UsageError{Err: fmt.Errorf("-a %d: need at least 2 sends (the first is not timed)", o.amount)}
	}
	ci, err := e.admin().ClusterInfo()
	if err != nil {
		return err
	}
	clusters := make([]string, 0)
	if o.cluster != "" {
		clusters = append(clusters, o.cluster)
	} else {
		for c := range ci.ClusterAddrTable {
			clusters = append(clusters, c)
		}
		sort.Strings(clusters)
	}
	type rtRow struct {
		Cluster      string  `json:"cluster"`
		BrokerName   string  `json:"brokerName"`
		RT           float64 `json:"rt"`
		SuccessCount int     `json:"successCount"`
		FailCount    int     `json:"failCount"`
	}
	var rows []rtRow
	if !o.tlog && !e.json() {
		e.printf("%-24s  %-24s  %-4s  %-8s  %-8s\n", "#Cluster Name", "#Broker Name", "#RT", "#successCount", "#failCount")
	}
	payload := []byte(strings.Repeat("a", int(o.size)))
	for _, c := range clusters {
		names, ok := ci.ClusterAddrTable[c]
		if !ok {
			e.printf("cluster [%s] not exist", c)
			break
		}
		names = append([]string(nil), names...)
		sort.Strings(names)
		for _, name := range names {
			r := rtRow{Cluster: c, BrokerName: name}
			var elapsed time.Duration
			bd := ci.BrokerAddrTable[name]
			for i := int64(0); i < o.amount; i++ {
				start := time.Now()
				_, err := e.admin().SendMessage(bd.MasterAddr(), name, "CLUSTER_RT_PRODUCER", name, 0, "", "", payload)
				if err == nil {
					r.SuccessCount++
				} else {
					r.FailCount++
				}
				if i != 0 {
					elapsed += time.Since(start)
				}
			}
			r.RT = float64(elapsed.Milliseconds()) / float64(o.amount-1)
			rows = append(rows, r)
			switch {
			case e.json():
			case o.tlog:
				e.printf("%s|%s|%s|%s|%d\n", time.Now().Format("2006-01-02 15:04"), o.room, c, name, int64(math.Round(r.RT)))
			default:
				e.printf("%-24s  %-24s  %-8s  %-16d  %-16d\n", c, name, fmt.Sprintf("%.2f", r.RT), r.SuccessCount, r.FailCount)
			}
		}
	}
	if e.json() {
		return e.printJSON(rows)
	}
	return nil
}

func writePerm(e *env, brokerName string, add bool) error {
	ns := e.admin().NameServers()
	if len(ns) == 0 {
		return admin.ErrNoNameServer
	}
	verb := "wipe"
	if add {
		verb = "add"
	}
	type res struct {
		Namesrv string `json:"namesrv"`
		Topics  int    `json:"topics"`
		Error   string `json:"error,omitempty"`
	}
	var out []res
	failed := 0
	for _, addr := range ns {
		var n int
		var err error
		if add {
			n, err = e.admin().AddWritePerm(addr, brokerName)
		} else {
			n, err = e.admin().WipeWritePerm(addr, brokerName)
		}
		r := res{Namesrv: addr, Topics: n}
		if err != nil {
			failed++
			r.Error = err.Error()
			if !e.json() {
				e.printf("%s write perm of broker[%s] in name server[%s] Failed\n", verb, brokerName, addr)
				fmt.Fprintf(e.errOut, "mqadmin: %v\n", err)
			}
		} else if !e.json() {
			e.printf("%s write perm of broker[%s] in name server[%s] OK, %d\n", verb, brokerName, addr, n)
		}
		out = append(out, r)
	}
	if e.json() {
		if err := e.printJSON(out); err != nil {
			return err
		}
	}
	if failed == len(ns) {
		return fmt.Errorf("%s write perm failed on every name server", verb)
	}
	return nil
}
