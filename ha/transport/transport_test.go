package transport_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mqd/mqd/ha/hatest"
	"github.com/mqd/mqd/storage"
)

// TestReplicateRollAndResume: the slave copies several commit-log files byte
// for byte, rebuilds the consume queues, and resumes after a restart.
func TestReplicateRollAndResume(t *testing.T) {
	p := hatest.NewPair(t)
	body := string(make([]byte, 3000))
	for i := range 200 { // ~600 KiB: rolls the 256 KiB files
		p.Put(t, fmt.Sprintf("%04d%s", i, body))
	}
	p.StartSlave(t)
	p.WaitCaughtUp(t)
	p.SameBytes(t)
	for q := int32(0); q < 4; q++ {
		if a, b := p.Master.MaxOffset("HA_TEST", q), p.Slave.MaxOffset("HA_TEST", q); a != b {
			t.Fatalf("queue %d: master %d slave %d", q, a, b)
		}
	}
	p.StopSlave()
	for i := range 100 {
		p.Put(t, fmt.Sprintf("after-%d", i))
	}
	p.StartSlave(t)
	p.WaitCaughtUp(t)
	p.SameBytes(t)
	if err := p.SlaveHA.Diverged(); err != nil {
		t.Fatal(err)
	}
}

// TestSlaveAheadDiverges: a slave holding more than its master (the master's
// store was replaced) is refused and marks itself diverged; its log is left
// as it was.
func TestSlaveAheadDiverges(t *testing.T) {
	p := hatest.NewPair(t)
	for i := range 20 {
		p.Put(t, fmt.Sprintf("m%d", i))
	}
	p.StartSlave(t)
	p.WaitCaughtUp(t)
	slaveMax := p.Slave.MaxPhyOffset()
	p.StopSlave()

	// A fresh master with less data, on the same HA transport fixture.
	q := hatest.NewPair(t)
	q.Put(t, "only")
	p.MasterHA = q.MasterHA
	p.StartSlave(t)
	hatest.WaitFor(t, 10*time.Second, func() bool { return p.SlaveHA.Diverged() != nil }, "divergence detected")
	if got := p.Slave.MaxPhyOffset(); got != slaveMax {
		t.Fatalf("diverged slave log changed: %d, was %d", got, slaveMax)
	}
	if q.MasterHA.SlaveCount() != 0 {
		t.Fatal("master counts a refused slave")
	}
}

// TestMasterRefusesGarbage: negative, huge and mid-record offsets are refused
// with a header-only frame and the connection closed (docs/faults.md R9).
func TestMasterRefusesGarbage(t *testing.T) {
	p := hatest.NewPair(t)
	for i := range 10 {
		p.Put(t, fmt.Sprintf("m%d", i))
	}
	for _, off := range []int64{-1, 1 << 50, 7} {
		c, err := net.Dial("tcp", p.MasterHA.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		var b [12]byte
		binary.BigEndian.PutUint64(b[:], uint64(off))
		if _, err := c.Write(b[:8]); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(b[:])
		got := int64(binary.BigEndian.Uint64(b[:]))
		if n < 12 || binary.BigEndian.Uint32(b[8:]) != 0 || got >= off && off > 0 {
			t.Fatalf("offset %d: answer %d bytes, offset %d", off, n, got)
		}
		if _, err := c.Read(b[:]); err == nil {
			t.Fatalf("offset %d: connection still open", off)
		}
		c.Close()
	}
	if p.MasterHA.SlaveCount() != 0 || p.MasterHA.AckedOffset() != 0 {
		t.Fatal("garbage counted as a slave")
	}
}

// TestCorruptFrameDiverges: bytes that are not records at their offsets are
// refused by the slave store and nothing is dispatched.
func TestCorruptFrameDiverges(t *testing.T) {
	p := hatest.NewPair(t)
	p.Put(t, "a")
	p.StartSlave(t)
	p.WaitCaughtUp(t)
	end := p.Slave.MaxPhyOffset()
	junk := make([]byte, 200)
	for i := range junk {
		junk[i] = byte(i)
	}
	err := p.Slave.AppendRaw(end, junk)
	if err == nil {
		t.Fatal("junk accepted")
	}
	if p.Slave.MaxPhyOffset() != end {
		t.Fatalf("junk left in the log: max %d, was %d", p.Slave.MaxPhyOffset(), end)
	}
	if err := p.Slave.AppendRaw(end+5, junk); err == nil || !isMismatch(err) {
		t.Fatalf("append past the end: %v", err)
	}
}

func isMismatch(err error) bool { return errors.Is(err, storage.ErrOffsetMismatch) }
