// Package broker is the RocketMQ broker role as mqd module "app.broker": it serves
// producers and consumers over the remoting protocol (send, pull with long polling,
// offsets, heartbeats, topic and group administration), keeps the broker's metadata
// (topics.json, consumerOffset.json, subscriptionGroup.json) and registers with the
// name servers. Messages live in the storage plugin chosen by store.engine.
package broker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
	"github.com/mqd/mqd/protocols/remoting/secure"
	"github.com/mqd/mqd/storage"
)

func init() { kernel.RegisterModule(new(Broker)) }

// Broker is the broker app.
type Broker struct {
	cfg      Config
	storeCfg storage.Options
	// storeSyncFlush: records become readable only at the group commit.
	storeSyncFlush bool
	log            zerolog.Logger
	store          storage.Store

	server    *remoting.Server
	listener  net.Listener
	nsClient  *remoting.Client    // to masters and clients (slave sync, relays)
	discovery discovery.Announcer // how the broker announces itself (discovery.mode)

	// addr is the advertised address brokerIP1:port; storeHost is the same as a
	// netip for message records and offset message IDs.
	addr      string
	storeHost netip.AddrPort
	configDir string // <storePathRootDir>/config

	topics    *TopicConfigManager
	subGroups *SubscriptionGroupManager
	offsets   *ConsumerOffsetManager
	clients   *ClientManager
	locks     *QueueLockManager
	pullHold  *PullHoldService
	ha        *haService       // replication (ha.go)
	schedule  *scheduleService // delay levels (schedule.go)
	timers    *timerService    // timer messages (timer.go)
	tx        *txService       // transaction check-back state (txcheck.go)

	stats brokerStats
	// liveCfg is the configuration after runtime updates (liveconfig.go);
	// nil until the first one. cfg itself never changes after Provision.
	liveCfg    atomic.Pointer[Config]
	liveMu     sync.Mutex
	metrics    metricsServer // Prometheus /metrics (metrics.go)
	groupStats groupGetStats // per group and topic, for GET_CONSUME_STATS
	bootTime   time.Time

	// replicas is set when this module is the supervisor of controller
	// mode, which runs the broker of the current role in a child kernel;
	// controlled is set on that broker (replicas.go).
	replicas   *replicaManager
	controlled *replicaManager
	// keepRegistration: Stop leaves the name servers' entry, which the
	// broker of the next role replaces (a name server drops the other ids
	// of one address), so that the group's route never goes empty.
	keepRegistration atomic.Bool

	// sec is the ACL and TLS of the remoting and HA ports and the signing
	// of the broker's own requests (protocols/remoting/secure).
	sec *secure.Endpoint

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// MQDModule implements kernel.Module.
func (*Broker) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: "app.broker", New: func() kernel.Module { return new(Broker) }}
}

// Provision reads the configuration and loads the storage engine.
func (b *Broker) Provision(ctx kernel.Context) error {
	b.log = ctx.Logger
	if err := ctx.Config.Unmarshal("broker", &b.cfg); err != nil {
		return fmt.Errorf("broker config: %w", err)
	}
	if err := ctx.Config.Unmarshal("store", &b.storeCfg); err != nil {
		return fmt.Errorf("store config: %w", err)
	}
	if ctx.Config.Bool("broker.enableControllerMode") {
		return b.provisionReplicas(ctx) // the role's broker is built at Start
	}
	sec, err := secure.Setup(ctx.Config, b.cfg.AclEnable, acl.Broker, b.log)
	if err != nil {
		return err
	}
	b.sec = sec
	b.provisionOps(ctx)
	b.storeSyncFlush = strings.EqualFold(strings.TrimSpace(b.storeCfg.FlushDiskType), storage.SyncFlush)
	engine := storage.EngineModule(ctx.Config.String("store.engine"))
	mod, err := ctx.LoadModule(kernel.ModuleID(engine))
	if err != nil {
		return err
	}
	st, ok := mod.(storage.Store)
	if !ok {
		return fmt.Errorf("store.engine %s is not a storage engine", engine)
	}
	b.store = st
	mode := ctx.Config.String(discovery.ModeKey)
	dm, err := ctx.LoadModule(discovery.ModuleFor(mode))
	if err != nil {
		return fmt.Errorf("%s=%s: %w", discovery.ModeKey, mode, err)
	}
	if b.discovery, ok = dm.(discovery.Announcer); !ok {
		return fmt.Errorf("%s=%s: %s is not a discovery mode", discovery.ModeKey, mode, discovery.ModuleFor(mode))
	}
	if err := b.provisionHA(ctx); err != nil {
		return err
	}
	b.configDir = b.storeCfg.ConfigDir()
	b.stop = make(chan struct{})
	b.bootTime = time.Now()
	return b.provisionManagers()
}

// Validate checks the configuration.
func (b *Broker) Validate() error {
	if b.cfg.ListenPort < 0 || b.cfg.ListenPort > 65535 {
		return fmt.Errorf("broker.listenPort %d out of range", b.cfg.ListenPort)
	}
	if b.cfg.BrokerName == "" {
		return fmt.Errorf("broker.brokerName must not be empty")
	}
	if b.cfg.MaxMessageSize <= 0 {
		return fmt.Errorf("broker.maxMessageSize must be positive")
	}
	if b.cfg.MaxConnections < 0 || b.cfg.MaxConnectionsPerHost < 0 || b.cfg.MaxInflightRequests < 0 {
		return fmt.Errorf("broker.maxConnections, maxConnectionsPerHost and maxInflightRequests must not be negative (0: no bound)")
	}
	return nil
}

// Start listens and starts the background services.
func (b *Broker) Start() error {
	if b.replicas != nil {
		return b.replicas.start()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(b.cfg.ListenPort)))
	if err != nil {
		return fmt.Errorf("broker listen on port %d: %w", b.cfg.ListenPort, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln = b.sec.Listen(ln)
	b.listener = ln
	ip := b.cfg.BrokerIP1
	if ip == "" {
		ip = defaultAdvertiseIP()
	}
	b.addr = net.JoinHostPort(ip, strconv.Itoa(port))
	if ap, err := netip.ParseAddrPort(b.addr); err == nil {
		b.storeHost = ap
	} else {
		b.storeHost = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
	}

	b.server = remoting.NewServer(remoting.ServerConfig{
		MaxFrameSize:    b.cfg.MaxFrameSize,
		IdleTimeout:     time.Duration(b.cfg.ServerChannelMaxIdleSeconds) * time.Second,
		MaxConns:        b.cfg.MaxConnections,
		MaxConnsPerHost: b.cfg.MaxConnectionsPerHost,
		MaxInflight:     b.cfg.MaxInflightRequests,
		Guard:           b.sec.Guard(),
		Logger:          b.log,
	})
	b.sec.Start()
	b.registerHandlers()
	b.server.OnClose(b.onConnClose)
	b.nsClient = remoting.NewClient(b.sec.Client(remoting.ClientConfig{Logger: b.log}))
	b.store.SetArrivalListener(b.notifyArrival) // wakes schedule levels, timers and parked pulls

	if b.controlled != nil {
		if err := b.controlled.prepare(b); err != nil {
			ln.Close()
			return err
		}
	}
	if err := b.startHA(); err != nil {
		ln.Close()
		return err
	}
	if b.controlled != nil {
		b.controlled.started(b)
	}
	b.adoptStore() // before services read offsets and the first registration (adopt.go)
	if err := b.startServices(); err != nil {
		ln.Close()
		return err
	}
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		b.stats.runSampler(b.stop)
	}()
	go func() {
		defer b.wg.Done()
		if err := b.server.Serve(ln); err != nil {
			b.log.Error().Err(err).Msg("broker server stopped")
		}
	}()
	b.sec.Describe(b.log.Info()).Str("role", "broker").Str("addr", ln.Addr().String()).Str("advertised", b.addr).
		Str("brokerName", b.cfg.BrokerName).Int64("brokerId", b.cfg.BrokerID).Msg("listening")
	return nil
}

// Stop stops accepting, answers parked pulls, finishes in-flight requests,
// persists metadata and unregisters from the name servers.
func (b *Broker) Stop(ctx context.Context) error {
	if b.replicas != nil {
		return b.replicas.stopAll(ctx)
	}
	var err error
	b.stopOnce.Do(func() {
		close(b.stop)
		b.pullHold.Shutdown()
		if b.server != nil {
			err = b.server.Shutdown(ctx)
		}
		b.wg.Wait()
		b.stopHA(ctx) // after the last send waited on it
		b.stopServices(ctx)
		if b.nsClient != nil {
			b.nsClient.Close()
		}
		b.sec.Close()
	})
	return err
}

// ServedCodes lists the request codes the broker's port answers (nil
// before Start).
func (b *Broker) ServedCodes() []int16 {
	if b.server == nil {
		return nil
	}
	return b.server.Codes()
}

// Addr returns the advertised broker address (brokerIP1:port).
func (b *Broker) Addr() string { return b.addr }

// ListenAddr returns the address the broker listens on.
func (b *Broker) ListenAddr() net.Addr {
	if b.listener == nil {
		return nil
	}
	return b.listener.Addr()
}

// Store returns the storage engine (for tests and tools in-process).
func (b *Broker) Store() storage.Store { return b.store }

// defaultAdvertiseIP picks the first non-loopback IPv4 address, as RocketMQ does,
// falling back to loopback.
func defaultAdvertiseIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if v4 := ipn.IP.To4(); v4 != nil && !v4.IsLoopback() && !v4.IsLinkLocalUnicast() {
					return v4.String()
				}
			}
		}
	}
	return "127.0.0.1"
}
