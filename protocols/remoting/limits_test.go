package remoting

import (
	"strings"
	"sync"
	"testing"
)

// TestConnectionLimits: a connection beyond MaxConnsPerHost or MaxConns is
// closed at once; the connections already open keep working, and a slot
// freed by a close is usable again. The refusal is logged once per address,
// not per connection.
func TestConnectionLimits(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  ServerConfig
	}{
		{"perHost", ServerConfig{MaxConnsPerHost: 2}},
		{"total", ServerConfig{MaxConns: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := startServer(t, c.cfg, func(s *Server) { s.Handle(HeartBeat, echo) })
			a, b := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
			for _, r := range []*rawConn{a, b} {
				r.send(NewRequest(HeartBeat, nil, []byte("x")))
				if resp := r.recv(); resp.Code != Success {
					t.Fatalf("within the limit: %d", resp.Code)
				}
			}
			for range 5 {
				extra := dialRaw(t, ts.addr)
				if !extra.closedByPeer() {
					t.Fatal("a connection beyond the limit was not closed")
				}
			}
			if n := ts.Refused(); n != 5 {
				t.Fatalf("refused %d, want 5", n)
			}
			if n := strings.Count(ts.logs.String(), "connection refused: connection limit reached"); n != 1 {
				t.Fatalf("refusal logged %d times, want once", n)
			}
			a.send(NewRequest(HeartBeat, nil, nil))
			if resp := a.recv(); resp.Code != Success {
				t.Fatalf("open connection after refusals: %d", resp.Code)
			}
			a.nc.Close()
			waitFor(t, "the closed connection to leave", func() bool { return ts.closed.Load() >= 1 })
			d := dialRaw(t, ts.addr)
			d.send(NewRequest(HeartBeat, nil, nil))
			if resp := d.recv(); resp.Code != Success {
				t.Fatalf("after a slot freed: %d", resp.Code)
			}
		})
	}
}

// TestMaxInflight: one connection's requests beyond MaxInflight are answered
// SYSTEM_BUSY at once while the others run; the connection stays usable.
func TestMaxInflight(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	ts := startServer(t, ServerConfig{MaxInflight: 2}, func(s *Server) {
		s.Handle(PullMessage, func(c *Conn, req *Command) *Command {
			started.Done()
			<-release
			return NewResponse(Success, "")
		})
		s.Handle(HeartBeat, echo)
	})
	r := dialRaw(t, ts.addr)
	for range 2 {
		r.send(NewRequest(PullMessage, nil, nil))
	}
	started.Wait()
	r.send(NewRequest(HeartBeat, nil, nil))
	if resp := r.recv(); resp.Code != SystemBusy {
		t.Fatalf("third request while two run: %d %q", resp.Code, resp.Remark)
	}
	close(release)
	for range 2 {
		if resp := r.recv(); resp.Code != Success {
			t.Fatalf("held request: %d", resp.Code)
		}
	}
	r.send(NewRequest(HeartBeat, nil, nil))
	if resp := r.recv(); resp.Code != Success {
		t.Fatalf("after the two finished: %d", resp.Code)
	}
}
