package remoting

// SKELETON: signatures only, so that other packages compile while the codec,
// server and client are written. The remoting helper replaces this file.

import (
	"context"
	"net"
	"time"

	"github.com/rs/zerolog"
)

// Handler serves one request. It runs on its own goroutine and may block (long
// polling). It returns the response, or nil to send none. The server copies the
// request's opaque and encoding into the response and sets the response flag.
type Handler func(conn *Conn, req *Command) *Command

// ServerConfig configures a Server.
type ServerConfig struct {
	// MaxFrameSize bounds a frame's total length (default 16 MiB). Larger frames
	// close the connection without allocating them.
	MaxFrameSize int
	// IdleTimeout closes connections with no inbound traffic (default 120 s).
	IdleTimeout time.Duration
	Logger      zerolog.Logger
}

// Server accepts remoting connections and dispatches requests by code.
type Server struct{}

// NewServer returns a server; register handlers before Serve.
func NewServer(cfg ServerConfig) *Server { panic("unimplemented") }

// Handle registers the handler of a request code. Unregistered codes answer
// REQUEST_CODE_NOT_SUPPORTED.
func (s *Server) Handle(code int16, h Handler) { panic("unimplemented") }

// OnConnect and OnClose register connection hooks (client registries use OnClose).
func (s *Server) OnConnect(f func(*Conn)) { panic("unimplemented") }

// OnClose registers a hook run once when a connection closes.
func (s *Server) OnClose(f func(*Conn)) { panic("unimplemented") }

// Serve accepts on ln until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error { panic("unimplemented") }

// Shutdown stops accepting, waits for in-flight handlers until ctx ends, then
// closes every connection.
func (s *Server) Shutdown(ctx context.Context) error { panic("unimplemented") }

// Conn is a server-side connection.
type Conn struct{}

// ID is unique per server process.
func (c *Conn) ID() uint64 { panic("unimplemented") }

// RemoteAddr is the peer address.
func (c *Conn) RemoteAddr() net.Addr { panic("unimplemented") }

// LocalAddr is the local address the peer connected to.
func (c *Conn) LocalAddr() net.Addr { panic("unimplemented") }

// Invoke sends a server-initiated request and waits for the response.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) { panic("unimplemented") }

// InvokeOneway sends a server-initiated request with the oneway flag and does not wait.
func (c *Conn) InvokeOneway(req *Command) error { panic("unimplemented") }

// Close closes the connection.
func (c *Conn) Close() error { panic("unimplemented") }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { panic("unimplemented") }

// ClientConfig configures a Client.
type ClientConfig struct {
	DialTimeout  time.Duration // default 3 s
	MaxFrameSize int           // default 16 MiB
	Logger       zerolog.Logger
}

// Client is a remoting client: one connection per address, requests multiplexed
// by opaque, server-initiated requests dispatched to handlers.
type Client struct{}

// NewClient returns a client.
func NewClient(cfg ClientConfig) *Client { panic("unimplemented") }

// Handle registers a handler for server-initiated requests.
func (c *Client) Handle(code int16, h Handler) { panic("unimplemented") }

// Invoke sends req to addr and waits for the response until ctx ends.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	panic("unimplemented")
}

// InvokeOneway sends req to addr without waiting (oneway flag set).
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	panic("unimplemented")
}

// Close closes every connection.
func (c *Client) Close() error { panic("unimplemented") }
