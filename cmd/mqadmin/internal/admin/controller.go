package admin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// ---- controllers (RocketMQ 5's controller mode) ----

// ControllerMetaData is a controller's GET_METADATA_INFO answer
// (GetMetaDataResponseHeader). A field the controller left out is "".
type ControllerMetaData struct {
	Group                   string `json:"group"`
	ControllerLeaderID      string `json:"controllerLeaderId"`
	ControllerLeaderAddress string `json:"controllerLeaderAddress"`
	IsLeader                bool   `json:"isLeader"`
	// Peers is "id:host:port;" per controller of the group.
	Peers string `json:"peers"`
}

// ControllerMetaData asks one controller for its group and leader (1005).
// Any controller answers, leader or not.
func (a *Admin) ControllerMetaData(addr string) (*ControllerMetaData, error) {
	resp, err := a.invoke(addr, remoting.ControllerGetMetadataInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	return &ControllerMetaData{Group: resp.Ext("group"), ControllerLeaderID: resp.Ext("controllerLeaderId"),
		ControllerLeaderAddress: resp.Ext("controllerLeaderAddress"), IsLeader: resp.Ext("isLeader") == "true",
		Peers: resp.Ext("peers")}, nil
}

// ControllerLeader returns the leader address a controller knows
// (MQClientAPIImpl's first step before a leader-only request).
func (a *Admin) ControllerLeader(addr string) (string, error) {
	md, err := a.ControllerMetaData(addr)
	if err != nil {
		return "", err
	}
	if md.ControllerLeaderAddress == "" {
		return "", fmt.Errorf("controller %s knows no leader of group %s (yet)", addr, md.Group)
	}
	return md.ControllerLeaderAddress, nil
}

// SyncStateData asks the controller leader for the replicas of broker groups
// (1006): master, epochs, and the replicas in and out of the SyncStateSet.
// Groups the controller does not know are left out of the answer.
func (a *Admin) SyncStateData(leader string, brokerNames []string) (*body.BrokerReplicasInfo, error) {
	names, err := body.Marshal(brokerNames)
	if err != nil {
		return nil, err
	}
	resp, err := a.invoke(leader, remoting.ControllerGetSyncStateData, nil, names)
	if err != nil {
		return nil, err
	}
	var info body.BrokerReplicasInfo
	if err := body.Unmarshal(resp.Body, &info); err != nil {
		return nil, fmt.Errorf("sync state body from %s: %w", leader, err)
	}
	return &info, nil
}

// BrokerEpochCache asks a broker in controller mode for its epoch entries
// (1007, served by the broker).
func (a *Admin) BrokerEpochCache(addr string) (*body.EpochEntryCache, error) {
	resp, err := a.invoke(addr, remoting.GetBrokerEpochCache, nil, nil)
	if err != nil {
		return nil, err
	}
	var c body.EpochEntryCache
	if err := body.Unmarshal(resp.Body, &c); err != nil {
		return nil, fmt.Errorf("epoch cache body from %s: %w", addr, err)
	}
	return &c, nil
}

// ElectMasterResult is CONTROLLER_ELECT_MASTER's answer: the header
// (ElectMasterResponseHeader; nil where the controller left a field out) and
// the body.
type ElectMasterResult struct {
	MasterBrokerID    *int64                        `json:"masterBrokerId,omitempty"`
	MasterAddress     string                        `json:"masterAddress,omitempty"`
	MasterEpoch       *int32                        `json:"masterEpoch,omitempty"`
	SyncStateSetEpoch *int32                        `json:"syncStateSetEpoch,omitempty"`
	Body              *body.ElectMasterResponseBody `json:"body,omitempty"`
}

// ElectMasterTimeout bounds electMaster's request.
const ElectMasterTimeout = 30 * time.Second

// ElectMaster asks the controller leader to make brokerID the master of its
// group (1002 with designateElect=true, ElectMasterRequestHeader.ofAdminTrigger).
// Only SUCCESS is a result: CONTROLLER_MASTER_STILL_EXIST (the broker is
// master already) and the other codes are a RemoteError, as in the Java tool.
func (a *Admin) ElectMaster(leader, cluster, brokerName string, brokerID int64) (*ElectMasterResult, error) {
	ext := map[string]string{
		"clusterName":    cluster,
		"brokerName":     brokerName,
		"brokerId":       strconv.FormatInt(brokerID, 10),
		"designateElect": "true",
		"invokeTime":     strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
	// mqd's controller answers a switch away from a live master only once
	// that master's lease has ended (docs/controller.md, "Fencing"): up to
	// ~0.7 x controllerHeartBeatTimeoutMills, longer than the 3 s default.
	slow := *a
	slow.timeout = max(a.timeout, ElectMasterTimeout)
	resp, err := slow.invoke(leader, remoting.ControllerElectMaster, ext, nil)
	if err != nil {
		return nil, err
	}
	r := &ElectMasterResult{MasterAddress: resp.Ext("masterAddress")}
	if v, err := strconv.ParseInt(strings.TrimSpace(resp.Ext("masterBrokerId")), 10, 64); err == nil {
		r.MasterBrokerID = &v
	}
	for _, f := range []struct {
		key string
		p   **int32
	}{{"masterEpoch", &r.MasterEpoch}, {"syncStateSetEpoch", &r.SyncStateSetEpoch}} {
		if v, err := strconv.ParseInt(strings.TrimSpace(resp.Ext(f.key)), 10, 32); err == nil {
			n := int32(v)
			*f.p = &n
		}
	}
	if len(resp.Body) > 0 {
		var b body.ElectMasterResponseBody
		if err := body.Unmarshal(resp.Body, &b); err != nil {
			return nil, fmt.Errorf("elect master body from %s: %w", leader, err)
		}
		r.Body = &b
	}
	return r, nil
}
