package controller

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// One port for raft and for brokers. RocketMQ's controller serves brokers
// and mqadmin on its DLedger peer address (controllerAddr lists the
// addresses of controllerDLegerPeers), so mqd's does too: raft connections
// open with raftPreface, anything else is the remoting protocol. A remoting
// frame starts with its length, and no legal frame is "MQDR..." (1.3 GB)
// long, so the first bytes tell the two apart.

// raftPreface opens every raft connection mqd dials.
var raftPreface = []byte("MQDRAFT1")

// prefaceTimeout bounds how long an accepted connection may stay silent
// before its first bytes decide where it goes.
const prefaceTimeout = 10 * time.Second

// mux splits one listener into raft's stream layer and a listener of
// remoting connections.
type mux struct {
	ln       net.Listener
	raftCh   chan net.Conn
	remoteCh chan net.Conn
	closed   chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

func newMux(ln net.Listener) *mux {
	m := &mux{ln: ln, raftCh: make(chan net.Conn), remoteCh: make(chan net.Conn), closed: make(chan struct{})}
	m.wg.Add(1)
	go m.accept()
	return m
}

func (m *mux) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(c)
		}()
	}
}

// route reads the first bytes of c and hands it on.
func (m *mux) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(prefaceTimeout))
	r := bufio.NewReaderSize(c, 64)
	head, err := r.Peek(len(raftPreface))
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	ch := m.remoteCh
	if bytes.Equal(head, raftPreface) {
		_, _ = r.Discard(len(raftPreface))
		ch = m.raftCh
	}
	select {
	case ch <- &peekedConn{Conn: c, r: r}:
	case <-m.closed:
		c.Close()
	}
}

func (m *mux) close() {
	m.once.Do(func() {
		close(m.closed)
		m.ln.Close()
	})
	m.wg.Wait()
}

// peekedConn reads what route peeked before the rest of the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed from a channel.
type chanListener struct {
	ch     <-chan net.Conn
	closed <-chan struct{}
	addr   net.Addr
	once   sync.Once
	done   chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
	case <-l.done:
	}
	return nil, net.ErrClosed
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// remotingListener is the listener of the remoting connections.
func (m *mux) remotingListener() net.Listener {
	return &chanListener{ch: m.remoteCh, closed: m.closed, addr: m.ln.Addr(), done: make(chan struct{})}
}

// raftLayer is raft's stream layer over the mux.
type raftLayer struct {
	chanListener
	advertise net.Addr
}

var _ raft.StreamLayer = (*raftLayer)(nil)

func (m *mux) raftLayer(advertise net.Addr) *raftLayer {
	return &raftLayer{chanListener: chanListener{ch: m.raftCh, closed: m.closed, addr: advertise, done: make(chan struct{})}, advertise: advertise}
}

// Dial opens a raft connection to a peer and sends the preface.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(raftPreface); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

var _ io.Reader = (*peekedConn)(nil)
