package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/logging"
)

// Consensus is hashicorp/raft (the library under Consul, Nomad and Vault):
// its log and stable store in one BoltDB file (raft-boltdb, bbolt), its file
// snapshot store, and its network transport on the peer address of
// controllerDLegerPeers, shared with the remoting protocol (mux.go).
// docs/controller.md says why this library.

// On-disk names under controllerStorePath.
const (
	raftDBFile   = "raft.db"
	snapshotsDir = "snapshots"
)

// Peer is one controller of controllerDLegerPeers ("n0-127.0.0.1:9877").
type Peer struct {
	ID   string
	Addr string
}

// ParsePeers parses RocketMQ's controllerDLegerPeers: id-host:port entries
// separated by semicolons.
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "-")
		if !ok || id == "" {
			return nil, fmt.Errorf("controllerDLegerPeers entry %q: want id-host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("controllerDLegerPeers entry %q: %w", part, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("controllerDLegerPeers: id %q appears twice", id)
		}
		seen[id] = true
		out = append(out, Peer{ID: id, Addr: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("controllerDLegerPeers is empty")
	}
	return out, nil
}

// fsm adapts the state to raft.FSM.
type fsm struct {
	mu sync.RWMutex
	st *state
	// applied is called after each event with its result (outside mu), so
	// the controller can log elections.
	applied func(*event, result)
}

var _ raft.FSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any {
	var e event
	if err := json.Unmarshal(l.Data, &e); err != nil {
		return fail(codeInvalidRequest, "undecodable raft entry %d: %v", l.Index, err)
	}
	f.mu.Lock()
	res := f.st.apply(&e)
	f.mu.Unlock()
	if f.applied != nil {
		f.applied(&e, res)
	}
	return res
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.st.marshal()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	st, err := unmarshalState(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

// read runs fn under the read lock.
func (f *fsm) read(fn func(*state)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}

// consensus is a running raft node.
type consensus struct {
	raft  *raft.Raft
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
}

// openConsensus starts this controller's raft node over layer. A node
// without state bootstraps the cluster of all peers (every node does the
// same with the same list, which raft allows); one with state resumes.
func openConsensus(self Peer, peers []Peer, dir string, layer raft.StreamLayer, f *fsm, log zerolog.Logger) (*consensus, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("controllerStorePath: %w", err)
	}
	hl := logging.HCLog(log, "raft", hclog.Warn)
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, raftDBFile))
	if err != nil {
		return nil, fmt.Errorf("controller raft store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, snapshotsDir), 2, hl)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("controller snapshots: %w", err)
	}
	trans := raft.NewNetworkTransportWithLogger(layer, 3, 5*time.Second, hl)
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(self.ID)
	conf.Logger = hl
	conf.SnapshotThreshold = 1024
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, err
	}
	if !existing {
		var servers []raft.Server
		for _, p := range peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			trans.Close()
			store.Close()
			return nil, fmt.Errorf("controller bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(conf, f, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("controller raft: %w", err)
	}
	return &consensus{raft: r, trans: trans, store: store}, nil
}

// propose appends e to the raft log and returns its result once applied
// here. Only the leader can propose.
func (c *consensus) propose(e *event, timeout time.Duration) (result, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return result{}, err
	}
	fut := c.raft.Apply(b, timeout)
	if err := fut.Error(); err != nil {
		return result{}, err
	}
	res, _ := fut.Response().(result)
	return res, nil
}

func (c *consensus) close() error {
	err := c.raft.Shutdown().Error()
	return errors.Join(err, c.trans.Close(), c.store.Close())
}
