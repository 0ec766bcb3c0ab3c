package broker

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/logging/logtest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
)

// offsetMaster serves the metadata and offset handlers over real TCP.
func offsetMaster(t *testing.T) (*Broker, string) {
	t.Helper()
	m := newMetaBroker(t, "")
	addr := serveMeta(t, m)
	m.server.Handle(remoting.UpdateConsumerOffset, m.handleUpdateConsumerOffset)
	return m, addr
}

// offsetSlave is a slave's offset side in dir: its role, a client to the
// master and the syncer (which loads the saved unconfirmed offsets).
func offsetSlave(t *testing.T, dir string, logs io.Writer) (*Broker, *slaveSyncer) {
	t.Helper()
	s := newMetaBroker(t, dir)
	s.log = zerolog.New(logs)
	role := storage.RoleSlave
	s.ha = &haService{b: s}
	s.ha.role.Store(&role)
	s.nsClient = remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	t.Cleanup(func() { _ = s.nsClient.Close() })
	return s, newSlaveSyncer(s)
}

// clientCommit sends b's handler the UPDATE_CONSUMER_OFFSET a client sends.
func clientCommit(t *testing.T, b *Broker, q int32, off int64) {
	t.Helper()
	resp := b.handleUpdateConsumerOffset(nil, remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{
		"consumerGroup": "g", "topic": "t", "queueId": strconv.Itoa(int(q)), "commitOffset": strconv.FormatInt(off, 10),
	}, nil))
	if resp.Code != remoting.Success {
		t.Fatalf("commit q%d=%d: %d %s", q, off, resp.Code, resp.Remark)
	}
}

func wantOffsets(t *testing.T, who string, b *Broker, want map[int32]int64) {
	t.Helper()
	for q, w := range want {
		got, ok := b.offsets.Query("g", "t", q)
		if w < 0 {
			if ok {
				t.Errorf("%s q%d = %d, want none", who, q, got)
			}
			continue
		}
		if !ok || got != w {
			t.Errorf("%s q%d = %d (%v), want %d", who, q, got, ok, w)
		}
	}
}

func unconfirmedQueues(b *Broker) map[int32]bool {
	out := map[int32]bool{}
	b.offsets.mu.RLock()
	for k := range b.offsets.unconfirmed {
		out[k.queueID] = true
	}
	b.offsets.mu.RUnlock()
	return out
}

func wantUnconfirmed(t *testing.T, b *Broker, qs ...int32) {
	t.Helper()
	got := unconfirmedQueues(b)
	if len(got) != len(qs) {
		t.Fatalf("unconfirmed queues %v, want %v", got, qs)
	}
	for _, q := range qs {
		if !got[q] {
			t.Fatalf("unconfirmed queues %v, want %v", got, qs)
		}
	}
}

func syncRound(t *testing.T, s *slaveSyncer, addr string) {
	t.Helper()
	s.syncOffsets(addr, func(what string, err error) { t.Fatalf("sync %s: %v", what, err) })
}

// TestSlaveGivesOffsetsBack pins the rules of giving offsets committed on a
// slave back to its master: ahead or unknown to the master is pushed and kept,
// behind the master is not pushed and takes the master's value, confirmation
// comes from the master's table at the next round, and offsets only move
// forward.
func TestSlaveGivesOffsetsBack(t *testing.T) {
	master, addr := offsetMaster(t)
	slave, s := offsetSlave(t, t.TempDir(), io.Discard)
	master.offsets.Commit("g", "t", 0, 10)
	master.offsets.Commit("g", "t", 1, 50)
	syncRound(t, s, addr)
	wantOffsets(t, "slave", slave, map[int32]int64{0: 10, 1: 50})
	wantUnconfirmed(t, slave) // copied from the master: nothing to give back

	// While the master is away, a client commits on the slave.
	clientCommit(t, slave, 0, 20) // ahead of the master
	clientCommit(t, slave, 1, 30) // behind it
	clientCommit(t, slave, 2, 5)  // a queue the master does not know
	wantUnconfirmed(t, slave, 0, 1, 2)

	syncRound(t, s, addr)
	wantOffsets(t, "master", master, map[int32]int64{0: 20, 1: 50, 2: 5})
	wantOffsets(t, "slave", slave, map[int32]int64{0: 20, 1: 50, 2: 5})
	wantUnconfirmed(t, slave, 0, 2) // pushed, not confirmed yet; 1: the master is ahead
	if n := len(unconfirmedQueues(master)); n != 0 {
		t.Fatalf("the master tracks %d unconfirmed queues", n)
	}
	syncRound(t, s, addr)
	wantUnconfirmed(t, slave) // the master's table shows them

	// The consumer moved on at the master; a late commit on the slave behind it
	// is not pushed, and the slave follows the master.
	master.offsets.Commit("g", "t", 0, 25)
	clientCommit(t, slave, 0, 22)
	syncRound(t, s, addr)
	wantOffsets(t, "master", master, map[int32]int64{0: 25})
	wantOffsets(t, "slave", slave, map[int32]int64{0: 25})
	wantUnconfirmed(t, slave)

	// The master is ahead on a queue it confirmed long ago, and the slave's
	// client commits the same value: confirmed at once, nothing pushed.
	clientCommit(t, slave, 1, 50)
	syncRound(t, s, addr)
	wantUnconfirmed(t, slave)

	// A queue deleted on the slave before the master learnt of it is dropped.
	clientCommit(t, slave, 3, 1)
	slave.offsets.deleteWhere(func(k offsetKey) bool { return k.queueID == 3 })
	syncRound(t, s, addr)
	wantUnconfirmed(t, slave)
	wantOffsets(t, "master", master, map[int32]int64{3: -1})
}

// TestSlaveOffsetRejectedStaysUnconfirmed: a master that refuses the update or
// cannot be reached leaves the queue unconfirmed (logged once a round, not per
// queue); the next round that gets through gives it back.
func TestSlaveOffsetRejectedStaysUnconfirmed(t *testing.T) {
	master, addr := offsetMaster(t)
	logs := &logtest.Buffer{}
	slave, s := offsetSlave(t, t.TempDir(), logs)
	master.server.Handle(remoting.UpdateConsumerOffset, func(*remoting.Conn, *remoting.Command) *remoting.Command {
		return remoting.NewResponse(remoting.NoPermission, "not today")
	})
	for q := range int32(3) {
		clientCommit(t, slave, q, 7)
	}
	syncRound(t, s, addr)
	wantUnconfirmed(t, slave, 0, 1, 2)
	wantOffsets(t, "slave", slave, map[int32]int64{0: 7, 1: 7, 2: 7})
	if n := strings.Count(logs.String(), "the master rejected"); n != 1 || !strings.Contains(logs.String(), "not today") ||
		!strings.Contains(logs.String(), `"rejected":3`) {
		t.Fatalf("want one rejection line for 3 queues with the master's remark, got:\n%s", logs.String())
	}

	// Unreachable: GET_ALL_CONSUMER_OFFSET fails, nothing changes.
	s.syncOffsets("127.0.0.1:1", func(string, error) {})
	wantUnconfirmed(t, slave, 0, 1, 2)

	master.server.Handle(remoting.UpdateConsumerOffset, master.handleUpdateConsumerOffset)
	syncRound(t, s, addr)
	wantOffsets(t, "master", master, map[int32]int64{0: 7, 1: 7, 2: 7})
	syncRound(t, s, addr)
	wantUnconfirmed(t, slave)
}

// TestSlaveUnconfirmedOffsetsSurviveRestart: the unconfirmed set is saved
// with each round, and a slave restarted during the outage still gives its
// offsets back, raising a consumerOffset.json saved before the last commit.
func TestSlaveUnconfirmedOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	slave, s := offsetSlave(t, dir, io.Discard)
	clientCommit(t, slave, 0, 3)
	if err := slave.offsets.Persist(); err != nil {
		t.Fatal(err)
	}
	clientCommit(t, slave, 0, 9) // after consumerOffset.json was written
	clientCommit(t, slave, 1, 4)
	s.persistUnconfirmed()
	if _, err := os.Stat(filepath.Join(dir, unconfirmedOffsetFile)); err != nil {
		t.Fatal(err)
	}

	master, addr := offsetMaster(t)
	slave2, s2 := offsetSlave(t, dir, io.Discard)
	wantOffsets(t, "restarted slave", slave2, map[int32]int64{0: 9, 1: 4})
	wantUnconfirmed(t, slave2, 0, 1)
	syncRound(t, s2, addr)
	wantOffsets(t, "master", master, map[int32]int64{0: 9, 1: 4})
	syncRound(t, s2, addr)
	wantUnconfirmed(t, slave2)
	s2.persistUnconfirmed()

	// The emptied set is saved too: a later restart has nothing to give back.
	_, s3 := offsetSlave(t, dir, io.Discard)
	if n := len(unconfirmedQueues(s3.b)); n != 0 {
		t.Fatalf("%d unconfirmed queues after they were confirmed and saved", n)
	}
}
