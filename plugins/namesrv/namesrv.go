// Package namesrv is the RocketMQ name server as mqd module "app.namesrv": it
// keeps the route tables brokers fill by registering every 30 s (topics → queue
// data, broker groups, clusters, live brokers), drops brokers whose connection
// closes or that stop registering, answers clients' route lookups in the JSON the
// official clients parse, and keeps the KV config (ORDER_TOPIC_CONFIG) on disk.
// Only the KV config survives a restart; routes are rebuilt from registrations.
package namesrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/protocols/remoting/secure"
)

func init() { kernel.RegisterModule(new(Namesrv)) }

// Namesrv is the name server app.
type Namesrv struct {
	settings settings
	log      zerolog.Logger
	routes   *RouteTable
	kv       *KVConfig

	server   *remoting.Server
	listener net.Listener
	// watcher delivers registrations announced through a registry other
	// than REGISTER_BROKER (discovery.mode=nats); nil otherwise.
	watcher discovery.Watcher
	// controller, with enableControllerInNamesrv, serves its requests on
	// this port too (it also listens on its own peer address).
	controller handlerProvider
	// sec is the port's ACL and TLS (protocols/remoting/secure); nil when
	// provisioned without a configuration.
	sec *secure.Endpoint

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// MQDModule implements kernel.Module.
func (*Namesrv) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: "app.namesrv", New: func() kernel.Module { return new(Namesrv) }}
}

// Provision reads namesrv.* and loads the KV config.
func (n *Namesrv) Provision(ctx kernel.Context) error {
	cfg := DefaultConfig()
	if ctx.Config != nil {
		if err := ctx.Config.Unmarshal("namesrv", &cfg); err != nil {
			return fmt.Errorf("namesrv config: %w", err)
		}
		sec, err := secure.Setup(ctx.Config, cfg.AclEnable, acl.Namesrv, ctx.Logger)
		if err != nil {
			return err
		}
		n.sec = sec
		if ctx.Config.Bool("namesrv.enableControllerInNamesrv") {
			m, err := ctx.LoadModule(controllerModule)
			if err != nil {
				return fmt.Errorf("enableControllerInNamesrv: %w", err)
			}
			hp, ok := m.(handlerProvider)
			if !ok {
				return fmt.Errorf("enableControllerInNamesrv: %s serves no requests", controllerModule)
			}
			n.controller = hp
		}
		// A discovery mode with a registry to watch feeds the routes too;
		// REGISTER_BROKER is served whatever the mode.
		if mode := ctx.Config.String(discovery.ModeKey); mode != "" && mode != "namesrv" {
			if info, err := kernel.GetModule(discovery.ModuleFor(mode)); err == nil {
				if _, watches := info.New().(discovery.Watcher); watches {
					m, err := ctx.LoadModule(info.ID)
					if err != nil {
						return err
					}
					n.watcher = m.(discovery.Watcher)
				}
			}
		}
	}
	return n.provision(cfg, ctx.Logger)
}

// handlerProvider is a module that serves requests on a remoting server: the
// controller (plugins/controller), loaded by ID so that the name server does
// not import it.
type handlerProvider interface {
	RegisterHandlers(*remoting.Server)
}

// controllerModule is the controller a name server embeds.
const controllerModule kernel.ModuleID = "app.controller"

func (n *Namesrv) provision(cfg Config, log zerolog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	kv, err := LoadKVConfig(cfg.KVConfigPath)
	if err != nil {
		return err
	}
	n.settings.cfg = cfg
	n.log = log
	n.kv = kv
	n.routes = NewRouteTable(log)
	n.stop = make(chan struct{})
	return nil
}

// Start listens on every interface at listenPort, serves requests and starts
// the expiry scanner.
func (n *Namesrv) Start() error {
	cfg := n.settings.get()
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.ListenPort)))
	if err != nil {
		return fmt.Errorf("namesrv listen: %w", err)
	}
	ln = n.sec.Listen(ln)
	n.listener = ln
	idle := time.Duration(cfg.ServerChannelMaxIdleTimeSeconds) * time.Second
	if idle == 0 {
		idle = -1 // as Netty's IdleStateHandler: 0 disables
	}
	n.server = remoting.NewServer(remoting.ServerConfig{
		MaxFrameSize:    cfg.MaxFrameSize,
		IdleTimeout:     idle,
		MaxConns:        cfg.MaxConnections,
		MaxConnsPerHost: cfg.MaxConnectionsPerHost,
		MaxInflight:     cfg.MaxInflightRequests,
		Guard:           n.sec.Guard(),
		Logger:          n.log,
	})
	n.sec.Start()
	n.registerHandlers(n.server)
	if n.controller != nil {
		n.controller.RegisterHandlers(n.server)
	}
	n.server.OnClose(n.onClose)

	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(ln); err != nil {
			n.log.Error().Err(err).Msg("namesrv serve stopped")
		}
	}()
	go func() {
		defer n.wg.Done()
		n.scanLoop()
	}()
	if n.watcher != nil {
		ctx, cancel := context.WithCancel(context.Background())
		n.wg.Add(2)
		go func() {
			defer n.wg.Done()
			<-n.stop
			cancel()
		}()
		go func() {
			defer n.wg.Done()
			n.watcher.Watch(ctx, watchSink{n})
		}()
		n.log.Info().Str("mode", string(n.watcher.MQDModule().ID)).Msg("serving routes from the discovery registry too")
	}
	n.sec.Describe(n.log.Info()).Str("role", "namesrv").Str("addr", ln.Addr().String()).Msg("listening")
	return nil
}

// ServedCodes lists the request codes the name server's port answers,
// an embedded controller's included (nil before Start).
func (n *Namesrv) ServedCodes() []int16 {
	if n.server == nil {
		return nil
	}
	return n.server.Codes()
}

// Addr returns a dialable address of the listener: its actual address, with an
// unspecified host (the listener binds every interface) reported as 127.0.0.1.
// It is "" before Start.
func (n *Namesrv) Addr() string {
	if n.listener == nil {
		return ""
	}
	a, ok := n.listener.Addr().(*net.TCPAddr)
	if !ok {
		return n.listener.Addr().String()
	}
	if a.IP == nil || a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	return a.String()
}

// Routes returns the route table (for the embedded broker and tests).
func (n *Namesrv) Routes() *RouteTable { return n.routes }

// Stop stops the scanner, drains and closes connections, and persists the KV
// config once more.
func (n *Namesrv) Stop(ctx kernel.StopContext) error {
	var errs []error
	n.stopOnce.Do(func() {
		close(n.stop)
		if n.server != nil {
			if err := n.server.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		n.wg.Wait()
		n.sec.Close()
		if n.kv != nil {
			if err := n.kv.Persist(); err != nil {
				errs = append(errs, err)
			}
		}
		n.log.Info().Str("role", "namesrv").Msg("stopped")
	})
	return errors.Join(errs...)
}

// onClose drops the brokers that registered over a closed connection at once,
// rather than after the expiry time.
func (n *Namesrv) onClose(c *remoting.Conn) {
	for _, rb := range n.routes.RemoveChannel(c) {
		n.log.Info().Str("cluster", rb.Cluster).Str("brokerName", rb.BrokerName).Int64("brokerId", rb.BrokerID).
			Str("brokerAddr", rb.BrokerAddr).Msg("broker removed: connection closed")
	}
}

// scanLoop drops brokers that stopped registering (Java's scanNotActiveBroker).
// The interval and expiry are re-read every round, since both are live keys.
func (n *Namesrv) scanLoop() {
	t := time.NewTimer(n.settings.scanInterval())
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.scanOnce(time.Now())
		t.Reset(n.settings.scanInterval())
	}
}

func (n *Namesrv) scanOnce(now time.Time) {
	expiry := n.settings.brokerExpiry()
	for _, rb := range n.routes.ScanNotActive(now, expiry) {
		n.log.Info().Str("cluster", rb.Cluster).Str("brokerName", rb.BrokerName).Int64("brokerId", rb.BrokerID).
			Str("brokerAddr", rb.BrokerAddr).Dur("expiry", expiry).Msg("broker removed: no registration within expiry")
		if rb.Channel != nil {
			rb.Channel.Close()
		}
	}
}

// watchSink turns what a discovery registry delivers into registrations of
// the route table, as REGISTER_BROKER and UNREGISTER_BROKER would.
type watchSink struct{ n *Namesrv }

func (w watchSink) Put(r *discovery.Registration) {
	reg := Registration{Cluster: r.ClusterName, BrokerName: r.BrokerName, BrokerAddr: r.BrokerAddr,
		BrokerID: r.BrokerID, HAServerAddr: r.HAServerAddr}
	if len(r.Body) > 0 {
		rb, err := body.DecodeRegisterBrokerBody(r.Body, false)
		if err != nil {
			w.n.log.Warn().Err(err).Str("brokerAddr", r.BrokerAddr).Msg("bad registration from the discovery registry; ignored")
			return
		}
		reg.Topics, reg.FilterServers = rb.TopicConfigSerializeWrapper, rb.FilterServerList
	}
	at := r.At
	if at.IsZero() || at.After(time.Now()) {
		at = time.Now()
	}
	if res := w.n.routes.Register(reg, at); res.New {
		w.n.log.Info().Str("cluster", reg.Cluster).Str("brokerName", reg.BrokerName).Int64("brokerId", reg.BrokerID).
			Str("brokerAddr", reg.BrokerAddr).Int("topics", len(reg.Topics.TopicConfigTable)).Msg("broker registered (discovery registry)")
	}
}

func (w watchSink) Delete(r *discovery.Registration) {
	if w.n.routes.Unregister(r.ClusterName, r.BrokerName, r.BrokerAddr, r.BrokerID) {
		w.n.log.Info().Str("brokerName", r.BrokerName).Int64("brokerId", r.BrokerID).Str("brokerAddr", r.BrokerAddr).
			Msg("broker unregistered (discovery registry)")
	}
}
