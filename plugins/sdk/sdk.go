// Package sdk is what an mqd plugin imports: it serves the plugin protocol
// (pluginpb, over hashicorp/go-plugin's gRPC transport) so that a plugin
// author writes only the plugin's decisions. docs/plugins.md describes the
// protocol, installation and the host's guarantees.
//
// A replication-mode plugin ("ha" kind) decides which slaves must confirm a
// write before the master acknowledges it; the master's own waiters apply
// that policy to every send, so the plugin is asked only when the set of
// slaves changes, never per message. A complete plugin that acknowledges once
// K slaves confirmed:
//
//	package main
//
//	import (
//		"fmt"
//		"strconv"
//
//		"github.com/mqd/mqd/plugins/sdk"
//	)
//
//	type quorum struct{ acks int }
//
//	func (q *quorum) Configure(values map[string]string, dryRun bool) error {
//		n, err := strconv.Atoi(values["acks"])
//		if err != nil || n < 1 {
//			return fmt.Errorf("plugin.quorum.acks must be a positive integer, got %q", values["acks"])
//		}
//		if !dryRun {
//			q.acks = n
//		}
//		return nil
//	}
//
//	func (q *quorum) Policy(m sdk.Membership) sdk.Policy {
//		return sdk.Policy{MinAcks: q.acks, Reason: fmt.Sprintf("%d of %d slaves", q.acks, len(m.Slaves))}
//	}
//
//	func main() {
//		sdk.ServeReplication(sdk.Info{Name: "quorum", Version: "1.0.0",
//			Keys: []sdk.Key{{Name: "acks", Default: "1", Doc: "slaves that must confirm a write"}}},
//			&quorum{acks: 1})
//	}
//
// Build it with go build, install it with `mqd plugin install ./quorum`, and
// select it with ha.mode=quorum (or swap to it: `mqd swap ha quorum`).
package sdk

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/mqd/mqd/plugins/sdk/pluginpb"
)

// Info is what a plugin says of itself in its Hello.
type Info struct {
	// Name is the module name under the plugin's kind: "quorum" serves as
	// module ha.quorum, selected with ha.mode=quorum.
	Name    string
	Version string
	// Capabilities are free-form words the host shows operators.
	Capabilities []string
	// Keys are the plugin's own configuration keys, set by operators as
	// plugin.<Name>.<key> and handed to Configure.
	Keys []Key
}

// Key is one configuration key of a plugin.
type Key struct {
	Name    string
	Default string
	Doc     string
}

// Membership is the master's set of connected slaves.
type Membership struct {
	Slaves []Slave
}

// Slave is one connected slave.
type Slave struct {
	Addr      string // identifies the slave
	Confirmed int64  // commit-log offset it last confirmed
}

// Policy is when a write counts as replicated: once MinAcks slaves, all of
// Required among them, have confirmed it. MinAcks 0 acknowledges at once.
// When fewer slaves are connected, sends wait for them up to the broker's
// syncFlushTimeout and then answer FLUSH_SLAVE_TIMEOUT.
type Policy struct {
	MinAcks  int
	Required []string
	Reason   string
}

// Replication is a replication-mode plugin.
type Replication interface {
	// Configure checks the plugin's keys (all of them, defaults filled in)
	// and, unless dryRun, applies them. An error refuses the broker's start
	// or reload with its message.
	Configure(values map[string]string, dryRun bool) error
	// Policy decides for a membership; it is called whenever the
	// membership changes or Configure applied new values.
	Policy(m Membership) Policy
}

// Logger writes JSON lines to stderr, which the host routes into its own log
// under the plugin's name.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: os.Stderr, JSONFormat: true, Level: hclog.Debug})
}

// hostGoneCheck bounds how long a plugin outlives its host: the host kills
// it with a parent-death signal, and this check covers a host that could
// not (a plugin started some other way, or a platform without it).
const hostGoneCheck = time.Second

// ServeReplication serves a replication-mode plugin until the host stops it
// or goes away; it does not return.
func ServeReplication(info Info, r Replication) {
	repl := &replicationServer{impl: r}
	serve(info, "ha", &pluginpb.GoPlugin{Replication: repl}, repl.impl.Configure, repl.reconsider)
}

// Registration is what a broker announces (REGISTER_BROKER's fields; Body
// is the RegisterBrokerBody JSON with the broker's topic table).
type Registration struct {
	ClusterName, BrokerName, BrokerAddr, HAServerAddr string
	BrokerID                                          int64
	Body                                              []byte
}

// Answer is what the registry tells the broker: for a slave its master's
// addresses; the order-topic table when the registry keeps one.
type Answer struct {
	MasterAddr, MasterHAAddr string
	OrderTopics              map[string]string
	HasOrderTopics           bool
}

// Discovery is a discovery-mode plugin: how a broker announces itself.
type Discovery interface {
	Configure(values map[string]string, dryRun bool) error
	Announce(ctx context.Context, r Registration) (Answer, error)
	Withdraw(ctx context.Context, r Registration) error
}

// ServeDiscovery serves a discovery plugin until the host stops it or goes
// away; it does not return.
func ServeDiscovery(info Info, d Discovery) {
	serve(info, "discovery", &pluginpb.GoPlugin{Discovery: &discoveryServer{impl: d}}, d.Configure, nil)
}

type discoveryServer struct {
	pluginpb.UnimplementedDiscoveryServer
	impl Discovery
}

func registrationOf(r *pluginpb.Registration) Registration {
	return Registration{ClusterName: r.GetClusterName(), BrokerName: r.GetBrokerName(), BrokerAddr: r.GetBrokerAddr(),
		HAServerAddr: r.GetHaServerAddr(), BrokerID: r.GetBrokerId(), Body: r.GetBody()}
}

func (s *discoveryServer) Announce(ctx context.Context, r *pluginpb.Registration) (*pluginpb.Answer, error) {
	a, err := s.impl.Announce(ctx, registrationOf(r))
	if err != nil {
		return nil, err
	}
	return &pluginpb.Answer{MasterAddr: a.MasterAddr, MasterHaAddr: a.MasterHAAddr, OrderTopics: a.OrderTopics, HasOrderTopics: a.HasOrderTopics}, nil
}

func (s *discoveryServer) Withdraw(ctx context.Context, r *pluginpb.Registration) (*pluginpb.WithdrawReply, error) {
	if err := s.impl.Withdraw(ctx, registrationOf(r)); err != nil {
		return nil, err
	}
	return &pluginpb.WithdrawReply{}, nil
}

// serve runs go-plugin with the Plugin service (Hello, and Configure
// through configure; applied, when set, after new values were applied)
// and the kind's service in gp.
func serve(info Info, kind string, gp *pluginpb.GoPlugin, configure func(map[string]string, bool) error, applied func()) {
	log := Logger(info.Name)
	go watchHost(log)
	gp.Plugin = &pluginServer{info: info, kind: kind, configure: configure, applied: applied}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pluginpb.Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{pluginpb.ProtocolVersion: {pluginpb.GoPluginName: gp}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           log,
	})
	os.Exit(0)
}

// watchHost exits the plugin within hostGoneCheck of its host's end: the
// parent changes (the plugin was re-parented) or the host's pid is gone.
func watchHost(log hclog.Logger) {
	parent := os.Getppid()
	for range time.Tick(hostGoneCheck) {
		if os.Getppid() != parent || syscall.Kill(parent, 0) == syscall.ESRCH {
			log.Warn("host is gone; exiting", "host_pid", parent)
			os.Exit(1)
		}
	}
}

type pluginServer struct {
	pluginpb.UnimplementedPluginServer
	info      Info
	kind      string
	configure func(map[string]string, bool) error
	applied   func()
}

func (s *pluginServer) Hello(context.Context, *pluginpb.HelloRequest) (*pluginpb.HelloReply, error) {
	rep := &pluginpb.HelloReply{Kind: s.kind, Name: s.info.Name, Version: s.info.Version, Capabilities: s.info.Capabilities}
	for _, k := range s.info.Keys {
		rep.Keys = append(rep.Keys, &pluginpb.ConfigKey{Name: k.Name, DefaultValue: k.Default, Doc: k.Doc})
	}
	return rep, nil
}

func (s *pluginServer) Configure(_ context.Context, req *pluginpb.ConfigureRequest) (*pluginpb.ConfigureReply, error) {
	values := map[string]string{}
	for _, k := range s.info.Keys {
		values[k.Name] = k.Default
	}
	for k, v := range req.GetValues() {
		values[k] = v
	}
	if err := s.configure(values, req.GetDryRun()); err != nil {
		return nil, err
	}
	if !req.GetDryRun() && s.applied != nil {
		s.applied()
	}
	return &pluginpb.ConfigureReply{}, nil
}

// replicationServer answers each membership with the plugin's policy,
// sending only policies that differ from the last one sent.
type replicationServer struct {
	pluginpb.UnimplementedReplicationServer
	impl Replication

	mu   sync.Mutex
	kick chan struct{} // the open stream's: Configure applied new values
}

func (s *replicationServer) reconsider() {
	s.mu.Lock()
	k := s.kick
	s.mu.Unlock()
	if k != nil {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

func (s *replicationServer) Policy(stream pluginpb.Replication_PolicyServer) error {
	kick := make(chan struct{}, 1)
	s.mu.Lock()
	s.kick = kick
	s.mu.Unlock()
	in := make(chan *pluginpb.Membership)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case in <- m:
			case <-stream.Context().Done(): // Policy returned
				return
			}
		}
	}()
	var cur *Membership
	var sent *pluginpb.ReplicationPolicy
	for {
		select {
		case err := <-errc:
			return err
		case pm := <-in:
			var m Membership
			for _, sl := range pm.GetSlaves() {
				m.Slaves = append(m.Slaves, Slave{Addr: sl.GetAddr(), Confirmed: sl.GetConfirmed()})
			}
			cur = &m
		case <-kick:
			if cur == nil {
				continue
			}
		}
		p := s.impl.Policy(*cur)
		if p.MinAcks < 0 {
			return fmt.Errorf("policy with %d acknowledgements", p.MinAcks)
		}
		next := &pluginpb.ReplicationPolicy{MinAcks: uint32(p.MinAcks), Required: p.Required, Reason: p.Reason}
		if sent != nil && samePolicy(sent, next) {
			continue
		}
		if err := stream.Send(next); err != nil {
			return err
		}
		sent = next
	}
}

func samePolicy(a, b *pluginpb.ReplicationPolicy) bool {
	if a.GetMinAcks() != b.GetMinAcks() || a.GetReason() != b.GetReason() || len(a.GetRequired()) != len(b.GetRequired()) {
		return false
	}
	for i, r := range a.GetRequired() {
		if b.GetRequired()[i] != r {
			return false
		}
	}
	return true
}
