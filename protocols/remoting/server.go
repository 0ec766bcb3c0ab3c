package remoting

import (
	"context"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Handler serves one request. It runs on its own goroutine and may block (long
// polling). It returns the response, or nil to send none. The response goes out
// with the request's opaque and encoding and the response flag set; the
// returned command itself is not modified, so handlers may return shared ones.
type Handler func(conn *Conn, req *Command) *Command

// Guard admits or refuses a request before its handler runs (access control):
// nil admits it, anything else is the answer instead of the handler's. It
// runs on the request's goroutine, only for codes that have a handler.
type Guard func(conn *Conn, req *Command) *Command

// DefaultIdleTimeout closes connections that send nothing for this long, like
// Java's channel idle timeout and the Go client's read timeout.
const DefaultIdleTimeout = 120 * time.Second

// ServerConfig configures a Server.
type ServerConfig struct {
	// MaxFrameSize bounds a frame's total length including its length word
	// (default 16 MiB). Larger frames close the connection without allocating
	// them.
	MaxFrameSize int
	// IdleTimeout closes connections with no inbound traffic (default 120 s;
	// negative disables it).
	IdleTimeout time.Duration
	// WriteTimeout bounds one socket write, so a peer that stops reading cannot
	// hold handlers forever (default: IdleTimeout; negative disables it).
	WriteTimeout time.Duration
	// MaxConns bounds the open connections, MaxConnsPerHost those from one
	// remote IP address (0: no bound). A connection beyond either is closed
	// as soon as it is accepted, before anything is read from it.
	MaxConns        int
	MaxConnsPerHost int
	// MaxInflight bounds the requests of one connection being handled at
	// once (parked long-polls included; 0: no bound). One more is answered
	// SYSTEM_BUSY at once, as RocketMQ answers when its queues are full, and
	// the connection stays open: the peer backs off.
	MaxInflight int
	// Guard, if set, checks every request before its handler (ACL).
	Guard  Guard
	Logger zerolog.Logger
}

func (cfg ServerConfig) connConfig() connConfig {
	c := connConfig{maxFrame: cfg.MaxFrameSize, idle: cfg.IdleTimeout, writeTimeout: cfg.WriteTimeout, log: cfg.Logger,
		maxInflight: int32(max(cfg.MaxInflight, 0)), guard: cfg.Guard}
	if c.maxFrame <= 0 {
		c.maxFrame = DefaultMaxFrameSize
	}
	if c.idle == 0 {
		c.idle = DefaultIdleTimeout
	}
	if c.writeTimeout == 0 {
		c.writeTimeout = max(c.idle, 0)
	}
	return c
}

// shutBit marks Server.state as shutting down; the low bits count handlers.
const shutBit = math.MinInt64

// Server accepts remoting connections and dispatches requests by code.
type Server struct {
	cfg             connConfig
	maxConns        int
	maxConnsPerHost int

	handlers atomic.Pointer[map[int16]Handler]
	hmu      sync.Mutex // serializes Handle, OnConnect, OnClose
	onOpen   []func(*Conn)
	onClose  []func(*Conn)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	perHost   map[string]int       // open connections by remote IP, under mu
	refusedAt map[string]time.Time // last "connection refused" log line per IP, under mu
	refused   atomic.Int64
	shutting  bool
	connWG    sync.WaitGroup // connection goroutines

	// state counts running handlers; shutBit is set by Shutdown, after which
	// no handler starts, so Shutdown can wait for the count to reach zero.
	state     atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once
}

// NewServer returns a server; register handlers before Serve.
func NewServer(cfg ServerConfig) *Server {
	s := &Server{
		cfg:             cfg.connConfig(),
		maxConns:        max(cfg.MaxConns, 0),
		maxConnsPerHost: max(cfg.MaxConnsPerHost, 0),
		listeners:       make(map[net.Listener]struct{}),
		conns:           make(map[*Conn]struct{}),
		perHost:         make(map[string]int),
		refusedAt:       make(map[string]time.Time),
		drained:         make(chan struct{}),
	}
	s.handlers.Store(&map[int16]Handler{})
	return s
}

// Handle registers the handler of a request code, replacing any earlier one.
// Unregistered codes answer REQUEST_CODE_NOT_SUPPORTED. It is safe to call
// while serving.
func (s *Server) Handle(code int16, h Handler) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.handlers.Store(withHandler(*s.handlers.Load(), code, h))
}

// withHandler returns a copy of m with code mapped to h (removed if h is nil):
// lookups on the hot path read the map without locking.
func withHandler(m map[int16]Handler, code int16, h Handler) *map[int16]Handler {
	n := make(map[int16]Handler, len(m)+1)
	for k, v := range m {
		n[k] = v
	}
	if h == nil {
		delete(n, code)
	} else {
		n[code] = h
	}
	return &n
}

func (s *Server) handler(code int16) Handler { return (*s.handlers.Load())[code] }

// Codes lists the request codes with a handler, in no order.
func (s *Server) Codes() []int16 {
	m := *s.handlers.Load()
	codes := make([]int16, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	return codes
}

// OnConnect registers a hook run when a connection is accepted, before its
// first request is read.
func (s *Server) OnConnect(f func(*Conn)) {
	s.hmu.Lock()
	s.onOpen = append(s.onOpen[:len(s.onOpen):len(s.onOpen)], f)
	s.hmu.Unlock()
}

// OnClose registers a hook run exactly once when a connection closes, after
// its reader has stopped (client registries use it).
func (s *Server) OnClose(f func(*Conn)) {
	s.hmu.Lock()
	s.onClose = append(s.onClose[:len(s.onClose):len(s.onClose)], f)
	s.hmu.Unlock()
}

func (s *Server) hooks() (open, closed []func(*Conn)) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.onOpen, s.onClose
}

func (s *Server) acquire() bool {
	for {
		v := s.state.Load()
		if v&shutBit != 0 {
			return false
		}
		if s.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (s *Server) release() {
	if s.state.Add(-1) == shutBit {
		s.drainOnce.Do(func() { close(s.drained) })
	}
}

// Serve accepts on ln until Shutdown (it returns nil then) or a permanent
// accept error. Serve may run on several listeners at once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isShutting() {
				return nil
			}
			// Resource exhaustion (EMFILE, ...) passes; anything else ends Serve.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.startConn(nc)
	}
}

func (s *Server) isShutting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// hostOf is the remote IP of a connection, the unit of MaxConnsPerHost.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// Refused counts connections closed at accept for a connection limit.
func (s *Server) Refused() int64 { return s.refused.Load() }

func (s *Server) startConn(nc net.Conn) {
	host := hostOf(nc.RemoteAddr())
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if (s.maxConns > 0 && len(s.conns) >= s.maxConns) || (s.maxConnsPerHost > 0 && s.perHost[host] >= s.maxConnsPerHost) {
		// Logged once a minute per address: a flood must not flood the log.
		now := time.Now()
		logIt := now.Sub(s.refusedAt[host]) >= time.Minute
		if logIt {
			s.refusedAt[host] = now
		}
		open, fromHost := len(s.conns), s.perHost[host]
		s.mu.Unlock()
		s.refused.Add(1)
		nc.Close()
		if logIt {
			s.cfg.log.Warn().Str("remote", host).Int("open", open).Int("fromHost", fromHost).Int("maxConnections", s.maxConns).
				Int("maxConnectionsPerHost", s.maxConnsPerHost).Msg("connection refused: connection limit reached (logged once a minute per address)")
		}
		return
	}
	c := newConn(nc, s, s.cfg)
	s.conns[c] = struct{}{}
	s.perHost[host]++
	s.connWG.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.connWG.Done()
		open, closed := s.hooks()
		for _, f := range open {
			f(c)
		}
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		if s.perHost[host]--; s.perHost[host] <= 0 {
			delete(s.perHost, host)
		}
		s.mu.Unlock()
		_, closed = s.hooks()
		for _, f := range closed {
			f(c)
		}
	}()
}

// Shutdown stops accepting, rejects new requests on open connections with
// SERVICE_NOT_AVAILABLE (clients retry elsewhere), waits for in-flight handlers
// until ctx ends, then closes every connection once its queued responses are
// written (bounded by ctx) and waits for their OnClose hooks. It returns ctx.Err() if ctx
// ended first.
func (s *Server) Shutdown(ctx context.Context) error {
	if old := s.state.Or(shutBit); old&^shutBit == 0 {
		s.drainOnce.Do(func() { close(s.drained) })
	}
	s.mu.Lock()
	s.shutting = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	var err error
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}

	// Each connection first writes the responses still queued (bounded by ctx
	// and closeDrain), all in parallel and outside s.mu, which connection
	// goroutines take when they end.
	drain := closeDrain
	if dl, ok := ctx.Deadline(); ok {
		drain = min(drain, time.Until(dl))
	}
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		go c.closeWithin(drain)
	}

	closed := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}
