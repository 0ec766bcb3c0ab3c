// Package namesrv is discovery.namesrv, the default discovery mode: the
// broker registers with every RocketMQ name server of broker.namesrvAddr
// (REGISTER_BROKER, in parallel, each bounded by registerBrokerTimeoutMills)
// and unregisters at a clean stop, as RocketMQ's brokers do.
package namesrv

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/protocols/remoting/secure"
)

func init() { kernel.RegisterModule(new(Namesrv)) }

// defaultTimeout bounds one registration when registerBrokerTimeoutMills is unset.
const defaultTimeout = 6 * time.Second

// Namesrv registers with RocketMQ name servers.
type Namesrv struct {
	log     zerolog.Logger
	addrs   []string
	timeout time.Duration
	client  *remoting.Client
	cc      remoting.ClientConfig // with the configured signing and TLS
}

// MQDModule implements kernel.Module.
func (*Namesrv) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: "discovery.namesrv", New: func() kernel.Module { return new(Namesrv) }}
}

// Provision reads broker.namesrvAddr and broker.registerBrokerTimeoutMills.
func (n *Namesrv) Provision(ctx kernel.Context) error {
	n.log = ctx.Logger
	n.addrs = Addrs(ctx.Config.String("broker.namesrvAddr"))
	n.timeout = time.Duration(ctx.Config.Int64("broker.registerBrokerTimeoutMills")) * time.Millisecond
	if n.timeout <= 0 {
		n.timeout = defaultTimeout
	}
	cc, err := secure.ClientFromConfig(ctx.Config, remoting.ClientConfig{Logger: n.log})
	if err != nil {
		return err
	}
	n.cc = cc
	return nil
}

// Start opens the client the registrations go through.
func (n *Namesrv) Start() error {
	n.client = remoting.NewClient(n.cc)
	return nil
}

// Stop closes it (after the broker withdrew).
func (n *Namesrv) Stop(context.Context) error {
	if n.client != nil {
		n.client.Close()
	}
	return nil
}

// Addrs parses namesrvAddr: ';'-separated, blanks ignored, an http://
// prefix (address-server style) stripped.
func Addrs(s string) []string {
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

// remoteError is a name server's refusal.
type remoteError struct {
	code   int16
	remark string
}

func (e *remoteError) Error() string { return "code " + strconv.Itoa(int(e.code)) + ": " + e.remark }

// Announce implements discovery.Announcer: REGISTER_BROKER to every name
// server at once. The answer takes the master's addresses from any name
// server that has them and the order-topic table from the first that
// answered; it is an error only when none answered.
func (n *Namesrv) Announce(ctx context.Context, r *discovery.Registration) (discovery.Answer, error) {
	if len(n.addrs) == 0 {
		return discovery.Answer{}, discovery.ErrNoRegistry
	}
	// UtilAll.crc32: CRC32 (IEEE) masked to 31 bits.
	crc := int32(crc32.ChecksumIEEE(r.Body) & 0x7FFFFFFF)
	ext := map[string]string{
		"brokerName":   r.BrokerName,
		"brokerAddr":   r.BrokerAddr,
		"clusterName":  r.ClusterName,
		"haServerAddr": r.HAServerAddr,
		"brokerId":     strconv.FormatInt(r.BrokerID, 10),
		"compressed":   "false",
		"bodyCrc32":    strconv.FormatInt(int64(crc), 10),
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ans  discovery.Answer
		errs []error
	)
	for _, addr := range n.addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, n.timeout)
			defer cancel()
			resp, err := n.client.Invoke(rctx, addr, remoting.NewRequest(remoting.RegisterBroker, ext, r.Body))
			if err == nil && resp.Code != remoting.Success {
				err = &remoteError{resp.Code, resp.Remark}
			}
			var kv body.KVTable
			if err == nil && len(resp.Body) > 0 {
				if derr := body.Unmarshal(resp.Body, &kv); derr != nil {
					err = fmt.Errorf("bad response body: %w", derr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				n.log.Warn().Err(err).Str("namesrv", addr).Msg("register broker")
				errs = append(errs, fmt.Errorf("%s: %w", addr, err))
				return
			}
			if ma := resp.Ext("masterAddr"); ma != "" && ans.MasterAddr == "" {
				ans.MasterAddr, ans.MasterHAAddr = ma, resp.Ext("haServerAddr")
			}
			if !ans.HasOrderTopics {
				ans.HasOrderTopics, ans.OrderTopics = true, kv.Table
			}
		}()
	}
	wg.Wait()
	if !ans.HasOrderTopics {
		return ans, errors.Join(errs...)
	}
	return ans, nil
}

// Withdraw implements discovery.Announcer: UNREGISTER_BROKER to every name
// server, bounded by ctx.
func (n *Namesrv) Withdraw(ctx context.Context, r *discovery.Registration) error {
	ext := map[string]string{
		"brokerName":  r.BrokerName,
		"brokerAddr":  r.BrokerAddr,
		"clusterName": r.ClusterName,
		"brokerId":    strconv.FormatInt(r.BrokerID, 10),
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, addr := range n.addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := n.client.Invoke(ctx, addr, remoting.NewRequest(remoting.UnregisterBroker, ext, nil))
			if err == nil && resp.Code != remoting.Success {
				err = &remoteError{resp.Code, resp.Remark}
			}
			if err != nil {
				n.log.Warn().Err(err).Str("namesrv", addr).Msg("unregister broker")
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			n.log.Info().Str("namesrv", addr).Msg("unregistered from name server")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

var _ discovery.Announcer = (*Namesrv)(nil)
