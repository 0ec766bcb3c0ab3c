package body

// Bodies of RocketMQ 5's controller mode (request codes 1001-1013), with
// fastjson's property names. Go writes the integer keys of BrokerAddrs
// quoted, which fastjson reads; Unmarshal reads fastjson's bare ones.

// SyncStateSet is the replicas in sync and the epoch of that set.
type SyncStateSet struct {
	SyncStateSet      []int64 `json:"syncStateSet"`
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
}

// ReplicaIdentity is one replica in GET_SYNC_STATE_DATA's answer.
type ReplicaIdentity struct {
	Alive         bool   `json:"alive"`
	BrokerAddress string `json:"brokerAddress"`
	BrokerID      int64  `json:"brokerId"`
	BrokerName    string `json:"brokerName"`
}

// ReplicasInfo is one broker group in GET_SYNC_STATE_DATA's answer; a group
// without a master has no MasterBrokerID nor MasterAddress.
type ReplicasInfo struct {
	InSyncReplicas    []ReplicaIdentity `json:"inSyncReplicas"`
	MasterAddress     string            `json:"masterAddress,omitempty"`
	MasterBrokerID    *int64            `json:"masterBrokerId,omitempty"`
	MasterEpoch       int32             `json:"masterEpoch"`
	NotInSyncReplicas []ReplicaIdentity `json:"notInSyncReplicas"`
	SyncStateSetEpoch int32             `json:"syncStateSetEpoch"`
}

// BrokerReplicasInfo is GET_SYNC_STATE_DATA's answer, by broker name.
type BrokerReplicasInfo struct {
	ReplicasInfoTable map[string]ReplicasInfo `json:"replicasInfoTable"`
}

// EpochEntry is one master epoch of a commit log: it began at StartOffset
// and ended at EndOffset (the log's end, or math.MaxInt64, for the last).
type EpochEntry struct {
	EndOffset   int64 `json:"endOffset"`
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"startOffset"`
}

// EpochEntryCache is GET_BROKER_EPOCH_CACHE's answer.
type EpochEntryCache struct {
	BrokerID    int64        `json:"brokerId"`
	BrokerName  string       `json:"brokerName"`
	ClusterName string       `json:"clusterName"`
	EpochList   []EpochEntry `json:"epochList"`
	MaxOffset   int64        `json:"maxOffset"`
}

// BrokerMemberGroup is a broker group's replicas by id.
type BrokerMemberGroup struct {
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
	BrokerName  string           `json:"brokerName"`
	Cluster     string           `json:"cluster"`
}

// ElectMasterResponseBody is CONTROLLER_ELECT_MASTER's answer.
type ElectMasterResponseBody struct {
	BrokerMemberGroup *BrokerMemberGroup `json:"brokerMemberGroup,omitempty"`
	SyncStateSet      []int64            `json:"syncStateSet"`
}
