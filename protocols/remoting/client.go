package remoting

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ErrClientClosed is returned by calls on a closed Client.
var ErrClientClosed = errors.New("remoting: client closed")

// ClientConfig configures a Client.
type ClientConfig struct {
	DialTimeout  time.Duration // default 3 s
	MaxFrameSize int           // default 16 MiB
	// IdleTimeout closes a connection that receives nothing for this long; the
	// next call redials (default 120 s, as the Go client; negative disables).
	IdleTimeout time.Duration
	// WriteTimeout bounds one socket write (default: IdleTimeout).
	WriteTimeout time.Duration
	// Sign, if set, signs every request sent (ACL credentials).
	Sign Signer
	// TLS, if set, dials every connection over TLS.
	TLS    *tls.Config
	Logger zerolog.Logger
}

// Signer returns the request to send in place of req, signed; it must not
// modify req.
type Signer func(req *Command) *Command

// Client is a remoting client: one connection per address, requests multiplexed
// by opaque, server-initiated requests dispatched to handlers.
type Client struct {
	cfg    connConfig
	dialer net.Dialer
	tls    *tls.Config

	handlers atomic.Pointer[map[int16]Handler]
	hmu      sync.Mutex

	mu     sync.Mutex
	conns  map[string]*clientEntry
	closed bool
	wg     sync.WaitGroup // connection goroutines
}

// clientEntry is one address's connection; ready is closed once the dial
// finished, after which conn or err is set.
type clientEntry struct {
	ready chan struct{}
	conn  *Conn
	err   error
}

// clientOwner lets a client's connections find handlers without a cycle of
// exported methods on Client.
type clientOwner struct{ c *Client }

func (o clientOwner) handler(code int16) Handler { return (*o.c.handlers.Load())[code] }
func (o clientOwner) acquire() bool              { return true }
func (o clientOwner) release()                   {}

// NewClient returns a client. Connections are dialed on first use.
func NewClient(cfg ClientConfig) *Client {
	sc := ServerConfig{MaxFrameSize: cfg.MaxFrameSize, IdleTimeout: cfg.IdleTimeout,
		WriteTimeout: cfg.WriteTimeout, Logger: cfg.Logger}
	c := &Client{cfg: sc.connConfig(), conns: make(map[string]*clientEntry), tls: cfg.TLS}
	c.cfg.sign = cfg.Sign
	c.dialer.Timeout = cfg.DialTimeout
	if c.dialer.Timeout <= 0 {
		c.dialer.Timeout = 3 * time.Second
	}
	c.handlers.Store(&map[int16]Handler{})
	return c
}

// Handle registers a handler for server-initiated requests; unregistered codes
// answer REQUEST_CODE_NOT_SUPPORTED.
func (c *Client) Handle(code int16, h Handler) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.handlers.Store(withHandler(*c.handlers.Load(), code, h))
}

// Invoke sends req to addr and waits for the response until ctx ends. req is
// not modified. Without a ctx deadline it waits as long as the connection lives.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	conn, err := c.Conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return conn.Invoke(ctx, req)
}

// InvokeOneway sends req to addr without waiting (oneway flag set).
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	conn, err := c.Conn(ctx, addr)
	if err != nil {
		return err
	}
	return conn.InvokeOneway(req)
}

// Conn returns the connection to addr, dialing it if there is none. Concurrent
// callers share one dial; a failed or closed connection is redialed next time.
func (c *Client) Conn(ctx context.Context, addr string) (*Conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClientClosed
		}
		e := c.conns[addr]
		if e == nil {
			e = &clientEntry{ready: make(chan struct{})}
			c.conns[addr] = e
			c.mu.Unlock()
			c.dial(ctx, addr, e)
			if e.err != nil {
				return nil, e.err
			}
			return e.conn, nil
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		if !e.conn.isClosed() {
			return e.conn, nil
		}
		c.forget(addr, e) // its goroutine may not have removed it yet
	}
}

func (c *Client) dial(ctx context.Context, addr string, e *clientEntry) {
	var nc net.Conn
	var err error
	if c.tls != nil {
		d := tls.Dialer{NetDialer: &c.dialer, Config: c.tls}
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = c.dialer.DialContext(ctx, "tcp", addr)
	}
	c.mu.Lock()
	switch {
	case err != nil:
		e.err = err
	case c.closed:
		nc.Close()
		e.err = ErrClientClosed
	default:
		e.conn = newConn(nc, clientOwner{c}, c.cfg)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			e.conn.serve()
			c.forget(addr, e)
		}()
	}
	if e.err != nil && c.conns[addr] == e {
		delete(c.conns, addr)
	}
	c.mu.Unlock()
	close(e.ready)
}

func (c *Client) forget(addr string, e *clientEntry) {
	c.mu.Lock()
	if c.conns[addr] == e {
		delete(c.conns, addr)
	}
	c.mu.Unlock()
}

// Close closes every connection; pending calls fail with ErrConnClosed and
// later calls with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	var conns []*Conn
	for _, e := range c.conns {
		select {
		case <-e.ready:
			if e.conn != nil {
				conns = append(conns, e.conn)
			}
		default: // the dialer sees closed and closes its connection
		}
	}
	c.conns = make(map[string]*clientEntry)
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
	c.wg.Wait()
	return nil
}
