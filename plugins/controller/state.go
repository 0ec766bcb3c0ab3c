package controller

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// The replicated state: what every controller agrees on through the raft
// log. Everything here changes only by applying an event (apply), so all
// controllers reach the same state from the same log; nothing reads a clock
// or a heartbeat. Liveness is the leader's own, in-memory knowledge
// (heartbeat.go) and reaches the state only as the events it decides on.
// docs/controller.md describes the rules.

// noMaster is MasterID when a group has no master.
const noMaster int64 = -1

// Group is one broker group (brokerName) as the controllers know it.
type Group struct {
	Cluster    string `json:"cluster"`
	BrokerName string `json:"brokerName"`
	// NextBrokerID is the id the next new replica gets (ids start at 1,
	// as in RocketMQ 5: a master answers the name servers as 0).
	NextBrokerID int64              `json:"nextBrokerId"`
	Replicas     map[int64]*Replica `json:"replicas"`
	// MasterID is the master's broker id or noMaster; MasterEpoch grows
	// with every change of master (and every loss of one).
	MasterID    int64 `json:"masterId"`
	MasterEpoch int32 `json:"masterEpoch"`
	// SyncStateSet is the ids that hold every acknowledged message: the
	// master and the slaves that are caught up. Only they may be elected.
	SyncStateSet      []int64 `json:"syncStateSet"`
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
}

// Replica is one broker of a group.
type Replica struct {
	ID           int64  `json:"brokerId"`
	Addr         string `json:"brokerAddress"`
	HAAddr       string `json:"haAddress,omitempty"`
	RegisterCode string `json:"registerCode,omitempty"`
}

// InSyncStateSet reports whether id is in the group's SyncStateSet.
func (g *Group) InSyncStateSet(id int64) bool { return slices.Contains(g.SyncStateSet, id) }

// MasterAddr is the master's remoting address, or "".
func (g *Group) MasterAddr() string {
	if r := g.Replicas[g.MasterID]; r != nil {
		return r.Addr
	}
	return ""
}

// clone is a deep copy, for readers outside the state's lock.
func (g *Group) clone() *Group {
	c := *g
	c.Replicas = make(map[int64]*Replica, len(g.Replicas))
	for id, r := range g.Replicas {
		rc := *r
		c.Replicas[id] = &rc
	}
	c.SyncStateSet = slices.Clone(g.SyncStateSet)
	return &c
}

// state is the controllers' replicated state machine.
type state struct {
	Groups map[string]*Group `json:"groups"` // by brokerName
}

func newState() *state { return &state{Groups: map[string]*Group{}} }

// Event kinds of the raft log.
const (
	evApplyBrokerID  = "applyBrokerId"
	evRegister       = "registerBroker"
	evElectMaster    = "electMaster"
	evAlterSyncState = "alterSyncStateSet"
)

// event is one raft log entry.
type event struct {
	Kind       string `json:"kind"`
	Cluster    string `json:"cluster,omitempty"`
	BrokerName string `json:"brokerName"`
	BrokerID   int64  `json:"brokerId,omitempty"`
	Addr       string `json:"addr,omitempty"`
	HAAddr     string `json:"haAddr,omitempty"`
	// RegisterCode proves that a replica applying for an id it already
	// holds is the one that got it (a retry after a lost answer).
	RegisterCode string `json:"registerCode,omitempty"`
	// electMaster: the new master, or noMaster when none may be elected.
	// ExpectMasterEpoch guards against a stale decision: the election
	// applies only if the epoch is still the one the leader decided on.
	NewMasterID       int64 `json:"newMasterId,omitempty"`
	ExpectMasterEpoch int32 `json:"expectMasterEpoch,omitempty"`
	// Unclean allows a master from outside the SyncStateSet
	// (enableElectUncleanMaster).
	Unclean bool `json:"unclean,omitempty"`
	// alterSyncStateSet: the master's view and the set it asks for.
	MasterID          int64   `json:"masterId,omitempty"`
	MasterEpoch       int32   `json:"masterEpoch,omitempty"`
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch,omitempty"`
	NewSyncStateSet   []int64 `json:"newSyncStateSet,omitempty"`
}

// result is what applying an event answers: a RocketMQ response code (0 for
// success), a remark, and the group after the event.
type result struct {
	Code   int16
	Remark string
	Group  *Group
}

// Response codes of the controller (RocketMQ 5 ResponseCode).
const (
	codeFencedMasterEpoch       int16 = 2000
	codeFencedSyncStateSetEpoch int16 = 2001
	codeInvalidMaster           int16 = 2002
	codeInvalidReplicas         int16 = 2003
	codeMasterNotAvailable      int16 = 2004
	codeInvalidRequest          int16 = 2005
	codeBrokerNotAlive          int16 = 2006
	codeNotLeader               int16 = 2007
	codeBrokerMetadataNotExist  int16 = 2008
	codeBrokerNeedRegister      int16 = 2010
	codeMasterStillExist        int16 = 2011
	codeElectMasterFailed       int16 = 2012
	codeBrokerIDInvalid         int16 = 2014
)

func fail(code int16, format string, args ...any) result {
	return result{Code: code, Remark: fmt.Sprintf(format, args...)}
}

// apply applies one event. It must be deterministic.
func (s *state) apply(e *event) result {
	if e.BrokerName == "" {
		return fail(codeInvalidRequest, "event %s without brokerName", e.Kind)
	}
	g := s.Groups[e.BrokerName]
	switch e.Kind {
	case evApplyBrokerID:
		if g == nil {
			g = &Group{Cluster: e.Cluster, BrokerName: e.BrokerName, NextBrokerID: 1, Replicas: map[int64]*Replica{}, MasterID: noMaster}
			s.Groups[e.BrokerName] = g
		}
		if r := g.Replicas[e.BrokerID]; r != nil {
			if r.RegisterCode != e.RegisterCode {
				return fail(codeBrokerIDInvalid, "broker id %d of %s belongs to another replica; the next free id is %d", e.BrokerID, e.BrokerName, g.NextBrokerID)
			}
			return result{Group: g.clone()}
		}
		if e.BrokerID != g.NextBrokerID || e.BrokerID <= 0 {
			return fail(codeBrokerIDInvalid, "broker id %d of %s is not the next free id %d", e.BrokerID, e.BrokerName, g.NextBrokerID)
		}
		g.Replicas[e.BrokerID] = &Replica{ID: e.BrokerID, Addr: e.Addr, HAAddr: e.HAAddr, RegisterCode: e.RegisterCode}
		g.NextBrokerID++
		return result{Group: g.clone()}

	case evRegister:
		if g == nil || g.Replicas[e.BrokerID] == nil {
			return fail(codeBrokerMetadataNotExist, "broker %s id %d has no id from this controller; it must apply for one", e.BrokerName, e.BrokerID)
		}
		r := g.Replicas[e.BrokerID]
		r.Addr, r.HAAddr = e.Addr, e.HAAddr
		return result{Group: g.clone()}

	case evElectMaster:
		if g == nil {
			return fail(codeBrokerMetadataNotExist, "no broker group %s", e.BrokerName)
		}
		if g.MasterEpoch != e.ExpectMasterEpoch {
			return fail(codeFencedMasterEpoch, "election for %s decided at master epoch %d, now %d", e.BrokerName, e.ExpectMasterEpoch, g.MasterEpoch)
		}
		if e.NewMasterID == noMaster {
			if g.MasterID == noMaster {
				return result{Group: g.clone()}
			}
			// The master is gone and no replica may follow it: the
			// epoch moves on so that the old master, should it come
			// back, is fenced; the SyncStateSet is kept, so a member
			// of it can be elected when it registers.
			g.MasterID = noMaster
			g.MasterEpoch++
			return result{Group: g.clone()}
		}
		if g.Replicas[e.NewMasterID] == nil {
			return fail(codeInvalidMaster, "broker %d is not a replica of %s", e.NewMasterID, e.BrokerName)
		}
		if len(g.SyncStateSet) > 0 && !g.InSyncStateSet(e.NewMasterID) && !e.Unclean {
			return fail(codeElectMasterFailed, "broker %d of %s is not in the SyncStateSet %v", e.NewMasterID, e.BrokerName, g.SyncStateSet)
		}
		g.MasterID = e.NewMasterID
		g.MasterEpoch++
		g.SyncStateSet = []int64{e.NewMasterID}
		g.SyncStateSetEpoch++
		return result{Group: g.clone()}

	case evAlterSyncState:
		if g == nil {
			return fail(codeBrokerMetadataNotExist, "no broker group %s", e.BrokerName)
		}
		switch {
		case g.MasterID == noMaster || g.MasterID != e.MasterID:
			return fail(codeInvalidMaster, "broker %d is not the master of %s (master %d)", e.MasterID, e.BrokerName, g.MasterID)
		case g.MasterEpoch != e.MasterEpoch:
			return fail(codeFencedMasterEpoch, "master epoch %d is stale, now %d", e.MasterEpoch, g.MasterEpoch)
		case g.SyncStateSetEpoch != e.SyncStateSetEpoch:
			return fail(codeFencedSyncStateSetEpoch, "SyncStateSet epoch %d is stale, now %d", e.SyncStateSetEpoch, g.SyncStateSetEpoch)
		case !slices.Contains(e.NewSyncStateSet, e.MasterID):
			return fail(codeInvalidReplicas, "a SyncStateSet must hold its master %d", e.MasterID)
		}
		for _, id := range e.NewSyncStateSet {
			if g.Replicas[id] == nil {
				return fail(codeInvalidReplicas, "broker %d is not a replica of %s", id, e.BrokerName)
			}
		}
		set := slices.Clone(e.NewSyncStateSet)
		sort.Slice(set, func(i, j int) bool { return set[i] < set[j] })
		g.SyncStateSet = slices.Compact(set)
		g.SyncStateSetEpoch++
		return result{Group: g.clone()}

	}
	return fail(codeInvalidRequest, "unknown event %q", e.Kind)
}

// group returns a copy of a group, or nil.
func (s *state) group(name string) *Group {
	if g := s.Groups[name]; g != nil {
		return g.clone()
	}
	return nil
}

func (s *state) marshal() ([]byte, error) { return json.Marshal(s) }

func unmarshalState(b []byte) (*state, error) {
	s := newState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	if s.Groups == nil {
		s.Groups = map[string]*Group{}
	}
	return s, nil
}
