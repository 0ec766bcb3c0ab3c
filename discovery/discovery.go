// Package discovery is the plugin kind ("discovery.*") through which a broker
// announces itself and learns what its registry tells it (its master's
// addresses, the order-topic table): the Announcer interface, the
// registration it carries, and the discovery.mode key that picks the module.
// Built-ins: discovery.namesrv (RocketMQ name servers, the default),
// discovery.static (a fixed master from config; no registry) and
// discovery.nats (a NATS JetStream key-value bucket that name servers watch:
// the Watcher side). An installed
// discovery plugin is module discovery.<name> (discovery/external).
// discovery/discoverytest is the conformance suite. docs/architecture.md,
// "Plugin kinds", and docs/plugins.md describe them.
package discovery

import (
	"context"
	"errors"
	"time"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
)

// Registration is what a broker announces: the fields of REGISTER_BROKER's
// header and its body (a RegisterBrokerBody: the topic table with its data
// version), as RocketMQ name servers receive it.
type Registration struct {
	ClusterName  string
	BrokerName   string
	BrokerAddr   string
	HAServerAddr string
	BrokerID     int64
	Body         []byte
	// At is when the registry recorded it (set by Watchers; zero: now). A
	// name server expires a broker that many seconds after it, so an entry
	// delivered again after a re-watch does not look fresh.
	At time.Time
}

// Answer is what the registry tells the broker.
type Answer struct {
	// MasterAddr and MasterHAAddr are the remoting and replication
	// addresses of the master of the broker's group, for a slave ("" when
	// not known).
	MasterAddr   string
	MasterHAAddr string
	// OrderTopics is the ORDER_TOPIC_CONFIG table; HasOrderTopics says
	// whether the registry keeps one (a nil table then means no topic is
	// ordered).
	OrderTopics    map[string]string
	HasOrderTopics bool
}

// Announcer is a discovery mode on the broker's side. Implementations are
// kernel modules, safe for concurrent use.
type Announcer interface {
	kernel.Module
	// Announce publishes the registration (the broker calls it at start,
	// every registerNameServerPeriod and on every topic change) and returns
	// the registry's answer. An error means no registry took it; the
	// broker logs it and announces again next period.
	Announce(ctx context.Context, r *Registration) (Answer, error)
	// Withdraw removes the registration at a clean stop.
	Withdraw(ctx context.Context, r *Registration) error
}

// Watcher is a discovery mode on the name server's side: the registrations
// brokers announced to it, delivered as they come (a name server serves
// routes from them as from REGISTER_BROKER). Implementations are modules.
type Watcher interface {
	kernel.Module
	// Watch delivers every current registration, then each change, until
	// ctx ends. It keeps trying while the registry is unreachable.
	Watch(ctx context.Context, sink Sink)
}

// Sink receives what a Watcher sees.
type Sink interface {
	// Put is a registration announced (again).
	Put(r *Registration)
	// Delete is a registration withdrawn.
	Delete(r *Registration)
}

// ErrNoRegistry: the mode has nowhere to announce (no name server set).
var ErrNoRegistry = errors.New("discovery: no registry configured")

// ModeKey is the config key naming the discovery module of both roles.
const ModeKey = "discovery.mode"

// ModuleFor is the module of a discovery.mode value.
func ModuleFor(mode string) kernel.ModuleID { return kernel.ModuleID("discovery." + mode) }

func init() {
	config.Register(config.Key{Path: ModeKey, Default: "namesrv",
		Doc: "how brokers announce themselves and name servers learn of them: namesrv (REGISTER_BROKER to the name servers), nats (a JetStream key-value bucket), static (a fixed master, no registry) or an installed discovery plugin's name"})
}
