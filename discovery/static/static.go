// Package static is discovery.static: a broker that announces itself to no
// registry, and whose master (for a slave) is fixed in config
// (discovery.static.masterAddr and discovery.static.masterHaAddr). For tests
// and tiny deployments whose clients reach the broker without a name server
// (mqadmin -b, a slave pointed at its master). Logic lives in Answer so that
// the out-of-process example plugin (plugins/staticdiscovery) serves the
// same behaviour.
package static

import (
	"context"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
)

func init() {
	kernel.RegisterModule(new(Static))
	config.Register(
		config.Key{Path: "discovery.static.masterAddr", Default: "", Doc: "discovery.static: the master's remoting address host:port, for a slave"},
		config.Key{Path: "discovery.static.masterHaAddr", Default: "", Doc: "discovery.static: the master's replication address host:port, for a slave"},
	)
}

// Static answers every announcement with the configured master.
type Static struct {
	MasterAddr, MasterHAAddr string
}

// MQDModule implements kernel.Module.
func (*Static) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: "discovery.static", New: func() kernel.Module { return new(Static) }}
}

// Provision reads the master's addresses.
func (s *Static) Provision(ctx kernel.Context) error {
	s.MasterAddr = ctx.Config.String("discovery.static.masterAddr")
	s.MasterHAAddr = ctx.Config.String("discovery.static.masterHaAddr")
	return nil
}

// Answer is what a static registry answers any broker.
func (s *Static) Answer() discovery.Answer {
	return discovery.Answer{MasterAddr: s.MasterAddr, MasterHAAddr: s.MasterHAAddr}
}

// Announce implements discovery.Announcer.
func (s *Static) Announce(context.Context, *discovery.Registration) (discovery.Answer, error) {
	return s.Answer(), nil
}

// Withdraw implements discovery.Announcer: there is nothing to withdraw.
func (s *Static) Withdraw(context.Context, *discovery.Registration) error { return nil }

var _ discovery.Announcer = (*Static)(nil)
