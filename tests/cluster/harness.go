// Package cluster holds multi-process tests of replication: real mqd processes
// (3 name servers, broker-a and broker-b masters, each with a slave) started
// from the shipped configs/2m-2s-{async,sync} files with port, path and
// interval overrides, driven by the official Go client.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/tests"
)

// Cluster is a running 3 + 4 cluster.
type Cluster struct {
	Namesrv    []*tests.Process
	NamesrvArg string // "a;b;c"
	// Brokers by file name: broker-a, broker-a-s, broker-b, broker-b-s.
	Brokers map[string]*tests.Process
	// Files holds each broker's config file (a copy that tests may edit for a
	// SIGHUP reload).
	Files map[string]string
	// Stores holds each broker's storePathRootDir.
	Stores map[string]string
	Mode   string

	dir, tmp string // the mode's config directory; the test's files
}

// configsDir is the repository's configs directory.
func configsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "configs")
}

// Options tune a cluster.
type Options struct {
	Mode     string   // "async" or "sync"
	Brokers  []string // subset of broker-a, broker-a-s, broker-b, broker-b-s (nil: all)
	Namesrvs int      // 0: 3
	Extra    []string // --set overrides for every broker
	// NamesrvExtra are --set overrides for every name server (for example
	// namesrv.brokerChannelExpiredTime=4000).
	NamesrvExtra []string
	// BrokerExtra are --set overrides for one broker by file name, applied
	// after Extra (for example broker-a-s: haMasterAddress=host:port).
	BrokerExtra map[string][]string
}

// Start starts name servers and brokers; everything stops at test cleanup.
func Start(t *testing.T, o Options) *Cluster {
	t.Helper()
	if o.Namesrvs == 0 {
		o.Namesrvs = 3
	}
	if o.Brokers == nil {
		o.Brokers = []string{"broker-a", "broker-b", "broker-a-s", "broker-b-s"}
	}
	dir := filepath.Join(configsDir(), "2m-2s-"+o.Mode)
	c := &Cluster{Brokers: map[string]*tests.Process{}, Files: map[string]string{}, Stores: map[string]string{}, Mode: o.Mode}
	var addrs []string
	for range o.Namesrvs {
		args := []string{"namesrv", "-c", filepath.Join(dir, "namesrv.properties"),
			"--set", "listenPort=" + strconv.Itoa(tests.FreePort(t)), "--log-format", "json"}
		for _, e := range o.NamesrvExtra {
			args = append(args, "--set", e)
		}
		p := tests.StartProcess(t, args...)
		c.Namesrv = append(c.Namesrv, p)
		addrs = append(addrs, p.NameSrvAddr)
	}
	c.NamesrvArg = strings.Join(addrs, ";")
	c.dir, c.tmp = dir, t.TempDir()
	for _, name := range o.Brokers {
		c.AddBroker(t, name, name, append(append([]string(nil), o.Extra...), o.BrokerExtra[name]...)...)
	}
	return c
}

// AddBroker starts one more broker called name from the mode's file
// src.properties (a second slave: AddBroker(t, "broker-a-s2", "broker-a-s",
// "brokerId=2")), with the harness's port, path and interval overrides and
// then extra (--set values).
func (c *Cluster) AddBroker(t *testing.T, name, src string, extra ...string) *tests.Process {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, src+".properties"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.tmp, name+".properties")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Files[name] = file
	c.Stores[name] = filepath.Join(c.tmp, name, "store")
	args := append([]string{"broker", "-c", file, "-n", c.NamesrvArg, "--log-format", "json"}, brokerTestSets(t, c.Stores[name])...)
	args = append(args, "--set", "registerNameServerPeriod=10000")
	for _, e := range extra {
		args = append(args, "--set", e)
	}
	p := tests.StartProcess(t, args...)
	c.Brokers[name] = p
	return p
}

// brokerTestSets are the --set pairs every cluster test's broker gets: free
// ports, its store, loopback, small commit-log files and short replication
// intervals.
func brokerTestSets(t *testing.T, store string) []string {
	return []string{
		"--set", "listenPort=" + strconv.Itoa(tests.FreePort(t)),
		"--set", "haListenPort=" + strconv.Itoa(tests.FreePort(t)),
		"--set", "storePathRootDir=" + store,
		"--set", "brokerIP1=127.0.0.1",
		"--set", "mappedFileSizeCommitLog=4194304",
		"--set", "haSendHeartbeatInterval=500",
		"--set", "haHousekeepingInterval=5000",
		"--set", "ha.haReconnectInterval=200",
		"--set", "broker.slaveSyncInterval=500",
	}
}

// Master and Slave return a group's processes ("a" or "b").
func (c *Cluster) Master(group string) *tests.Process { return c.Brokers["broker-"+group] }

// Slave returns the slave of a group.
func (c *Cluster) Slave(group string) *tests.Process { return c.Brokers["broker-"+group+"-s"] }

// NS is the first name server's address (clients take one; the brokers all).
func (c *Cluster) NS() string { return c.Namesrv[0].NameSrvAddr }

// NSList is every name server, for clients that take a list.
func (c *Cluster) NSList() []string {
	out := make([]string, len(c.Namesrv))
	for i, p := range c.Namesrv {
		out[i] = p.NameSrvAddr
	}
	return out
}

// SetRole rewrites brokerRole in a broker's config file (for a SIGHUP reload).
func (c *Cluster) SetRole(t *testing.T, name, role string) {
	t.Helper()
	data, err := os.ReadFile(c.Files[name])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "brokerRole=") {
			l = "brokerRole=" + role
		}
		out = append(out, l)
	}
	if err := os.WriteFile(c.Files[name], []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) String() string {
	return fmt.Sprintf("%s cluster: namesrv %s", c.Mode, c.NamesrvArg)
}

// RouteAddrs asks the name server ns for topic's route and returns the
// addresses by broker id of group brokerName (nil: no route or no group).
func RouteAddrs(t *testing.T, ns, topic, brokerName string) map[int64]string {
	t.Helper()
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, ns, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil || resp.Code != remoting.Success {
		return nil
	}
	r, err := body.DecodeTopicRouteData(resp.Body)
	if err != nil {
		t.Fatalf("route of %s: %v", topic, err)
	}
	for _, bd := range r.BrokerDatas {
		if bd.BrokerName == brokerName {
			return bd.BrokerAddrs
		}
	}
	return nil
}

// CreateTopic creates topic with queues on group's master ("a" or "b") and
// waits until every name server routes it there: the broker registers the new
// topic in the background, and a producer that asks first fails with "route
// info not found".
func (c *Cluster) CreateTopic(t *testing.T, group, topic string, queues int) {
	t.Helper()
	tests.NewAdmin(t, c.NS()).CreateTopic(c.Master(group).BrokerAddr, topic, queues)
	for _, ns := range c.NSList() {
		tests.WaitFor(t, 30*time.Second, func() bool {
			return RouteAddrs(t, ns, topic, "broker-"+group)[0] != ""
		}, "route of %s at %s to broker-%s", topic, ns, group)
	}
}

// WaitRouteWithout waits until every name server routes topic's group
// brokerName to the slave only (the master's address dropped, the slave kept).
func (c *Cluster) WaitRouteWithout(t *testing.T, topic, brokerName string, id int64) {
	t.Helper()
	for _, ns := range c.NSList() {
		tests.WaitFor(t, 30*time.Second, func() bool {
			addrs := RouteAddrs(t, ns, topic, brokerName)
			_, has := addrs[id]
			return len(addrs) > 0 && !has
		}, "route of %s at %s without %s id %d", topic, ns, brokerName, id)
	}
}
