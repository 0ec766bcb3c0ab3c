package remoting

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/logging/logtest"
	"github.com/mqd/mqd/kernel/waittest"
)

type testServer struct {
	*Server
	addr   string
	logs   *logtest.Buffer
	opened atomic.Int32
	closed atomic.Int32
	conns  chan *Conn
	served chan error
}

// startServer serves on a free loopback port; the server is shut down when the
// test ends, and Serve must then have returned nil.
func startServer(t testing.TB, cfg ServerConfig, register func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{logs: &logtest.Buffer{}, conns: make(chan *Conn, 100), served: make(chan error, 1)}
	cfg.Logger = zerolog.New(ts.logs).Level(zerolog.DebugLevel)
	ts.Server = NewServer(cfg)
	ts.OnConnect(func(c *Conn) {
		ts.opened.Add(1)
		select {
		case ts.conns <- c:
		default:
		}
	})
	ts.OnClose(func(c *Conn) { ts.closed.Add(1) })
	if register != nil {
		register(ts.Server)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { ts.served <- ts.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-ts.served; err != nil {
			t.Errorf("Serve returned %v after Shutdown", err)
		}
	})
	return ts
}

func newTestClient(t testing.TB) *Client {
	c := NewClient(ClientConfig{})
	t.Cleanup(func() { c.Close() })
	return c
}

// echo answers with the request's ext fields and body.
func echo(_ *Conn, req *Command) *Command {
	resp := NewResponse(Success, "")
	resp.ExtFields = req.ExtFields
	resp.Body = req.Body
	return resp
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, 5*time.Second, cond, "%s", what)
}

// rawConn speaks frames directly, for what the Client never does.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) send(c *Command) {
	r.t.Helper()
	if _, err := r.nc.Write(mustEncode(r.t, c)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) recv() *Command {
	r.t.Helper()
	c, err := ReadCommand(r.br, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// closedByPeer waits until the server closes the connection.
func (r *rawConn) closedByPeer() bool {
	_, err := io.Copy(io.Discard, r.nc)
	return err == nil || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset")
}

func TestServerRoundTripBothEncodings(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) { s.Handle(SendMessage, echo) })
	cl := newTestClient(t)
	for _, st := range []SerializeType{JSON, RocketMQ} {
		req := sendHeader()
		req.SerializeType = st
		req.Remark = "r"
		resp, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.SerializeType != st || !resp.IsResponse() || resp.Code != Success {
			t.Fatalf("%v: response %+v", st, resp)
		}
		if !bytes.Equal(resp.Body, req.Body) || resp.Ext("properties") != req.Ext("properties") || len(resp.ExtFields) != len(req.ExtFields) {
			t.Fatalf("%v: echo differs", st)
		}
		if req.Opaque != 12345 || req.Flag != 0 {
			t.Fatal("Invoke modified the request")
		}
	}
	// Raw: the response echoes the opaque the request carried.
	rc := dialRaw(t, ts.addr)
	req := sendHeader()
	req.Opaque = 777
	req.SerializeType = RocketMQ
	rc.send(req)
	if resp := rc.recv(); resp.Opaque != 777 || resp.Flag != FlagResponse || resp.SerializeType != RocketMQ {
		t.Fatalf("raw response %+v", resp)
	}
}

func TestUnsupportedCode(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	resp, err := newTestClient(t).Invoke(ctxTimeout(t, 5*time.Second), ts.addr, NewRequest(999, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != RequestCodeNotSupported || resp.Remark != "request code 999 not supported" {
		t.Fatalf("got %d %q", resp.Code, resp.Remark)
	}
}

func TestNilResponseAndOneway(t *testing.T) {
	ran := make(chan *Command, 2)
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(UpdateConsumerOffset, func(_ *Conn, req *Command) *Command { ran <- req; return nil })
		s.Handle(HeartBeat, func(_ *Conn, req *Command) *Command { ran <- req; return NewResponse(Success, "oneway!") })
		s.Handle(SendMessage, echo)
	})
	rc := dialRaw(t, ts.addr)
	rc.send(&Command{Code: UpdateConsumerOffset, Opaque: 1})
	<-ran
	oneway := &Command{Code: HeartBeat, Opaque: 2, Flag: FlagOneway}
	rc.send(oneway)
	if got := <-ran; !got.IsOneway() {
		t.Fatal("oneway flag lost")
	}
	rc.send(&Command{Code: 888, Opaque: 3, Flag: FlagOneway}) // unsupported and oneway: silence
	rc.send(&Command{Code: SendMessage, Opaque: 4})
	if resp := rc.recv(); resp.Opaque != 4 {
		t.Fatalf("first response has opaque %d, want 4 (nil and oneway answered?)", resp.Opaque)
	}
}

func TestHandlerPanic(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(*Conn, *Command) *Command { panic("boom") })
		s.Handle(SendMessage, echo)
	})
	cl := newTestClient(t)
	resp, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, NewRequest(PullMessage, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != SystemError || !strings.Contains(resp.Remark, "boom") {
		t.Fatalf("got %d %q", resp.Code, resp.Remark)
	}
	if _, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, sendHeader()); err != nil {
		t.Fatal("connection unusable after a panic:", err)
	}
	if !strings.Contains(ts.logs.String(), "request handler panicked") {
		t.Fatal("panic not logged")
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxFrameSize: 1 << 20}, func(s *Server) { s.Handle(SendMessage, echo) })
	good := newTestClient(t)
	word := func(total, hw uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, total), hw)
	}
	frames := map[string][]byte{
		"oversize length":  word(1<<20, 0),
		"2 GiB length":     word(0x7fffffff, 0),
		"negative length":  word(0xfffffff0, 0),
		"length too small": word(2, 0),
		// Only the length word: closed as soon as it says the frame cannot
		// hold a header word, without waiting for bytes that never come.
		"length 0 alone":     binary.BigEndian.AppendUint32(nil, 0),
		"length 2 alone":     binary.BigEndian.AppendUint32(nil, 2),
		"header len > frame": append(word(10, 100), make([]byte, 6)...),
		"bad JSON":           jsonFrame(`{"code":10,`, ""),
		"bad serialize type": append(word(6, 5<<24|2), '{', '}'),
		"bad binary header":  binaryFrame(make([]byte, 10), ""),
		"garbage":            []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"truncated then EOF": mustEncode(t, sendHeader())[:100],
		// The connection closes at once, like Java's; the valid frame's
		// response may or may not make it out first.
		"valid then bad JSON": append(mustEncode(t, sendHeader()), jsonFrame("nope", "")...),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			if _, err := rc.nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			if name == "truncated then EOF" {
				rc.nc.(*net.TCPConn).CloseWrite()
			}
			if !rc.closedByPeer() {
				t.Fatal("connection not closed")
			}
			if _, err := good.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, sendHeader()); err != nil {
				t.Fatal("other connection affected:", err)
			}
			local := rc.nc.LocalAddr().String()
			waitFor(t, "warn log", func() bool {
				for _, line := range strings.Split(ts.logs.String(), "\n") {
					if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, local) && strings.Contains(line, "bad frame") {
						return true
					}
				}
				return false
			})
		})
	}
}

func TestServerInitiatedInvoke(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) { s.Handle(HeartBeat, echo) })
	cl := newTestClient(t)
	gotOneway := make(chan *Command, 1)
	cl.Handle(GetConsumerRunningInfo, func(c *Conn, req *Command) *Command {
		resp := NewResponse(Success, "")
		resp.Body = []byte("running:" + req.Ext("consumerGroup"))
		return resp
	})
	cl.Handle(NotifyConsumerIdsChanged, func(c *Conn, req *Command) *Command {
		gotOneway <- req
		return NewResponse(Success, "must not be sent")
	})
	// The client's first request makes the connection; the server learns it.
	if _, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	sc := <-ts.conns
	for _, st := range []SerializeType{JSON, RocketMQ} {
		req := NewRequest(GetConsumerRunningInfo, map[string]string{"consumerGroup": "g1"}, nil)
		req.SerializeType = st
		resp, err := sc.Invoke(ctxTimeout(t, 5*time.Second), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != Success || string(resp.Body) != "running:g1" || resp.SerializeType != st {
			t.Fatalf("got %+v", resp)
		}
	}
	resp, err := sc.Invoke(ctxTimeout(t, 5*time.Second), NewRequest(ConsumeMessageDirectly, nil, nil))
	if err != nil || resp.Code != RequestCodeNotSupported {
		t.Fatalf("unsupported code at the client: %v %+v", err, resp)
	}
	if err := sc.InvokeOneway(NewRequest(NotifyConsumerIdsChanged, map[string]string{"consumerGroup": "g"}, nil)); err != nil {
		t.Fatal(err)
	}
	if req := <-gotOneway; !req.IsOneway() || req.Ext("consumerGroup") != "g" {
		t.Fatalf("oneway request %+v", req)
	}
	// The connection still works and nothing stray came back.
	if _, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if ts.opened.Load() != 1 {
		t.Fatalf("%d connections, want 1", ts.opened.Load())
	}
}

func TestClientTimeoutDropsLateResponse(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(*Conn, *Command) *Command {
			started <- struct{}{}
			<-release
			return NewResponse(PullNotFound, "late")
		})
		s.Handle(SendMessage, echo)
	})
	cl := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := cl.Invoke(ctx, ts.addr, NewRequest(PullMessage, nil, nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	conn, err := cl.Conn(context.Background(), ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.pmu.Lock()
	n := len(conn.pending)
	conn.pmu.Unlock()
	if n != 0 {
		t.Fatalf("%d pending calls left after timeout", n)
	}
	<-started
	close(release)
	// The late response is dropped; the next call gets its own answer.
	resp, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, sendHeader())
	if err != nil || resp.Code != Success {
		t.Fatalf("%v %+v", err, resp)
	}
}

func TestShutdownWaitsForInFlightHandler(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(*Conn, *Command) *Command {
			close(started)
			<-release
			return NewResponse(Success, "done")
		})
	})
	rc := dialRaw(t, ts.addr)
	rc.send(&Command{Code: PullMessage, Opaque: 1})
	<-started

	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	// Once the server is shutting down, Shutdown is waiting for the handler.
	// (Probing the listener by dialing would add a connection of its own,
	// whose OnClose the count below would see.)
	waitFor(t, "server shutting down", ts.isShutting)
	// New requests are refused while draining.
	rc.send(&Command{Code: PullMessage, Opaque: 2})
	if resp := rc.recv(); resp.Opaque != 2 || resp.Code != ServiceNotAvailable {
		t.Fatalf("request during shutdown: %+v", resp)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the handler finished", err)
	default:
	}
	close(release)
	if resp := rc.recv(); resp.Opaque != 1 || resp.Remark != "done" {
		t.Fatalf("in-flight response %+v", resp)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if !rc.closedByPeer() {
		t.Fatal("connection left open")
	}
	if ts.closed.Load() != 1 {
		t.Fatalf("OnClose ran %d times", ts.closed.Load())
	}
}

func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(*Conn, *Command) *Command {
			close(started)
			<-release
			return nil
		})
	})
	rc := dialRaw(t, ts.addr)
	rc.send(&Command{Code: PullMessage, Opaque: 1})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if !rc.closedByPeer() {
		t.Fatal("connection left open")
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, ServerConfig{IdleTimeout: 100 * time.Millisecond}, func(s *Server) { s.Handle(SendMessage, echo) })
	// The server arms the idle deadline when it starts serving the connection
	// and moves it at most once per deadlineSlack, so the request below need
	// not move it: measure from before the dial, the earliest it can be armed.
	start := time.Now()
	rc := dialRaw(t, ts.addr)
	rc.send(sendHeader())
	rc.recv()
	if !rc.closedByPeer() {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("closed after %v", d)
	}
	waitFor(t, "OnClose", func() bool { return ts.closed.Load() == 1 })
	if !strings.Contains(ts.logs.String(), "closing idle connection") {
		t.Fatal("idle close not logged")
	}
}

func TestOnCloseOncePerConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) { s.Handle(SendMessage, echo) })
	for i := 0; i < 5; i++ {
		rc := dialRaw(t, ts.addr)
		rc.send(sendHeader())
		rc.recv()
		sc := <-ts.conns
		if i%2 == 0 {
			rc.nc.Close()
		} else {
			sc.Close()
			sc.Close()
			<-sc.Done()
		}
	}
	waitFor(t, "5 OnClose", func() bool { return ts.closed.Load() == 5 })
	if ts.opened.Load() != 5 {
		t.Fatalf("opened %d", ts.opened.Load())
	}
}

func TestClientRedialsAfterClose(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) { s.Handle(SendMessage, echo) })
	cl := newTestClient(t)
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := cl.Invoke(ctx, ts.addr, sendHeader()); err != nil {
		t.Fatal(err)
	}
	first, _ := cl.Conn(ctx, ts.addr)
	(<-ts.conns).Close()
	<-first.Done()
	if _, err := cl.Invoke(ctx, ts.addr, sendHeader()); err != nil {
		t.Fatal(err)
	}
	if ts.opened.Load() != 2 {
		t.Fatalf("opened %d connections, want 2", ts.opened.Load())
	}
	// Dial failures are reported and not cached.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	if _, err := cl.Invoke(ctx, dead, sendHeader()); err == nil {
		t.Fatal("invoke to a closed port succeeded")
	}
	if _, err := cl.Invoke(ctx, dead, sendHeader()); err == nil || errors.Is(err, ErrClientClosed) {
		t.Fatalf("second dial: %v", err)
	}
}

func TestClientCloseFailsPending(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(*Conn, *Command) *Command { close(started); <-release; return nil })
	})
	cl := NewClient(ClientConfig{})
	errc := make(chan error, 1)
	go func() {
		_, err := cl.Invoke(context.Background(), ts.addr, NewRequest(PullMessage, nil, nil))
		errc <- err
	}()
	<-started
	cl.Close()
	if err := <-errc; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending call: %v", err)
	}
	if _, err := cl.Invoke(context.Background(), ts.addr, sendHeader()); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestConcurrentCallersShareOneConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(SendMessage, func(c *Conn, req *Command) *Command {
			if n, _ := req.ExtInt32("i"); n%7 == 0 {
				time.Sleep(time.Millisecond) // reorder responses
			}
			return echo(c, req)
		})
	})
	cl := newTestClient(t)
	const workers, calls = 32, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				id := strconv.Itoa(w*calls + i)
				req := NewRequest(SendMessage, map[string]string{"i": id}, []byte(id))
				if i%2 == 1 {
					req.SerializeType = RocketMQ
				}
				resp, err := cl.Invoke(ctxTimeout(t, 10*time.Second), ts.addr, req)
				if err != nil {
					errs <- err
					return
				}
				if resp.Ext("i") != id || string(resp.Body) != id {
					errs <- errors.New("response for " + resp.Ext("i") + " delivered to " + id)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ts.opened.Load() != 1 {
		t.Fatalf("%d connections, want 1", ts.opened.Load())
	}
}

func TestLargeBodiesAndLooseExtOverTheWire(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, echo)
		s.Handle(SendMessage, func(_ *Conn, req *Command) *Command {
			resp := NewResponse(Success, "")
			resp.SetExt("seen", req.Ext("queueId")+","+req.Ext("unitMode")+","+req.Language.String())
			return resp
		})
	})
	cl := newTestClient(t)
	big := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB: written with writev
	for _, st := range []SerializeType{JSON, RocketMQ} {
		req := NewRequest(PullMessage, map[string]string{"k": "v"}, big)
		req.SerializeType = st
		resp, err := cl.Invoke(ctxTimeout(t, 10*time.Second), ts.addr, req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.Body, big) || resp.Ext("k") != "v" {
			t.Fatalf("%v: big body mangled (%d bytes back)", st, len(resp.Body))
		}
	}
	// A third-party client's header: bare number and bool ext values.
	rc := dialRaw(t, ts.addr)
	if _, err := rc.nc.Write(jsonFrame(`{"code":10,"language":"JAVA","version":373,"opaque":9,"flag":0,"extFields":{"queueId":0,"unitMode":false}}`, "")); err != nil {
		t.Fatal(err)
	}
	if resp := rc.recv(); resp.Ext("seen") != "0,false,JAVA" || resp.Opaque != 9 {
		t.Fatalf("got %+v", resp)
	}
}

func TestUnencodableResponseAnswersSystemError(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(SendMessage, func(*Conn, *Command) *Command {
			resp := NewResponse(Success, "")
			resp.SetExt(strings.Repeat("k", 40000), "key too long for the binary header")
			return resp
		})
	})
	req := sendHeader()
	req.SerializeType = RocketMQ
	resp, err := newTestClient(t).Invoke(ctxTimeout(t, 5*time.Second), ts.addr, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != SystemError || resp.SerializeType != RocketMQ {
		t.Fatalf("got %+v", resp)
	}
}

func TestClientInvokeOneway(t *testing.T) {
	got := make(chan *Command, 1)
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(UpdateConsumerOffset, func(_ *Conn, req *Command) *Command { got <- req; return NewResponse(Success, "") })
		s.Handle(SendMessage, echo)
	})
	cl := newTestClient(t)
	if err := cl.InvokeOneway(ctxTimeout(t, 5*time.Second), ts.addr, NewRequest(UpdateConsumerOffset, map[string]string{"a": "b"}, nil)); err != nil {
		t.Fatal(err)
	}
	if req := <-got; !req.IsOneway() || req.Ext("a") != "b" {
		t.Fatalf("got %+v", req)
	}
	if _, err := cl.Invoke(ctxTimeout(t, 5*time.Second), ts.addr, sendHeader()); err != nil {
		t.Fatal(err)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := NewServer(ServerConfig{})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener left open")
	}
}
