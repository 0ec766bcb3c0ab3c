package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
)

// Timing of the metadata services.
const (
	minRegisterPeriod  = 10 * time.Second
	maxRegisterPeriod  = 60 * time.Second
	clientScanPeriod   = 10 * time.Second
	defaultOffsetFlush = 5 * time.Second
	masterSearchPeriod = time.Second
)

// startMetaServices registers with the name servers once (a name server that is
// down only earns a warning: the periodic registration retries it) and starts
// the periodic tasks: registration, consumer offset flush and client expiry.
func (b *Broker) startMetaServices() error {
	b.registerAll()
	period := time.Duration(b.cfg.RegisterNameServerPeriod) * time.Millisecond
	period = min(max(period, minRegisterPeriod), maxRegisterPeriod)
	b.every(period, b.topics.regKick, b.pacedRegister())
	// A slave learns its master's addresses from the registration answer; one
	// that started before its master (or before the name servers) asks again
	// every second instead of waiting out the period.
	b.every(masterSearchPeriod, nil, func() {
		if h := b.ha; h != nil && h.Role() == storage.RoleSlave && *h.masterAddr.Load() == "" {
			b.registerAll()
		}
	})

	flush := time.Duration(b.cfg.FlushConsumerOffsetInterval) * time.Millisecond
	if flush <= 0 {
		flush = defaultOffsetFlush
	}
	b.every(flush, nil, func() {
		if err := b.offsets.Persist(); err != nil {
			b.log.Error().Err(err).Msg("persist consumer offsets")
		}
	})
	b.every(clientScanPeriod, nil, func() {
		b.clients.scanExpired()
		b.locks.pruneExpired()
	})
	return nil
}

// registerDutyFactor bounds the time spent registering while topics keep
// changing: after a registration that took d, the next waits d times this.
const registerDutyFactor = 4

// maxRegisterPause caps that wait, so a change reaches the name servers
// within about a second even with a slow registry.
const maxRegisterPause = time.Second

// pacedRegister returns registerAll paced for the registration loop. Each
// registration carries the whole topic table, which the name servers decode
// in full; a burst of changes (a producer auto-creating 10,000 topics) would
// otherwise re-register back to back, quadratic in the table. Pausing in
// proportion to what the last one cost lets the kicks of that burst coalesce,
// while with a small table (microseconds per registration) a change is
// still announced at once.
func (b *Broker) pacedRegister() func() {
	return func() {
		start := time.Now()
		b.registerAll()
		pause := min(time.Since(start)*registerDutyFactor, maxRegisterPause)
		select {
		case <-time.After(pause):
		case <-b.stop:
		}
	}
}

// every runs f each period, and whenever kick fires, until the broker stops.
func (b *Broker) every(period time.Duration, kick <-chan struct{}, f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
			case <-kick:
			}
			f()
		}
	}()
}

// stopMetaServices persists the metadata and unregisters from the name servers
// (bounded by ctx). The periodic tasks have already ended with b.stop.
func (b *Broker) stopMetaServices(ctx context.Context) {
	if err := b.offsets.Persist(); err != nil {
		b.log.Error().Err(err).Msg("persist consumer offsets")
	}
	if err := b.topics.persist(); err != nil {
		b.log.Error().Err(err).Msg("persist topic configs")
	}
	if err := b.subGroups.persist(); err != nil {
		b.log.Error().Err(err).Msg("persist subscription groups")
	}
	if b.discovery == nil || b.keepRegistration.Load() {
		return
	}
	reg, err := b.registration()
	if err != nil {
		b.log.Error().Err(err).Msg("encode registration")
		return
	}
	if err := b.discovery.Withdraw(ctx, reg); err != nil {
		b.log.Warn().Err(err).Msg("withdraw the registration")
	}
}

type remoteError struct {
	code   int16
	remark string
}

func (e *remoteError) Error() string {
	return "code " + strconv.Itoa(int(e.code)) + ": " + e.remark
}

// registrationBody builds the REGISTER_BROKER body. When the broker may not read
// or write, every topic is registered with the broker's permission, so clients
// route around it.
func (b *Broker) registrationBody() ([]byte, error) {
	table, version := b.topics.Snapshot()
	if p := b.cfg.BrokerPermission; p&body.PermRead == 0 || p&body.PermWrite == 0 {
		for name, tc := range table {
			tc.Perm = p
			table[name] = tc
		}
	}
	rb := body.RegisterBrokerBody{
		FilterServerList:            []string{},
		TopicConfigSerializeWrapper: body.TopicConfigSerializeWrapper{DataVersion: version, TopicConfigTable: table},
	}
	return rb.Encode(false)
}

// haServerAddr is the replication address: the advertised host, listenPort+1.
func (b *Broker) haServerAddr() string {
	if a := b.haServerAddrActual(); a != "" {
		return a
	}
	host, port, err := net.SplitHostPort(b.addr)
	if err != nil {
		return ""
	}
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// registration is what the broker announces now.
func (b *Broker) registration() (*discovery.Registration, error) {
	data, err := b.registrationBody()
	if err != nil {
		return nil, err
	}
	return &discovery.Registration{ClusterName: b.cfg.BrokerClusterName, BrokerName: b.cfg.BrokerName,
		BrokerAddr: b.addr, HAServerAddr: b.haServerAddr(), BrokerID: b.cfg.BrokerID, Body: data}, nil
}

// registerAll announces the broker through its discovery mode (by default
// to every name server, discovery/namesrv), bounded by
// registerBrokerTimeoutMills there, and applies the answer: a slave's master
// addresses, the order-topic table.
func (b *Broker) registerAll() {
	if b.discovery == nil || b.keepRegistration.Load() {
		return
	}
	reg, err := b.registration()
	if err != nil {
		b.log.Error().Err(err).Msg("encode registration")
		return
	}
	// Bounded like a name server registration, and ended by the broker's
	// stop: a registry (or a discovery plugin) that does not answer must
	// hold neither the period nor shutdown.
	timeout := time.Duration(b.cfg.RegisterBrokerTimeoutMills) * time.Millisecond
	if timeout <= 0 {
		timeout = 6 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ans, err := b.discovery.Announce(ctx, reg)
	if err != nil {
		if !errors.Is(err, discovery.ErrNoRegistry) {
			b.log.Warn().Err(err).Msg("announce the broker: no registry took it; retried next period")
		}
		return
	}
	b.onRegisterAnswer(ans.MasterAddr, ans.MasterHAAddr) // a slave learns its master's addresses
	if ans.HasOrderTopics {
		b.topics.UpdateOrderFlags(ans.OrderTopics)
	}
}
