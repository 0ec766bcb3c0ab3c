package broker

import (
	"context"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage"
)

// Timing of the metadata services.
const (
	minRegisterPeriod   = 10 * time.Second
	maxRegisterPeriod   = 60 * time.Second
	clientScanPeriod    = 10 * time.Second
	defaultOffsetFlush  = 5 * time.Second
	defaultRegisterWait = 6 * time.Second
	masterSearchPeriod  = time.Second
)

// nameServerAddrs parses namesrvAddr: ';'-separated, blanks ignored, an http://
// prefix (address-server style) stripped.
func nameServerAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		a = strings.TrimSpace(a)
		a = strings.TrimPrefix(a, "http://")
		a = strings.TrimSuffix(a, "/")
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// startMetaServices registers with the name servers once (a name server that is
// down only earns a warning: the periodic registration retries it) and starts
// the periodic tasks: registration, consumer offset flush and client expiry.
func (b *Broker) startMetaServices() error {
	b.registerAll()
	period := time.Duration(b.cfg.RegisterNameServerPeriod) * time.Millisecond
	period = min(max(period, minRegisterPeriod), maxRegisterPeriod)
	b.every(period, b.topics.regKick, b.registerAll)
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
	if b.nsClient == nil {
		return
	}
	ext := map[string]string{
		"brokerName":  b.cfg.BrokerName,
		"brokerAddr":  b.addr,
		"clusterName": b.cfg.BrokerClusterName,
		"brokerId":    strconv.FormatInt(b.cfg.BrokerID, 10),
	}
	var wg sync.WaitGroup
	for _, addr := range nameServerAddrs(b.cfg.NamesrvAddr) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := remoting.NewRequest(remoting.UnregisterBroker, ext, nil)
			resp, err := b.nsClient.Invoke(ctx, addr, req)
			if err == nil && resp.Code != remoting.Success {
				err = &remoteError{resp.Code, resp.Remark}
			}
			if err != nil {
				b.log.Warn().Err(err).Str("namesrv", addr).Msg("unregister broker")
				return
			}
			b.log.Info().Str("namesrv", addr).Msg("unregistered from name server")
		}()
	}
	wg.Wait()
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

// registerAll registers with every name server in parallel, each bounded by
// registerBrokerTimeoutMills, and applies the ORDER_TOPIC_CONFIG table of the
// first answer.
func (b *Broker) registerAll() {
	addrs := nameServerAddrs(b.cfg.NamesrvAddr)
	if len(addrs) == 0 || b.nsClient == nil {
		return
	}
	data, err := b.registrationBody()
	if err != nil {
		b.log.Error().Err(err).Msg("encode registration")
		return
	}
	// UtilAll.crc32: CRC32 (IEEE) masked to 31 bits.
	crc := int32(crc32.ChecksumIEEE(data) & 0x7FFFFFFF)
	timeout := time.Duration(b.cfg.RegisterBrokerTimeoutMills) * time.Millisecond
	if timeout <= 0 {
		timeout = defaultRegisterWait
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		orderKV  map[string]string
		answered bool
	)
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ext := map[string]string{
				"brokerName":   b.cfg.BrokerName,
				"brokerAddr":   b.addr,
				"clusterName":  b.cfg.BrokerClusterName,
				"haServerAddr": b.haServerAddr(),
				"brokerId":     strconv.FormatInt(b.cfg.BrokerID, 10),
				"compressed":   "false",
				"bodyCrc32":    strconv.FormatInt(int64(crc), 10),
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			resp, err := b.nsClient.Invoke(ctx, addr, remoting.NewRequest(remoting.RegisterBroker, ext, data))
			if err == nil && resp.Code != remoting.Success {
				err = &remoteError{resp.Code, resp.Remark}
			}
			if err != nil {
				b.log.Warn().Err(err).Str("namesrv", addr).Msg("register broker")
				return
			}
			b.onRegisterAnswer(resp) // a slave learns its master's addresses
			var kv body.KVTable
			if len(resp.Body) > 0 {
				if err := body.Unmarshal(resp.Body, &kv); err != nil {
					b.log.Warn().Err(err).Str("namesrv", addr).Msg("register broker: bad response body")
					return
				}
			}
			mu.Lock()
			if !answered {
				answered, orderKV = true, kv.Table
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if answered {
		b.topics.UpdateOrderFlags(orderKV)
	}
}
