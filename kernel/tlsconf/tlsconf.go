// Package tlsconf owns mqd's TLS settings (the tls.* keys, RocketMQ's
// tls.server.* and tls.client.* properties): certificate and trust files,
// reloaded when they change, the three server modes (disabled, permissive,
// enforcing) as a listener wrapper that any TCP server (remoting, HA, admin
// HTTP) puts around its listener, and the client side for mqd's own outgoing
// connections. docs/security.md describes the choices.
package tlsconf

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Mode is a server's TLS mode, RocketMQ's tls.server.mode.
type Mode int

const (
	// Disabled accepts plain TCP only.
	Disabled Mode = iota
	// Permissive accepts TLS and plain TCP on the same port: the first byte of
	// a connection tells them apart (a TLS handshake starts with 0x16, which
	// no remoting frame can: its length would exceed any frame limit).
	Permissive
	// Enforcing accepts TLS only.
	Enforcing
)

func (m Mode) String() string {
	switch m {
	case Permissive:
		return "permissive"
	case Enforcing:
		return "enforcing"
	}
	return "disabled"
}

// ParseMode reads disabled, permissive or enforcing.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "disabled":
		return Disabled, nil
	case "permissive":
		return Permissive, nil
	case "enforcing":
		return Enforcing, nil
	}
	return Disabled, fmt.Errorf("tls.server.mode %q: want disabled, permissive or enforcing", s)
}

// ClientAuth is RocketMQ's tls.server.need.client.auth.
func parseClientAuth(s string) (tls.ClientAuthType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return tls.NoClientCert, nil
	case "optional":
		return tls.VerifyClientCertIfGiven, nil
	case "require":
		return tls.RequireAndVerifyClientCert, nil
	}
	return tls.NoClientCert, fmt.Errorf("tls.server.needClientAuth %q: want none, optional or require", s)
}

// ServerOptions are a server's TLS settings.
type ServerOptions struct {
	Mode     Mode
	CertPath string // PEM certificate chain
	KeyPath  string // PEM private key (unencrypted)
	// ClientAuth is none, optional or require; optional and require verify
	// client certificates against TrustCertPath.
	ClientAuth    string
	TrustCertPath string
	// HandshakeTimeout bounds a handshake once its first byte arrived
	// (default DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

// reloadInterval is how often certificate files are checked for changes.
const reloadInterval = 2 * time.Second

// Server is a running TLS server configuration: its certificate and trust
// pool are reloaded when their files change, without a restart, and new
// connections use the new ones.
type Server struct {
	mode      Mode
	opts      ServerOptions
	auth      tls.ClientAuthType
	handshake time.Duration
	log       zerolog.Logger
	current   atomic.Pointer[tls.Config]
	reloadMu  sync.Mutex
	stamp     string // file stamps of the current config, under reloadMu
	failed    string // file stamps that last failed to load, under reloadMu
	reloads   atomic.Int64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// NewServer loads the files of opts (none for Disabled) and starts watching
// them. Close stops the watcher.
func NewServer(opts ServerOptions, log zerolog.Logger) (*Server, error) {
	s := &Server{mode: opts.Mode, opts: opts, log: log, stop: make(chan struct{}), done: make(chan struct{}),
		handshake: opts.HandshakeTimeout}
	if s.handshake <= 0 {
		s.handshake = DefaultHandshakeTimeout
	}
	if opts.Mode == Disabled {
		close(s.done)
		return s, nil
	}
	var err error
	if s.auth, err = parseClientAuth(opts.ClientAuth); err != nil {
		return nil, err
	}
	if opts.CertPath == "" || opts.KeyPath == "" {
		return nil, fmt.Errorf("tls.server.mode=%s needs tls.server.certPath and tls.server.keyPath", opts.Mode)
	}
	if s.auth != tls.NoClientCert && opts.TrustCertPath == "" {
		return nil, fmt.Errorf("tls.server.needClientAuth=%s needs tls.server.trustCertPath", opts.ClientAuth)
	}
	cfg, stamp, err := s.load()
	if err != nil {
		return nil, err
	}
	s.current.Store(cfg)
	s.stamp = stamp
	go s.watch()
	return s, nil
}

// Mode is the server's mode.
func (s *Server) Mode() Mode { return s.mode }

// Reloads counts certificate reloads after the first load.
func (s *Server) Reloads() int64 { return s.reloads.Load() }

// Close stops watching the files.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

func fileStamp(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s:missing;", p)
		}
	}
	return b.String()
}

func (s *Server) load() (*tls.Config, string, error) {
	stamp := fileStamp(s.opts.CertPath, s.opts.KeyPath, s.opts.TrustCertPath)
	cert, err := tls.LoadX509KeyPair(s.opts.CertPath, s.opts.KeyPath)
	if err != nil {
		return nil, "", fmt.Errorf("tls: certificate %s / key %s: %w", s.opts.CertPath, s.opts.KeyPath, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: s.auth}
	if s.opts.TrustCertPath != "" {
		pool, err := loadPool(s.opts.TrustCertPath)
		if err != nil {
			return nil, "", err
		}
		cfg.ClientCAs = pool
	}
	return cfg, stamp, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: trust certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: trust certificates %s: no PEM certificate found", path)
	}
	return pool, nil
}

func (s *Server) watch() {
	defer close(s.done)
	t := time.NewTicker(reloadInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// Reload re-reads the files if they changed; a broken new version is logged
// (once) and the current one stays until the files change again.
func (s *Server) Reload() {
	if s.mode == Disabled {
		return
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	stamp := fileStamp(s.opts.CertPath, s.opts.KeyPath, s.opts.TrustCertPath)
	if stamp == s.stamp || stamp == s.failed {
		return
	}
	cfg, loaded, err := s.load()
	if err != nil {
		s.log.Error().Err(err).Msg("tls files changed but cannot be loaded; the current certificate stays in use")
		s.failed = stamp // the stamp from before reading: a later write is retried
		return
	}
	s.current.Store(cfg)
	s.stamp = loaded
	s.reloads.Add(1)
	s.log.Info().Str("cert", s.opts.CertPath).Msg("tls certificate reloaded")
}

// config is what new handshakes use.
func (s *Server) config() *tls.Config {
	return &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return s.current.Load(), nil
	}}
}

// Listen wraps ln according to the mode: Disabled returns ln itself.
func (s *Server) Listen(ln net.Listener) net.Listener {
	if s == nil || s.mode == Disabled {
		return ln
	}
	return &listener{Listener: ln, srv: s, cfg: s.config()}
}

type listener struct {
	net.Listener
	srv *Server
	cfg *tls.Config
}

// Accept returns at once: the look at the first byte and the handshake
// happen on the connection's first Read or Write, on the connection's own
// goroutine, so a slow client cannot hold up the accept loop. Waiting for the
// first byte is bounded by the server's own read deadline (its idle
// timeout), the handshake after it by ServerOptions.HandshakeTimeout.
func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: nc, cfg: l.cfg, enforce: l.srv.mode == Enforcing, handshake: l.srv.handshake}, nil
}

// DefaultHandshakeTimeout bounds a TLS handshake once its first byte
// arrived.
const DefaultHandshakeTimeout = 10 * time.Second

// tlsHandshakeByte starts every TLS record of type handshake.
const tlsHandshakeByte = 0x16

// errPlainOnTLSPort refuses plain TCP on an enforcing port.
var errPlainOnTLSPort = errors.New("tls: plain TCP on a port that accepts TLS only (tls.server.mode=enforcing)")

// sniffConn decides on its first use whether its peer speaks TLS.
type sniffConn struct {
	net.Conn  // the raw connection
	cfg       *tls.Config
	enforce   bool
	handshake time.Duration
	once      sync.Once
	inner     net.Conn // the TLS connection, or the raw one with the byte read
	err       error
}

func (c *sniffConn) init() {
	c.once.Do(func() {
		br := bufio.NewReaderSize(c.Conn, 16)
		first, err := br.Peek(1)
		if err != nil {
			c.err = err
			return
		}
		pc := &prefixConn{Conn: c.Conn, r: br}
		if first[0] != tlsHandshakeByte {
			if c.enforce {
				c.err = errPlainOnTLSPort
				return
			}
			c.inner = pc
			return
		}
		tc := tls.Server(pc, c.cfg)
		ctx, cancel := context.WithTimeout(context.Background(), c.handshake)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			c.err = err
			return
		}
		c.inner = tc
	})
}

func (c *sniffConn) Read(p []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Read(p)
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Write(p)
}

// IsTLS reports whether a connection accepted through Listen speaks TLS
// (false before its first byte arrived on a permissive port).
func IsTLS(nc net.Conn) bool {
	if c, ok := nc.(*sniffConn); ok {
		_, isTLS := c.inner.(*tls.Conn)
		return isTLS && c.err == nil
	}
	_, isTLS := nc.(*tls.Conn)
	return isTLS
}

// prefixConn reads through the buffer that holds the sniffed byte, then
// straight from the connection once it is drained.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// ClientOptions are the settings of mqd's own outgoing connections.
type ClientOptions struct {
	Enable bool
	// AuthServer verifies the server certificate against TrustCertPath (or
	// the system roots when it is empty); RocketMQ's default is not to.
	AuthServer    bool
	TrustCertPath string
	// CertPath and KeyPath are presented when a server requires client
	// certificates.
	CertPath string
	KeyPath  string
}

// ClientConfig returns the tls.Config for outgoing connections, nil when TLS
// is off.
func ClientConfig(o ClientOptions) (*tls.Config, error) {
	if !o.Enable {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !o.AuthServer}
	if o.TrustCertPath != "" {
		pool, err := loadPool(o.TrustCertPath)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (o.CertPath == "") != (o.KeyPath == "") {
		return nil, errors.New("tls.client.certPath and tls.client.keyPath go together")
	}
	if o.CertPath != "" {
		cert, err := tls.LoadX509KeyPair(o.CertPath, o.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
