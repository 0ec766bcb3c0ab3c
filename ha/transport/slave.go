package transport

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
)

// Slave follows a master: it connects to the master's HA address, reports its
// offset, appends what it receives and reconnects after any failure. Once it
// detects that its log and the master's diverged it stops (see the package
// comment) and Diverged reports why.
type Slave struct {
	store storage.Replicable
	opts  Options
	log   zerolog.Logger

	master   atomic.Pointer[string]
	changed  chan struct{}
	diverged atomic.Pointer[error]

	connected   atomic.Bool
	masterMax   atomic.Int64 // the master's position in the last frame
	lastFrameMs atomic.Int64

	mu     sync.Mutex
	conn   net.Conn
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	active bool
}

// NewSlave returns a slave transport over store; Start runs it.
func NewSlave(store storage.Replicable, opts Options) *Slave {
	opts.defaults()
	s := &Slave{store: store, opts: opts, log: opts.Logger, changed: make(chan struct{}, 1), stop: make(chan struct{})}
	empty := ""
	s.master.Store(&empty)
	return s
}

// SetMasterAddr sets the master's HA address (from haMasterAddress or the name
// server's registration answer); a change drops the current connection.
func (s *Slave) SetMasterAddr(addr string) {
	if old := s.master.Swap(&addr); *old == addr {
		return
	}
	s.log.Info().Str("master", addr).Msg("HA master address")
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// MasterAddr is the current master HA address.
func (s *Slave) MasterAddr() string { return *s.master.Load() }

// Connected reports whether a session with the master is up.
func (s *Slave) Connected() bool { return s.connected.Load() }

// MasterOffset is the master's transfer position seen in its last frame.
func (s *Slave) MasterOffset() int64 { return s.masterMax.Load() }

// Diverged returns why replication stopped for good, or nil.
func (s *Slave) Diverged() error {
	if p := s.diverged.Load(); p != nil {
		return *p
	}
	return nil
}

// Start runs the connect loop.
func (s *Slave) Start() {
	s.active = true
	s.wg.Add(1)
	go s.loop()
}

// Stop ends the loop and the connection.
func (s *Slave) Stop() {
	s.once.Do(func() {
		close(s.stop)
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}

func (s *Slave) loop() {
	defer s.wg.Done()
	for {
		if s.Diverged() != nil {
			<-s.stop
			return
		}
		addr := s.MasterAddr()
		if addr != "" {
			err := s.session(addr)
			if err != nil && s.Diverged() == nil {
				s.log.Warn().Str("master", addr).Err(err).Dur("retryIn", s.opts.Reconnect).Msg("HA: connection to master lost")
			}
		}
		select {
		case <-s.stop:
			return
		case <-s.changed:
		case <-time.After(s.opts.Reconnect):
		}
	}
}

func (s *Slave) setDiverged(err error) {
	if s.diverged.CompareAndSwap(nil, &err) {
		s.log.Error().Err(err).Int64("slaveMaxOffset", s.store.MaxPhyOffset()).Str("master", s.MasterAddr()).
			Msg("HA: this slave's commit log diverged from its master's: replication stopped and reads refused; " +
				"repair: stop the slave, move its store directory away and restart it to copy the master's log")
	}
}

// session runs one connection until it fails.
func (s *Slave) session(addr string) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	var c net.Conn
	var err error
	if s.opts.TLS != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: s.opts.TLS}).Dial("tcp", addr)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		c.Close()
		return nil
	default:
	}
	s.conn = c
	s.mu.Unlock()
	s.connected.Store(true)
	defer func() {
		s.connected.Store(false)
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		c.Close()
	}()
	s.log.Info().Str("master", addr).Int64("offset", s.store.MaxPhyOffset()).Msg("HA: connected to master")

	var wmu sync.Mutex
	var lastReport atomic.Int64
	report := func() error {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(s.store.MaxPhyOffset()))
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(s.opts.Housekeeping))
		_, err := c.Write(b[:])
		lastReport.Store(time.Now().UnixNano())
		return err
	}
	if s.opts.BrokerID > 0 {
		var hello [16]byte
		binary.BigEndian.PutUint64(hello[:8], uint64(helloMagic))
		binary.BigEndian.PutUint64(hello[8:], uint64(s.opts.BrokerID))
		_ = c.SetWriteDeadline(time.Now().Add(s.opts.Housekeeping))
		if _, err := c.Write(hello[:]); err != nil {
			return err
		}
	}
	// Report at once (RocketMQ waits one heartbeat interval before its first
	// report, which only delays the start of the transfer).
	if err := report(); err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.opts.Heartbeat / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastReport.Load())) >= s.opts.Heartbeat {
					if report() != nil {
						c.Close()
						return
					}
				}
			}
		}
	}()

	r := bufio.NewReaderSize(c, 256<<10)
	var hdr [headerSize]byte
	var buf []byte
	unreported := 0 // bytes appended since the last report
	for {
		_ = c.SetReadDeadline(time.Now().Add(s.opts.Housekeeping))
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		off := int64(binary.BigEndian.Uint64(hdr[:]))
		size := int(int32(binary.BigEndian.Uint32(hdr[8:])))
		if size < 0 || size > maxFrameBody {
			return fmt.Errorf("HA frame of %d bytes at %d: protocol error", size, off)
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		data := buf[:size]
		if _, err := io.ReadFull(r, data); err != nil {
			return err
		}
		s.masterMax.Store(off + int64(size))
		s.lastFrameMs.Store(time.Now().UnixMilli())
		local := s.store.MaxPhyOffset()
		if off < 0 {
			err := fmt.Errorf("master at %s refused this slave's offset %d (its log says why)", addr, local)
			s.setDiverged(err)
			return err
		}
		if off != local && !(local == 0 && s.emptyStore()) {
			if off < local {
				err := fmt.Errorf("master at %s is at offset %d, behind this slave's %d (the master lost data or was re-seeded)", addr, off, local)
				s.setDiverged(err)
				return err
			}
			return fmt.Errorf("master sent offset %d, this slave is at %d", off, local)
		}
		if size == 0 {
			continue // heartbeat
		}
		if err := s.store.AppendRaw(off, data); err != nil {
			if errors.Is(err, storage.ErrDiverged) {
				s.setDiverged(err)
			}
			return err
		}
		// Confirm once per burst: frames already received are appended
		// first, so one report (one syscall each side, one wake-up of the
		// master's waiters) covers them all. A stream that never pauses
		// still gets a report per maxUnreported bytes or per millisecond.
		unreported += size
		if r.Buffered() >= headerSize && unreported < maxUnreported &&
			time.Since(time.Unix(0, lastReport.Load())) < time.Millisecond {
			continue
		}
		unreported = 0
		if err := report(); err != nil {
			return err
		}
	}
}

func (s *Slave) emptyStore() bool {
	return s.store.MaxPhyOffset() == 0
}
