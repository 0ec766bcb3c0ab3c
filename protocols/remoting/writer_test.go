package remoting

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// partsOf splits b into n parts (the last may be shorter), aliasing b.
func partsOf(b []byte, n int) [][]byte {
	var parts [][]byte
	size := (len(b) + n - 1) / n
	for len(b) > 0 {
		k := min(size, len(b))
		parts = append(parts, b[:k])
		b = b[k:]
	}
	return parts
}

func TestEncodeBodyParts(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	for _, st := range []SerializeType{JSON, RocketMQ} {
		whole := sendHeader()
		whole.SerializeType = st
		whole.Body = body
		split := *whole
		split.Body = nil
		split.BodyParts = append(partsOf(body, 7), nil, []byte{})
		want, got := mustEncode(t, whole), mustEncode(t, &split)
		if len(want) != len(got) || !bytes.Equal(want[len(want)-len(body):], got[len(got)-len(body):]) {
			t.Fatalf("%v: frame with BodyParts differs from the one with Body", st)
		}
		dec, err := Decode(got)
		if err != nil {
			t.Fatal(err)
		}
		equalCommands(t, whole, dec)
	}
}

// TestBodyPartsOverTheWire sends multi-part bodies below and above the size
// from which they are written from the owner's memory, from concurrent
// handlers, and checks each body arrives whole and its OnWritten ran once.
func TestBodyPartsOverTheWire(t *testing.T) {
	var released atomic.Int64
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(_ *Conn, req *Command) *Command {
			n, _ := req.ExtInt64("size")
			body := make([]byte, n)
			for i := range body {
				body[i] = byte(i * 7)
			}
			resp := NewResponse(Success, "")
			resp.BodyParts = partsOf(body, 5)
			var once atomic.Int32
			resp.OnWritten = func() {
				if once.Add(1) != 1 {
					t.Error("OnWritten ran twice")
				}
				clear(body) // what a release may do to the memory
				released.Add(1)
			}
			return resp
		})
	})
	cl := newTestClient(t)
	sizes := []int{0, 10, 1000, largeBody - 1, largeBody, 100 << 10, 3 << 20}
	const rounds = 8
	errs := make(chan error, len(sizes)*rounds)
	for range rounds {
		for _, n := range sizes {
			go func() {
				req := NewRequest(PullMessage, map[string]string{"size": strconv.Itoa(n)}, nil)
				resp, err := cl.Invoke(ctxTimeout(t, 30*time.Second), ts.addr, req)
				if err == nil {
					for i, b := range resp.Body {
						if b != byte(i*7) {
							err = fmt.Errorf("size %d: byte %d is %d", n, i, b)
							break
						}
					}
					if len(resp.Body) != n {
						err = fmt.Errorf("size %d: got %d bytes", n, len(resp.Body))
					}
				}
				errs <- err
			}()
		}
	}
	for range len(sizes) * rounds {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every OnWritten", func() bool { return released.Load() == int64(len(sizes)*rounds) })
}

// TestOnWrittenOnWriteError: a peer that stops reading makes the write time
// out; the queued body is released once and the connection closes.
func TestOnWrittenOnWriteError(t *testing.T) {
	var released atomic.Int32
	chunk := make([]byte, 1<<20)
	ts := startServer(t, ServerConfig{WriteTimeout: 200 * time.Millisecond}, func(s *Server) {
		s.Handle(PullMessage, func(_ *Conn, req *Command) *Command {
			resp := NewResponse(Success, "")
			for range 64 { // far beyond the socket buffers
				resp.BodyParts = append(resp.BodyParts, chunk)
			}
			resp.OnWritten = func() { released.Add(1) }
			return resp
		})
	})
	rc := dialRaw(t, ts.addr)
	rc.nc.(*net.TCPConn).SetReadBuffer(4096)
	rc.send(NewRequest(PullMessage, nil, nil))
	waitFor(t, "OnWritten after the write timed out", func() bool { return released.Load() == 1 })
	waitFor(t, "connection closed", func() bool { return ts.closed.Load() == 1 })
	if n := released.Load(); n != 1 {
		t.Fatalf("OnWritten ran %d times", n)
	}
}

// TestOnWrittenWhenNotSent: a response to a closed connection or to a oneway
// request is never written, and its body is still released once.
func TestOnWrittenWhenNotSent(t *testing.T) {
	var released atomic.Int32
	unblock, waiting := make(chan struct{}), make(chan struct{})
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(PullMessage, func(_ *Conn, req *Command) *Command {
			if req.Ext("wait") != "" {
				close(waiting)
				<-unblock
			}
			resp := NewResponse(Success, "")
			resp.BodyParts = [][]byte{make([]byte, 100<<10)}
			resp.OnWritten = func() { released.Add(1) }
			return resp
		})
	})
	rc := dialRaw(t, ts.addr)
	oneway := NewRequest(PullMessage, nil, nil)
	oneway.Flag = FlagOneway
	rc.send(oneway)
	waitFor(t, "OnWritten of the oneway answer", func() bool { return released.Load() == 1 })

	rc.send(NewRequest(PullMessage, map[string]string{"wait": "1"}, nil))
	sc := <-ts.conns
	<-waiting
	sc.Close()
	close(unblock)
	waitFor(t, "OnWritten of the answer to a closed connection", func() bool { return released.Load() == 2 })
	if err := sc.write(&Command{OnWritten: func() { released.Add(1) }}, 1, FlagResponse, JSON); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
	if n := released.Load(); n != 3 {
		t.Fatalf("OnWritten ran %d times for 3 unsent bodies", n)
	}
}

// TestCloseFlushesQueuedFrames: frames queued before Close are written before
// the socket closes.
func TestCloseFlushesQueuedFrames(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	rc := dialRaw(t, ts.addr)
	sc := <-ts.conns
	const n = 60 // 3 MB: queued without waiting for the peer to read
	body := make([]byte, 50<<10)
	for i := range n {
		resp := NewResponse(Success, "")
		resp.Body = body
		if err := sc.write(resp, int32(i), FlagResponse, JSON); err != nil {
			t.Fatal(err)
		}
	}
	go sc.Close()
	for i := range n {
		if c := rc.recv(); c.Opaque != int32(i) || len(c.Body) != len(body) {
			t.Fatalf("frame %d: opaque %d, %d bytes", i, c.Opaque, len(c.Body))
		}
	}
	if !rc.closedByPeer() {
		t.Fatal("connection not closed after the queued frames")
	}
}

// TestShutdownFlushesResponses: responses of handlers that finish during
// Shutdown reach the client before its connection closes.
func TestShutdownFlushesResponses(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 64)
	ts := startServer(t, ServerConfig{}, func(s *Server) {
		s.Handle(SendMessage, func(c *Conn, req *Command) *Command {
			started <- struct{}{}
			<-release
			return echo(c, req)
		})
	})
	cl := newTestClient(t)
	const n = 32
	req := NewRequest(SendMessage, nil, make([]byte, 40<<10))
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := cl.Invoke(ctxTimeout(t, 30*time.Second), ts.addr, req)
			errs <- err
		}()
	}
	for range n {
		<-started
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("in-flight call failed across Shutdown: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
