package remoting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ErrConnClosed is returned by calls on a closed connection, and by Invoke when
// the connection closes before the response arrives.
var ErrConnClosed = errors.New("remoting: connection closed")

const (
	// readBufferSize holds many small frames per read syscall; larger frames
	// bypass it and are read straight into their own buffer.
	readBufferSize = 32 << 10
	// largeBody is the body size from which a frame's body is written from the
	// caller's slice (writev) instead of being copied into the write buffer.
	largeBody = 32 << 10
	// maxKeptWriteBuffer is the write buffer capacity kept between flushes.
	maxKeptWriteBuffer = 256 << 10
)

var (
	connIDs    atomic.Uint64
	opaqueSeed atomic.Int32
)

// nextOpaque returns a fresh request id, process-wide like the Go client's.
func nextOpaque() int32 { return opaqueSeed.Add(1) }

// owner is what a connection needs from its Server or Client.
type owner interface {
	handler(code int16) Handler
	// acquire admits one handler run; false means the owner is shutting down.
	acquire() bool
	release()
}

type connConfig struct {
	maxFrame     int
	idle         time.Duration // <= 0: no idle timeout
	writeTimeout time.Duration // <= 0: none
	maxInflight  int32         // <= 0: no bound
	guard        Guard         // server side: runs before handlers
	sign         Signer        // client side: signs outgoing requests
	log          zerolog.Logger
}

// Conn is one remoting connection, server- or client-side. Requests, responses
// and requests from the peer are multiplexed on it by opaque.
type Conn struct {
	id     uint64
	nc     net.Conn
	remote net.Addr
	local  net.Addr
	owner  owner
	cfg    connConfig

	// The write path (writer.go): wq is the pending queue, under wmu; the
	// flusher goroutine owns the socket writes.
	wmu      sync.Mutex
	wspace   sync.Cond // writers waiting for queue space; flusher and Close wake them
	wq       wqueue
	wbusy    bool          // flusher woken or writing, under wmu
	wclosing bool          // Close began: no more writes, under wmu
	werr     error         // sticky write error, under wmu
	wdrained chan struct{} // closed when the queue empties while Close waits, under wmu
	wkick    chan struct{}
	noMerge  bool          // tests: one frame per socket write, to measure coalescing
	flushes  atomic.Uint64 // socket writes (benchmarks report it)
	// wdeadlineSet is when the write deadline was last moved (flusher only).
	wdeadlineSet time.Time

	// inflight counts this connection's requests being handled (server
	// side); busy counts those refused for MaxInflight.
	inflight atomic.Int32
	busy     atomic.Int64

	pmu     sync.Mutex
	pending map[int32]*call
	closed  bool // under pmu

	done      chan struct{}
	closeOnce sync.Once

	// The read path (serve): between bursts a connection waits on park,
	// its read buffer back in readers, so an idle connection holds
	// parkSize bytes instead of readBufferSize (docs/security.md, Limits).
	park [parkSize]byte
	pre  parkedReader
}

// parkSize is what an idle connection's first read after a pause takes: a
// typical request (a 1 KiB send with its header) fits, so steady sync
// traffic costs no more reads than with the full buffer.
const parkSize = 4 << 10

// readers holds the read buffers of connections that are between bursts.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// parkedReader yields the bytes of the park read, then reads the socket.
type parkedReader struct {
	nc  net.Conn
	buf []byte
}

func (r *parkedReader) Read(p []byte) (int, error) {
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		return n, nil
	}
	return r.nc.Read(p)
}

func newConn(nc net.Conn, o owner, cfg connConfig) *Conn {
	c := &Conn{
		id:      connIDs.Add(1),
		nc:      nc,
		remote:  nc.RemoteAddr(),
		local:   nc.LocalAddr(),
		owner:   o,
		cfg:     cfg,
		pending: make(map[int32]*call),
		done:    make(chan struct{}),
		wkick:   make(chan struct{}, 1),
	}
	c.wspace.L = &c.wmu
	go c.flushLoop()
	return c
}

// ID is unique per process.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the peer address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the local address of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection after writing what is already queued (for up to
// five seconds); later writes fail. Pending Invokes fail with ErrConnClosed.
func (c *Conn) Close() error {
	c.closeWithin(closeDrain)
	return nil
}

// closeWithin closes the connection, spending at most d writing what is queued.
func (c *Conn) closeWithin(d time.Duration) {
	c.closeOnce.Do(func() {
		c.pmu.Lock()
		c.closed = true
		c.pmu.Unlock()
		c.drainWrites(d)
		close(c.done)
		c.nc.Close()
	})
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// call is a pending Invoke. Calls are pooled: the channel is drained before a
// call goes back, so a late response can never reach the next user.
type call struct{ ch chan *Command }

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan *Command, 1)} }}

// Invoke sends a request with a fresh opaque and waits for the response until
// ctx ends or the connection closes. req is not modified, so one request may be
// sent to many connections concurrently. Without a ctx deadline Invoke waits as
// long as the connection lives.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	if req == nil {
		return nil, errors.New("remoting: nil request")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opaque := nextOpaque()
	cl := callPool.Get().(*call)
	c.pmu.Lock()
	if c.closed {
		c.pmu.Unlock()
		callPool.Put(cl)
		return nil, ErrConnClosed
	}
	c.pending[opaque] = cl
	c.pmu.Unlock()

	if c.cfg.sign != nil {
		req = c.cfg.sign(req)
	}
	if err := c.write(req, opaque, req.Flag&^(FlagResponse|FlagOneway), req.SerializeType); err != nil {
		c.abandon(opaque, cl)
		return nil, err
	}
	select {
	case resp := <-cl.ch:
		callPool.Put(cl)
		return resp, nil
	case <-ctx.Done():
		if resp := c.abandon(opaque, cl); resp != nil {
			return resp, nil
		}
		return nil, ctx.Err()
	case <-c.done:
		if resp := c.abandon(opaque, cl); resp != nil {
			return resp, nil
		}
		return nil, ErrConnClosed
	}
}

// abandon removes a pending call. If the reader took it first, its response
// is (or is about to be) in the channel and is returned.
func (c *Conn) abandon(opaque int32, cl *call) *Command {
	c.pmu.Lock()
	mine := c.pending[opaque] == cl
	if mine {
		delete(c.pending, opaque)
	}
	c.pmu.Unlock()
	var resp *Command
	if !mine {
		resp = <-cl.ch
	}
	callPool.Put(cl)
	return resp
}

// complete hands a response to its waiting Invoke; responses nobody waits for
// (late, or to oneway requests) are dropped.
func (c *Conn) complete(resp *Command) {
	c.pmu.Lock()
	cl := c.pending[resp.Opaque]
	if cl != nil {
		delete(c.pending, resp.Opaque)
	}
	c.pmu.Unlock()
	if cl != nil {
		cl.ch <- resp
	}
}

// InvokeOneway sends req with a fresh opaque and the oneway flag and does not
// wait for anything.
func (c *Conn) InvokeOneway(req *Command) error {
	if req == nil {
		return errors.New("remoting: nil request")
	}
	if c.cfg.sign != nil {
		req = c.cfg.sign(req)
	}
	return c.write(req, nextOpaque(), req.Flag&^FlagResponse|FlagOneway, req.SerializeType)
}

// respond writes the response to req: same opaque, same encoding, response flag.
func (c *Conn) respond(req, resp *Command) {
	err := c.write(resp, req.Opaque, resp.Flag|FlagResponse, req.SerializeType)
	if encErr, ok := err.(*encodeError); ok {
		c.cfg.log.Warn().Str("remote", c.remote.String()).Int16("code", req.Code).Err(encErr.err).
			Msg("cannot encode response; answering SYSTEM_ERROR")
		_ = c.write(NewResponse(SystemError, encErr.err.Error()), req.Opaque, FlagResponse, req.SerializeType)
	}
}

// encodeError marks a frame that could not be encoded; the connection is fine.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// serve reads frames until the connection fails or closes, then closes it and
// logs why. Requests run on their own goroutines; responses complete Invokes.
func (c *Conn) serve() error {
	var br *bufio.Reader
	defer func() {
		if br != nil {
			br.Reset(nil)
			readers.Put(br)
		}
	}()
	c.pre.nc = c.nc
	var err error
	var deadlineSet time.Time
	for {
		// Moving the deadline arms a runtime timer; doing it at most once per
		// deadlineSlack keeps it off the per-frame path, at the price of an idle
		// timeout up to deadlineSlack shorter than configured.
		if c.cfg.idle > 0 {
			if now := time.Now(); now.Sub(deadlineSet) >= deadlineSlack(c.cfg.idle) {
				c.nc.SetReadDeadline(now.Add(c.cfg.idle))
				deadlineSet = now
			}
		}
		if br == nil || (br.Buffered() == 0 && len(c.pre.buf) == 0) {
			// Between frames with nothing buffered: wait without a read
			// buffer. A read that brings bytes and an error hands the bytes
			// on; the next read reports the error again.
			if br != nil {
				br.Reset(nil)
				readers.Put(br)
				br = nil
			}
			var n int
			n, err = c.nc.Read(c.park[:])
			if n == 0 {
				if err == nil {
					continue
				}
				break
			}
			c.pre.buf = c.park[:n]
			br = readers.Get().(*bufio.Reader)
			br.Reset(&c.pre)
		}
		var cmd *Command
		cmd, err = ReadCommand(br, c.cfg.maxFrame)
		if err != nil {
			break
		}
		if cmd.IsResponse() {
			c.complete(cmd)
			continue
		}
		c.dispatch(cmd)
	}
	closedByUs := c.isClosed()
	c.Close()
	c.logClose(err, closedByUs)
	return err
}

func (c *Conn) logClose(err error, closedByUs bool) {
	log := &c.cfg.log
	var ne net.Error
	switch {
	case errors.Is(err, ErrProtocol):
		log.Warn().Str("remote", c.remote.String()).Str("reason", err.Error()).Msg("closing connection: bad frame")
	case closedByUs:
		log.Debug().Str("remote", c.remote.String()).Msg("connection closed")
	case errors.As(err, &ne) && ne.Timeout():
		log.Info().Str("remote", c.remote.String()).Dur("idle", c.cfg.idle).Msg("closing idle connection")
	case errors.Is(err, io.EOF):
		log.Debug().Str("remote", c.remote.String()).Msg("connection closed by peer")
	default:
		log.Info().Str("remote", c.remote.String()).Err(err).Msg("connection failed")
	}
}

func (c *Conn) dispatch(req *Command) {
	h := c.owner.handler(req.Code)
	if h == nil {
		if !req.IsOneway() {
			c.respond(req, NewResponse(RequestCodeNotSupported,
				fmt.Sprintf("request code %d not supported", req.Code)))
		}
		return
	}
	if !c.owner.acquire() {
		if !req.IsOneway() {
			c.respond(req, NewResponse(ServiceNotAvailable, "server is shutting down"))
		}
		return
	}
	if n := c.inflight.Add(1); c.cfg.maxInflight > 0 && n > c.cfg.maxInflight {
		c.inflight.Add(-1)
		c.owner.release()
		c.busy.Add(1)
		if !req.IsOneway() {
			// RocketMQ's answer when a processor's queue is full.
			c.respond(req, NewResponse(SystemBusy, "[REJECTREQUEST]system busy, start flow control for a while"))
		}
		return
	}
	workers.submit(task{c: c, h: h, req: req})
}

func (c *Conn) run(h Handler, req *Command) {
	defer c.owner.release()
	var resp *Command
	if g := c.cfg.guard; g != nil {
		resp = g(c, req)
	}
	if resp == nil {
		resp = c.call(h, req)
	}
	// Handled: out of the in-flight count before the answer goes out, so a
	// peer that reads it and sends again is never refused for it.
	c.inflight.Add(-1)
	if resp == nil {
		return
	}
	if req.IsOneway() {
		resp.written() // nothing is sent, but its body may need releasing
		return
	}
	c.respond(req, resp)
}

// call runs a handler, turning a panic into SYSTEM_ERROR.
func (c *Conn) call(h Handler, req *Command) (resp *Command) {
	defer func() {
		if r := recover(); r != nil {
			c.cfg.log.Error().Str("remote", c.remote.String()).Int16("code", req.Code).
				Interface("panic", r).Bytes("stack", debug.Stack()).Msg("request handler panicked")
			resp = NewResponse(SystemError, fmt.Sprint(r))
		}
	}()
	return h(c, req)
}

// deadlineSlack is how stale a connection deadline may get before it is moved:
// a hundredth of the timeout, at most one second.
func deadlineSlack(timeout time.Duration) time.Duration {
	return min(timeout/100, time.Second)
}
