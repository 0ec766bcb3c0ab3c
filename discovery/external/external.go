// Package external makes an installed discovery plugin (kind "discovery",
// run by kernel/pluginhost) a discovery mode like the built-ins: module
// discovery.<name>, a discovery.Announcer whose Announce and Withdraw are
// calls to the plugin (docs/plugins.md). A registration happens every
// registerNameServerPeriod, not per message, so a call per announcement
// costs nothing that matters. While the plugin is down (crashed,
// restarting) Announce fails and the broker announces again next period.
package external

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/plugins/sdk/pluginpb"
)

func init() {
	pluginhost.RegisterKind("discovery", func(dir string, e pluginhost.Entry) kernel.Module { return &Mode{dir: dir, entry: e} })
}

// Mode is the discovery mode of one installed plugin.
type Mode struct {
	dir   string
	entry pluginhost.Entry

	log    zerolog.Logger
	values map[string]string
	proc   *pluginhost.Process

	mu   sync.Mutex
	conn *grpc.ClientConn // nil while the plugin is down
}

// MQDModule implements kernel.Module.
func (m *Mode) MQDModule() kernel.ModuleInfo {
	dir, e := m.dir, m.entry
	return kernel.ModuleInfo{ID: kernel.ModuleID(e.ModuleID()), External: e.Path(dir),
		New: func() kernel.Module { return &Mode{dir: dir, entry: e} }}
}

// Provision reads the plugin's keys.
func (m *Mode) Provision(ctx kernel.Context) error {
	m.log = ctx.Logger
	m.values = m.entry.Values(ctx.Config)
	return nil
}

// Start starts the plugin; its first start must succeed.
func (m *Mode) Start() error {
	proc, err := pluginhost.Start(m.dir, m.entry, m.log, pluginhost.Hooks{
		Started: func(ctx context.Context, conn *grpc.ClientConn) error {
			if _, err := pluginpb.NewPluginClient(conn).Configure(ctx, &pluginpb.ConfigureRequest{Values: m.values}); err != nil {
				return fmt.Errorf("configure: %w", err)
			}
			m.mu.Lock()
			m.conn = conn
			m.mu.Unlock()
			return nil
		},
		Down: func(error) {
			m.mu.Lock()
			m.conn = nil
			m.mu.Unlock()
		},
	})
	if err != nil {
		return err
	}
	m.proc = proc
	return nil
}

// Stop stops the plugin (after the broker withdrew).
func (m *Mode) Stop(context.Context) error {
	if m.proc != nil {
		m.proc.Stop()
	}
	return nil
}

func (m *Mode) client() (pluginpb.DiscoveryClient, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil, fmt.Errorf("discovery plugin %s is down (restarting)", m.entry.Name)
	}
	return pluginpb.NewDiscoveryClient(m.conn), nil
}

func registrationOf(r *discovery.Registration) *pluginpb.Registration {
	return &pluginpb.Registration{ClusterName: r.ClusterName, BrokerName: r.BrokerName, BrokerAddr: r.BrokerAddr,
		HaServerAddr: r.HAServerAddr, BrokerId: r.BrokerID, Body: r.Body}
}

// Announce implements discovery.Announcer.
func (m *Mode) Announce(ctx context.Context, r *discovery.Registration) (discovery.Answer, error) {
	c, err := m.client()
	if err != nil {
		return discovery.Answer{}, err
	}
	a, err := c.Announce(ctx, registrationOf(r))
	if err != nil {
		return discovery.Answer{}, fmt.Errorf("discovery plugin %s: %w", m.entry.Name, err)
	}
	return discovery.Answer{MasterAddr: a.GetMasterAddr(), MasterHAAddr: a.GetMasterHaAddr(),
		OrderTopics: a.GetOrderTopics(), HasOrderTopics: a.GetHasOrderTopics()}, nil
}

// Withdraw implements discovery.Announcer.
func (m *Mode) Withdraw(ctx context.Context, r *discovery.Registration) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	if _, err := c.Withdraw(ctx, registrationOf(r)); err != nil {
		return errors.Join(fmt.Errorf("discovery plugin %s", m.entry.Name), err)
	}
	return nil
}

var _ discovery.Announcer = (*Mode)(nil)
