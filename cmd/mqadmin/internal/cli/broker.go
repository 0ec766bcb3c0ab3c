package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
)

func brokerCommands(e *env) []*cobra.Command {
	var addr, cluster string
	gbc := &cobra.Command{Use: "getBrokerConfig", Short: "Get broker config by cluster or special broker!",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return getBrokerConfig(e, addr, cluster) })}
	gbc.Flags().StringVarP(&addr, "brokerAddr", "b", "", "get which broker")
	gbc.Flags().StringVarP(&cluster, "clusterName", "c", "", "get which cluster")
	gbc.MarkFlagsOneRequired("brokerAddr", "clusterName")

	var key, value string
	ubc := &cobra.Command{Use: "updateBrokerConfig", Short: "Update broker's config",
		RunE: runner(e, func(e *env, cmd *cobra.Command) error { return updateBrokerConfig(e, addr, cluster, key, value) })}
	ubc.Flags().StringVarP(&addr, "brokerAddr", "b", "", "update which broker")
	ubc.Flags().StringVarP(&cluster, "clusterName", "c", "", "update which cluster")
	ubc.Flags().StringVarP(&key, "key", "k", "", "config key")
	ubc.Flags().StringVarP(&value, "value", "v", "", "config value")
	required(ubc, "key", "value")
	ubc.MarkFlagsOneRequired("brokerAddr", "clusterName")

	return []*cobra.Command{withOutput(e, gbc, true), withOutput(e, ubc, true)}
}

func getBrokerConfig(e *env, addr, cluster string) error {
	a := e.admin()
	type target struct{ header, addr string }
	var targets []target
	if addr != "" {
		addr = strings.TrimSpace(addr)
		targets = append(targets, target{fmt.Sprintf("============%s============\n", addr), addr})
	} else {
		ci, err := a.ClusterInfo()
		if err != nil {
			return err
		}
		if _, ok := ci.ClusterAddrTable[cluster]; !ok {
			return fmt.Errorf("cluster %s not found on the name server", cluster)
		}
		for _, name := range admin.BrokerNames(ci, cluster) {
			bd := ci.BrokerAddrTable[name]
			m := bd.MasterAddr()
			if m == "" {
				continue
			}
			targets = append(targets, target{fmt.Sprintf("============Master: %s============\n", m), m})
			for _, id := range sortedIDs(bd) {
				if id != 0 {
					s := bd.BrokerAddrs[id]
					targets = append(targets, target{fmt.Sprintf("============My Master: %s=====Slave: %s============\n", m, s), s})
				}
			}
		}
	}
	all := map[string]map[string]string{}
	for _, t := range targets {
		props, err := a.BrokerConfig(t.addr)
		if err != nil {
			return err
		}
		if e.json() {
			m := make(map[string]string, len(props))
			for _, p := range props {
				m[p.Key] = p.Value
			}
			all[t.addr] = m
			continue
		}
		e.printf("%s", t.header)
		if len(props) == 0 {
			e.printf("Broker[%s] has no config property!\n", t.addr)
			continue
		}
		for _, p := range props {
			e.printf("%-50s=  %s\n", p.Key, p.Value)
		}
		e.printf("\n")
	}
	if e.json() {
		if addr != "" {
			return e.printJSON(all[addr])
		}
		return e.printJSON(all)
	}
	return nil
}

func updateBrokerConfig(e *env, addr, cluster, key, value string) error {
	a := e.admin()
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	var addrs []string
	if addr != "" {
		addrs = []string{strings.TrimSpace(addr)}
	} else {
		ci, err := a.ClusterInfo()
		if err != nil {
			return err
		}
		if _, ok := ci.ClusterAddrTable[cluster]; !ok {
			return fmt.Errorf("cluster %s not found on the name server", cluster)
		}
		addrs = admin.MasterAddrs(ci, cluster) // Java updates masters only
	}
	sort.Strings(addrs)
	for _, b := range addrs {
		if err := a.UpdateBrokerConfig(b, []admin.Property{{Key: key, Value: value}}); err != nil {
			return err
		}
		if !e.json() {
			e.printf("update broker config success, %s\n", b)
		}
	}
	if e.json() {
		return e.printJSON(map[string]any{"brokers": addrs, "key": key, "value": value})
	}
	return nil
}
