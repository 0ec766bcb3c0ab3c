package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
)

// Master serves the HA port of a master broker. It implements ha.Source.
type Master struct {
	store storage.Replicable
	opts  Options
	log   zerolog.Logger

	ln    net.Listener
	acked atomic.Int64 // highest confirmed offset (push2SlaveMaxOffset)
	ackCh atomic.Pointer[chan struct{}]
	conns atomic.Pointer[[]*masterConn] // copy-on-write, for Notify
	// confirmCh and memberCh are broadcasts made only while someone
	// listens: nil until ConfirmChanged or MembersChanged asks, closed and
	// cleared at the next event, so the confirmation path allocates
	// nothing for modes that never ask.
	confirmCh atomic.Pointer[chan struct{}]
	memberCh  atomic.Pointer[chan struct{}]
	mu        sync.Mutex // writers of conns
	closed    chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
}

// NewMaster returns a master transport over store; Serve starts it.
func NewMaster(store storage.Replicable, opts Options) *Master {
	opts.defaults()
	m := &Master{store: store, opts: opts, log: opts.Logger, closed: make(chan struct{})}
	ch := make(chan struct{})
	m.ackCh.Store(&ch)
	m.conns.Store(&[]*masterConn{})
	return m
}

// Serve accepts slaves on ln until Close.
func (m *Master) Serve(ln net.Listener) {
	m.ln = ln
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				select {
				case <-m.closed:
					return
				default:
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				m.log.Error().Err(err).Msg("HA accept failed; replication port closed")
				return
			}
			m.start(c)
		}
	}()
}

// Addr is the listening address.
func (m *Master) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// Close stops accepting and closes every slave connection.
func (m *Master) Close() error {
	m.once.Do(func() {
		close(m.closed)
		if m.ln != nil {
			m.ln.Close()
		}
		for _, c := range *m.conns.Load() {
			c.close()
		}
	})
	m.wg.Wait()
	return nil
}

// AckedOffset implements ha.Source.
func (m *Master) AckedOffset() int64 { return m.acked.Load() }

// AckChanged implements ha.Source.
func (m *Master) AckChanged() <-chan struct{} { return *m.ackCh.Load() }

// SlaveCount implements ha.Source: connections whose slave has reported and
// was accepted.
func (m *Master) SlaveCount() int {
	n := 0
	for _, c := range *m.conns.Load() {
		if c.accepted.Load() {
			n++
		}
	}
	return n
}

// Notify implements ha.Source: wake the senders (non-blocking, no allocation).
func (m *Master) Notify() {
	for _, c := range *m.conns.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// ConfirmChanged returns a channel closed at the next confirmation of any
// slave (AckChanged fires only when the highest one rises).
func (m *Master) ConfirmChanged() <-chan struct{} { return lazyBroadcast(&m.confirmCh) }

// MembersChanged returns a channel closed when a slave is accepted or leaves.
func (m *Master) MembersChanged() <-chan struct{} { return lazyBroadcast(&m.memberCh) }

func lazyBroadcast(p *atomic.Pointer[chan struct{}]) <-chan struct{} {
	for {
		if ch := p.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		if p.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

func fire(p *atomic.Pointer[chan struct{}]) {
	if ch := p.Swap(nil); ch != nil {
		close(*ch)
	}
}

// SlaveAck is one accepted slave and the offset it last confirmed.
type SlaveAck struct {
	Addr      string
	BrokerID  int64 // from the slave's hello; 0 when it sent none
	Confirmed int64
}

// Confirmed appends every accepted slave's confirmation to dst (no
// allocation when dst has room).
func (m *Master) Confirmed(dst []SlaveAck) []SlaveAck {
	for _, c := range *m.conns.Load() {
		if c.accepted.Load() {
			dst = append(dst, SlaveAck{Addr: c.addr, BrokerID: c.brokerID.Load(), Confirmed: c.ack.Load()})
		}
	}
	return dst
}

// ConfirmedBy is the highest confirmation of the accepted slaves that named
// broker id in their hello, or -1 when none is connected (no allocation:
// ha.insync asks per waiting write).
func (m *Master) ConfirmedBy(id int64) int64 {
	best := int64(-1)
	for _, c := range *m.conns.Load() {
		if c.accepted.Load() && c.brokerID.Load() == id {
			best = max(best, c.ack.Load())
		}
	}
	return best
}

// SlaveInfo describes one connected slave.
type SlaveInfo struct {
	Addr      string `json:"addr"`
	BrokerID  int64  `json:"brokerId,omitempty"`
	AckOffset int64  `json:"ackOffset"`
	Lag       int64  `json:"lagBytes"`
}

// Slaves lists the accepted slaves.
func (m *Master) Slaves() []SlaveInfo {
	max := m.store.MaxPhyOffset()
	var out []SlaveInfo
	for _, c := range *m.conns.Load() {
		if c.accepted.Load() {
			a := c.ack.Load()
			out = append(out, SlaveInfo{Addr: c.addr, BrokerID: c.brokerID.Load(), AckOffset: a, Lag: max - a})
		}
	}
	return out
}

func (m *Master) raiseAck(v int64) {
	for {
		cur := m.acked.Load()
		if v <= cur {
			return
		}
		if m.acked.CompareAndSwap(cur, v) {
			break
		}
	}
	ch := make(chan struct{})
	old := m.ackCh.Swap(&ch)
	close(*old)
}

func (m *Master) setConns(f func([]*masterConn) []*masterConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := f(append([]*masterConn(nil), *m.conns.Load()...))
	m.conns.Store(&next)
	fire(&m.memberCh)
}

// masterConn is one slave's connection: a reader of offset reports and a
// sender of frames.
type masterConn struct {
	m        *Master
	c        net.Conn
	addr     string
	wake     chan struct{}
	start    chan int64
	accepted atomic.Bool
	brokerID atomic.Int64 // from the hello, before accepted is set
	ack      atomic.Int64
	done     chan struct{}
	once     sync.Once
}

func (m *Master) start(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	mc := &masterConn{m: m, c: c, addr: c.RemoteAddr().String(), wake: make(chan struct{}, 1),
		start: make(chan int64, 1), done: make(chan struct{})}
	select {
	case <-m.closed:
		c.Close()
		return
	default:
	}
	m.setConns(func(l []*masterConn) []*masterConn { return append(l, mc) })
	m.log.Info().Str("slave", mc.addr).Msg("HA connection from slave")
	m.wg.Add(2)
	go mc.readLoop()
	go mc.sendLoop()
}

func (mc *masterConn) close() {
	mc.once.Do(func() {
		close(mc.done)
		mc.c.Close()
		mc.m.setConns(func(l []*masterConn) []*masterConn {
			for i, x := range l {
				if x == mc {
					return append(l[:i], l[i+1:]...)
				}
			}
			return l
		})
	})
}

// readLoop reads the slave's 8-byte offset reports. The first one is checked
// and tells the sender where to start; every one is a confirmation.
func (mc *masterConn) readLoop() {
	defer mc.m.wg.Done()
	defer mc.close()
	var buf [8]byte
	// Buffered so that reports which arrived together cost one read and
	// raise the confirmation once, to the newest of them.
	r := bufio.NewReaderSize(mc.c, 512)
	first := true
	for {
		_ = mc.c.SetReadDeadline(time.Now().Add(mc.m.opts.Housekeeping))
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			select {
			case <-mc.done:
			default:
				mc.m.log.Info().Str("slave", mc.addr).Err(err).Int64("ackOffset", mc.ack.Load()).Msg("HA connection closed")
			}
			return
		}
		v := int64(binary.BigEndian.Uint64(buf[:]))
		if first && v == helloMagic {
			if _, err := io.ReadFull(r, buf[:]); err != nil {
				return
			}
			mc.brokerID.Store(int64(binary.BigEndian.Uint64(buf[:])))
			continue
		}
		max := mc.m.store.MaxPhyOffset()
		if first {
			first = false
			start, err := mc.check(v, max)
			if err != nil {
				mc.m.log.Error().Str("slave", mc.addr).Int64("slaveOffset", v).Int64("masterMaxOffset", max).
					Int64("masterMinOffset", mc.m.store.MinPhyOffset()).Err(err).
					Msg("HA: refusing slave: its commit log diverged from this master's; repair the slave (see package ha/transport)")
				// One header-only frame tells an mqd slave why: the master's
				// max offset when the slave is ahead, else -1 (refused).
				refusal := int64(-1)
				if v > max {
					refusal = max
				}
				var hdr [headerSize]byte
				putHeader(hdr[:], refusal, 0)
				_ = mc.c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = mc.c.Write(hdr[:])
				return
			}
			mc.ack.Store(v)
			mc.accepted.Store(true)
			fire(&mc.m.memberCh)
			mc.start <- start
			mc.m.log.Info().Str("slave", mc.addr).Int64("slaveOffset", v).Int64("from", start).
				Int64("masterMaxOffset", max).Msg("HA: slave accepted, transferring")
			if v > 0 {
				mc.m.raiseAck(v)
			}
			continue
		}
		for {
			if v < 0 || v > max {
				// RocketMQ 4.9.8 closes the connection as well.
				mc.m.log.Error().Str("slave", mc.addr).Int64("slaveOffset", v).Int64("masterMaxOffset", max).
					Msg("HA: slave confirmed an offset beyond this master's log; closing")
				return
			}
			if r.Buffered() < len(buf) {
				break
			}
			_, _ = io.ReadFull(r, buf[:]) // buffered: cannot fail
			v = int64(binary.BigEndian.Uint64(buf[:]))
		}
		mc.ack.Store(v)
		mc.m.raiseAck(v)
		fire(&mc.m.confirmCh)
	}
}

// coalesce lets senders that are already runnable append before a small
// frame goes out, so one frame (one syscall each side, one confirmation)
// carries what many of them put. It yields while the log keeps growing, and
// for up to coalesceWait until as much is there as the previous frame carried
// (under steady load the senders the last confirmation released put again
// meanwhile); a lone sender's frame leaves at once.
func coalesce(st storage.Replicable, next int64, batch, want int) {
	prev := st.MaxPhyOffset()
	if prev-next >= int64(min(batch, want)) || prev == next {
		return
	}
	deadline := time.Now().Add(coalesceWait)
	for range 64 {
		runtime.Gosched()
		cur := st.MaxPhyOffset()
		if cur-next >= int64(min(batch, want)) || (cur == prev && time.Now().After(deadline)) {
			return
		}
		prev = cur
	}
}

// check validates a slave's first report and returns where to send from.
func (mc *masterConn) check(v, max int64) (int64, error) {
	st := mc.m.store
	switch {
	case v < 0:
		return 0, fmt.Errorf("negative offset %d", v)
	case v == 0:
		// An empty slave copies the whole retained log.
		return st.MinPhyOffset(), nil
	case v > max:
		return 0, fmt.Errorf("slave is ahead of the master by %d bytes (the master lost data or was re-seeded)", v-max)
	case v < st.MinPhyOffset():
		return 0, fmt.Errorf("slave offset is older than the master's oldest retained byte %d", st.MinPhyOffset())
	case !st.RecordBoundary(v):
		return 0, errors.New("slave offset is not a record boundary in the master's log (the logs have different histories)")
	}
	return v, nil
}

// sendLoop streams the commit log from the slave's first report on.
func (mc *masterConn) sendLoop() {
	defer mc.m.wg.Done()
	defer mc.close()
	var next int64
	select {
	case next = <-mc.start:
	case <-mc.done:
		return
	}
	o := &mc.m.opts
	var hdr [headerSize]byte
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	lastWrite := time.Now()
	lastFrame := 0
	write := func(data []byte) error {
		putHeader(hdr[:], next, len(data))
		_ = mc.c.SetWriteDeadline(time.Now().Add(o.Housekeeping))
		bufs := net.Buffers{hdr[:], data}
		_, err := bufs.WriteTo(mc.c)
		lastWrite = time.Now()
		return err
	}
	for {
		coalesce(mc.m.store, next, o.BatchSize, lastFrame)
		data, release, err := mc.m.store.ReadRaw(next, o.BatchSize)
		if err != nil {
			mc.m.log.Error().Str("slave", mc.addr).Int64("offset", next).Err(err).Msg("HA: cannot read the commit log for the slave; closing")
			return
		}
		if len(data) > 0 {
			lastFrame = len(data)
			err := write(data)
			release()
			if err != nil {
				mc.m.log.Info().Str("slave", mc.addr).Err(err).Msg("HA: send failed")
				return
			}
			next += int64(len(data))
			continue
		}
		if time.Since(lastWrite) >= o.Heartbeat {
			if err := write(nil); err != nil {
				return
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(idleWait)
		select {
		case <-mc.wake:
		case <-timer.C:
		case <-mc.done:
			return
		}
	}
}
