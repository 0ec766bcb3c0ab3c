// Package admin is mqadmin's client: the RocketMQ admin requests (name server
// and broker codes, as DefaultMQAdminExt sends them) over the remoting protocol,
// with the answers decoded into plain Go values. It holds no presentation; the
// cli package prints what it returns.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
)

// DefaultTimeout bounds one request, as the Java admin's 3 s timeoutMillis, with
// room for a loaded machine.
const DefaultTimeout = 5 * time.Second

// Admin talks to name servers and brokers. It is safe for concurrent use.
type Admin struct {
	namesrv []string
	timeout time.Duration
	c       *remoting.Client
}

// Option adjusts the connections of an Admin.
type Option func(*remoting.ClientConfig)

// WithCredentials signs every request with an ACL account, as RocketMQ's
// mqadmin does with the keys of conf/tools.yml.
func WithCredentials(c acl.Credentials) Option {
	return func(cc *remoting.ClientConfig) {
		if sign, err := acl.Signer(c); err == nil {
			cc.Sign = sign
		}
	}
}

// WithTLS dials over TLS.
func WithTLS(cfg *tls.Config) Option { return func(cc *remoting.ClientConfig) { cc.TLS = cfg } }

// New returns an Admin for the name servers in addrs ("host:port;host:port").
// addrs may be empty for commands that only talk to a broker.
func New(addrs string, timeout time.Duration, opts ...Option) *Admin {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var ns []string
	for _, a := range strings.FieldsFunc(addrs, func(r rune) bool { return r == ';' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			ns = append(ns, a)
		}
	}
	cc := remoting.ClientConfig{DialTimeout: timeout, Logger: zerolog.Nop()}
	for _, o := range opts {
		o(&cc)
	}
	return &Admin{namesrv: ns, timeout: timeout, c: remoting.NewClient(cc)}
}

// NameServers returns the configured name server addresses.
func (a *Admin) NameServers() []string { return a.namesrv }

// Close closes the connections.
func (a *Admin) Close() error { return a.c.Close() }

// RemoteError is a non-success answer of a name server or broker.
type RemoteError struct {
	Addr   string
	Code   int16
	Remark string
}

func (e *RemoteError) Error() string {
	r := e.Remark
	if r == "" {
		r = "(no remark)"
	}
	return fmt.Sprintf("%s answered code %d (%s): %s", e.Addr, e.Code, remoting.ResponseCodeName(e.Code), r)
}

// IsCode reports whether err is a RemoteError with the given code.
func IsCode(err error, code int16) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Code == code
}

// ErrNoNameServer is returned when a command needs a name server and none is set.
var ErrNoNameServer = errors.New("no name server address: use -n host:port or set NAMESRV_ADDR")

// call sends one request and returns the response, whatever its code.
func (a *Admin) call(addr string, code int16, ext map[string]string, body []byte) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	resp, err := a.c.Invoke(ctx, addr, remoting.NewRequest(code, ext, body))
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			return nil, fmt.Errorf("%s: no answer to %s within %s", addr, remoting.RequestCodeName(code), a.timeout)
		default:
			return nil, fmt.Errorf("%s: %s: %w", addr, remoting.RequestCodeName(code), unwrapNet(err))
		}
	}
	return resp, nil
}

// unwrapNet shortens "dial tcp 1.2.3.4:5: connect: connection refused" chains
// to their last part, enough for a one-line message.
func unwrapNet(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("%s: %v", oe.Op, oe.Err)
	}
	return err
}

// invoke sends one request and fails on a non-success code.
func (a *Admin) invoke(addr string, code int16, ext map[string]string, body []byte) (*remoting.Command, error) {
	resp, err := a.call(addr, code, ext, body)
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return resp, &RemoteError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

// invokeNS sends a request to the name servers, starting at a random one and
// trying the next on a transport error (as the Java client does).
func (a *Admin) invokeNS(code int16, ext map[string]string, body []byte) (*remoting.Command, error) {
	if len(a.namesrv) == 0 {
		return nil, ErrNoNameServer
	}
	start := rand.IntN(len(a.namesrv))
	var lastErr error
	for i := range a.namesrv {
		addr := a.namesrv[(start+i)%len(a.namesrv)]
		resp, err := a.call(addr, code, ext, body)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Code != remoting.Success {
			return resp, &RemoteError{Addr: addr, Code: resp.Code, Remark: resp.Remark}
		}
		return resp, nil
	}
	return nil, lastErr
}
