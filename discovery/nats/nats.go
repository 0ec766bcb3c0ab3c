// Package nats is discovery.nats: brokers publish their registration (what
// REGISTER_BROKER carries) into a NATS JetStream key-value bucket, and name
// servers watch the bucket and serve routes from it, so unmodified RocketMQ
// clients still ask a name server and get the same answers, several name
// servers watching one bucket serve identical routes, and a name server
// learns of a broker without the broker knowing its address. Both roles
// select it with discovery.mode=nats (docs/architecture.md, "Plugin kinds").
//
// One key per broker, <cluster>.<brokerName>.<brokerId> (characters a key
// cannot hold are replaced), rewritten every registration period; the
// bucket's max age (discovery.nats.ttl, the name server's 120 s broker
// expiry by default) drops a broker that stopped announcing, and the name
// servers' own expiry scan drops it from their routes the same way a
// silent REGISTER_BROKER broker is dropped. A clean stop deletes the key.
// While NATS is unreachable brokers keep serving; each announcement fails
// and is tried again next period, and name servers keep the routes they have
// until their expiry.
package nats

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
)

func init() {
	kernel.RegisterModule(new(NATS))
	config.Register(
		config.Key{Path: "discovery.nats.url", Default: nats.DefaultURL, Doc: "discovery.nats: the NATS server(s), comma-separated URLs"},
		config.Key{Path: "discovery.nats.bucket", Default: "mqd-brokers", Doc: "discovery.nats: the JetStream key-value bucket of broker registrations"},
		config.Key{Path: "discovery.nats.user", Default: "", Doc: "discovery.nats: user name"},
		config.Key{Path: "discovery.nats.password", Default: "", Doc: "discovery.nats: password"},
		config.Key{Path: "discovery.nats.token", Default: "", Doc: "discovery.nats: authentication token"},
		config.Key{Path: "discovery.nats.credsFile", Default: "", Doc: "discovery.nats: a .creds file (JWT and NKey seed)"},
		config.Key{Path: "discovery.nats.ttl", Default: int64(120000), Doc: "discovery.nats: how long a registration lives without being renewed, ms (the name server's broker expiry)"},
	)
}

// opTimeout bounds one key-value operation.
const opTimeout = 5 * time.Second

// NATS is the discovery.nats module.
type NATS struct {
	log    zerolog.Logger
	url    string
	bucket string
	ttl    time.Duration
	opts   []nats.Option

	nc *nats.Conn
	js jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue // nil until the bucket was reached

	// reconnected wakes a watch after the connection came back: a watcher
	// left from before would notice the server's restart only after its
	// heartbeats are missed.
	reconnected chan struct{}
}

// MQDModule implements kernel.Module.
func (*NATS) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: "discovery.nats", New: func() kernel.Module { return new(NATS) }}
}

// Provision reads the discovery.nats.* keys.
func (n *NATS) Provision(ctx kernel.Context) error {
	c := ctx.Config
	n.log = ctx.Logger
	n.url = c.String("discovery.nats.url")
	n.bucket = c.String("discovery.nats.bucket")
	n.ttl = time.Duration(c.Int64("discovery.nats.ttl")) * time.Millisecond
	n.opts = []nats.Option{nats.Name("mqd"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond)}
	if u := c.String("discovery.nats.user"); u != "" {
		n.opts = append(n.opts, nats.UserInfo(u, c.String("discovery.nats.password")))
	}
	if t := c.String("discovery.nats.token"); t != "" {
		n.opts = append(n.opts, nats.Token(t))
	}
	if f := c.String("discovery.nats.credsFile"); f != "" {
		n.opts = append(n.opts, nats.UserCredentials(f))
	}
	return nil
}

// Validate checks the keys.
func (n *NATS) Validate() error {
	if n.url == "" {
		return errors.New("discovery.nats.url is empty")
	}
	if n.bucket == "" || strings.ContainsAny(n.bucket, " .*>") {
		return fmt.Errorf("discovery.nats.bucket %q is not a bucket name", n.bucket)
	}
	if n.ttl < time.Second {
		return fmt.Errorf("discovery.nats.ttl must be at least 1000 ms, got %v", n.ttl)
	}
	return nil
}

// Start connects; an unreachable server is retried in the background (the
// broker or name server starts all the same).
func (n *NATS) Start() error {
	n.reconnected = make(chan struct{}, 1)
	n.opts = append(n.opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn().Err(err).Str("url", n.url).Msg("NATS connection lost; reconnecting")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.log.Info().Str("server", c.ConnectedUrl()).Msg("NATS connection back")
			n.mu.Lock()
			n.kv = nil // made again if the server lost it
			n.mu.Unlock()
			select {
			case n.reconnected <- struct{}{}:
			default:
			}
		}))
	nc, err := nats.Connect(n.url, n.opts...)
	if err != nil {
		return fmt.Errorf("discovery.nats: connect %s: %w", n.url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("discovery.nats: %w", err)
	}
	n.nc, n.js = nc, js
	return nil
}

// Stop closes the connection (after the broker withdrew).
func (n *NATS) Stop(context.Context) error {
	if n.nc != nil {
		n.nc.Close()
	}
	return nil
}

// bucketKV returns the bucket, creating it on first use.
func (n *NATS) bucketKV(ctx context.Context) (jetstream.KeyValue, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.kv != nil {
		return n.kv, nil
	}
	kv, err := n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.bucket, TTL: n.ttl, History: 1,
		Description: "mqd broker registrations (discovery.nats)"})
	if err != nil {
		return nil, fmt.Errorf("discovery.nats: bucket %s at %s: %w", n.bucket, n.url, err)
	}
	n.kv = kv
	return kv, nil
}

// entry is a registration as stored in the bucket.
type entry struct {
	ClusterName  string `json:"clusterName"`
	BrokerName   string `json:"brokerName"`
	BrokerAddr   string `json:"brokerAddr"`
	HAServerAddr string `json:"haServerAddr"`
	BrokerID     int64  `json:"brokerId"`
	Body         []byte `json:"body"` // RegisterBrokerBody JSON
}

// keyFor is the bucket key of a broker: cluster.brokerName.brokerId, the
// names in unpadded URL-safe base64 (characters a key may hold, and two
// names never share a key).
func keyFor(cluster, brokerName string, id int64) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(cluster)) + "." + enc.EncodeToString([]byte(brokerName)) + "." + strconv.FormatInt(id, 10)
}

// Announce implements discovery.Announcer: the registration is written to
// the bucket; a slave reads its master's entry for its addresses. The
// order-topic table is the name servers' (HasOrderTopics false).
func (n *NATS) Announce(ctx context.Context, r *discovery.Registration) (discovery.Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	kv, err := n.bucketKV(ctx)
	if err != nil {
		return discovery.Answer{}, err
	}
	data, err := json.Marshal(entry{r.ClusterName, r.BrokerName, r.BrokerAddr, r.HAServerAddr, r.BrokerID, r.Body})
	if err != nil {
		return discovery.Answer{}, err
	}
	if _, err := kv.Put(ctx, keyFor(r.ClusterName, r.BrokerName, r.BrokerID), data); err != nil {
		return discovery.Answer{}, fmt.Errorf("discovery.nats: announce: %w", err)
	}
	var ans discovery.Answer
	if r.BrokerID != 0 {
		if e, err := kv.Get(ctx, keyFor(r.ClusterName, r.BrokerName, 0)); err == nil {
			var m entry
			if json.Unmarshal(e.Value(), &m) == nil {
				ans.MasterAddr, ans.MasterHAAddr = m.BrokerAddr, m.HAServerAddr
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return ans, fmt.Errorf("discovery.nats: read the master's entry: %w", err)
		}
	}
	return ans, nil
}

// Withdraw implements discovery.Announcer: the key is deleted.
func (n *NATS) Withdraw(ctx context.Context, r *discovery.Registration) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	kv, err := n.bucketKV(ctx)
	if err != nil {
		return err
	}
	return kv.Delete(ctx, keyFor(r.ClusterName, r.BrokerName, r.BrokerID))
}

// Watch implements discovery.Watcher: every registration in the bucket, then
// each change, until ctx ends; a lost connection or bucket is watched again
// after a pause.
func (n *NATS) Watch(ctx context.Context, sink discovery.Sink) {
	known := map[string]*discovery.Registration{} // by key, for deletes
	for ctx.Err() == nil {
		err := n.watchOnce(ctx, sink, known)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errReconnected) {
			continue
		}
		n.log.Warn().Err(err).Str("bucket", n.bucket).Msg("discovery.nats: watch ended; watching again")
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

var errReconnected = errors.New("the NATS connection came back")

func (n *NATS) watchOnce(ctx context.Context, sink discovery.Sink, known map[string]*discovery.Registration) error {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	kv, err := n.bucketKV(octx)
	cancel()
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.reconnected:
			return errReconnected
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watcher closed")
			}
			if e == nil {
				continue // the current values have all been delivered
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				var m entry
				if err := json.Unmarshal(e.Value(), &m); err != nil {
					n.log.Warn().Err(err).Str("key", e.Key()).Msg("discovery.nats: unreadable registration; ignored")
					continue
				}
				r := &discovery.Registration{ClusterName: m.ClusterName, BrokerName: m.BrokerName, BrokerAddr: m.BrokerAddr,
					HAServerAddr: m.HAServerAddr, BrokerID: m.BrokerID, Body: m.Body, At: e.Created()}
				known[e.Key()] = r
				sink.Put(r)
			default: // deleted or purged
				if r := known[e.Key()]; r != nil {
					delete(known, e.Key())
					sink.Delete(r)
				}
			}
		}
	}
}

var (
	_ discovery.Announcer = (*NATS)(nil)
	_ discovery.Watcher   = (*NATS)(nil)
)
