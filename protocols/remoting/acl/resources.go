package acl

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/mqd/mqd/protocols/remoting"
)

// Role says which server checks a request: the resources a request code
// touches differ between broker and name server.
type Role int

const (
	Broker Role = iota
	Namesrv
)

// retryPrefix marks a consumer group's retry topic; a resource under it is the
// group, checked against groupPerms.
const retryPrefix = "%RETRY%"

// traceTopic is RocketMQ's message-trace topic: publishing traces needs no
// topic permission, as in RocketMQ.
const traceTopic = "RMQ_SYS_TRACE_TOPIC"

// resource is one topic or group a request needs a permission on.
type resource struct {
	name  string
	group bool
	perm  byte
}

// needs is the resources of one request; most need one or two, kept inline.
type needs struct {
	n   int
	arr [4]resource
	ext []resource // heartbeats may name many
}

func (n *needs) add(name string, group bool, perm byte) {
	if name == "" {
		return
	}
	if !group && strings.HasPrefix(name, retryPrefix) {
		name, group = name[len(retryPrefix):], true
	}
	r := resource{name: name, group: group, perm: perm}
	if n.n < len(n.arr) {
		n.arr[n.n] = r
		n.n++
		return
	}
	n.ext = append(n.ext, r)
}

func (n *needs) each(f func(resource) bool) bool {
	for i := 0; i < n.n; i++ {
		if !f(n.arr[i]) {
			return false
		}
	}
	for _, r := range n.ext {
		if !f(r) {
			return false
		}
	}
	return true
}

// onlyTracePublish reports a request that only publishes message traces.
func (n *needs) onlyTracePublish() bool {
	return n.n == 1 && len(n.ext) == 0 && !n.arr[0].group && n.arr[0].name == traceTopic && n.arr[0].perm == Pub
}

// Class is what an account needs to send a request code.
type Class int

const (
	// Admin: only admin accounts. Every code not classified otherwise is
	// Admin, so a handler added without a thought is closed by default.
	Admin Class = iota
	// Data: the client data plane (send, pull, offsets, heartbeats,
	// routes); any account, with its topic and group permissions checked.
	Data
	// Read: cluster metadata and statistics, as mqadmin's listing commands
	// read them; any account, as in RocketMQ.
	Read
)

// classes classifies every request code mqd's servers (broker, name server,
// embedded controller) handle; TestEveryServedCodeIsClassified fails when
// a new handler is missing here. RocketMQ 4.9.8 asks admin rights for five
// codes only (create or delete topics and groups, update broker config);
// mqd also for offset resets, write permissions, name-server routes and KV
// config, file cleanup, direct consumption, broker registration (it decides
// where clients send and pull) and the controller's broker-facing codes.
var classes = map[int16]Class{
	remoting.SendMessage:             Data,
	remoting.SendMessageV2:           Data,
	remoting.SendBatchMessage:        Data,
	remoting.SendReplyMessage:        Data,
	remoting.SendReplyMessageV2:      Data,
	remoting.PullMessage:             Data,
	remoting.QueryMessage:            Data,
	remoting.ViewMessageByID:         Data,
	remoting.QueryConsumerOffset:     Data,
	remoting.UpdateConsumerOffset:    Data,
	remoting.HeartBeat:               Data,
	remoting.UnregisterClient:        Data,
	remoting.ConsumerSendMsgBack:     Data,
	remoting.EndTransaction:          Data,
	remoting.GetConsumerListByGroup:  Data,
	remoting.LockBatchMQ:             Data,
	remoting.UnlockBatchMQ:           Data,
	remoting.GetMaxOffset:            Data,
	remoting.GetMinOffset:            Data,
	remoting.SearchOffsetByTimestamp: Data,
	remoting.GetEarliestMsgStoretime: Data,
	remoting.CheckClientConfig:       Data,
	remoting.GetRouteInfoByTopic:     Data,

	remoting.GetBrokerClusterInfo:            Read,
	remoting.GetAllTopicConfig:               Read,
	remoting.GetAllConsumerOffset:            Read,
	remoting.GetAllDelayOffset:               Read,
	remoting.GetAllSubscriptionGroupConfig:   Read,
	remoting.GetBrokerConfig:                 Read,
	remoting.GetBrokerRuntimeInfo:            Read,
	remoting.GetConsumeStats:                 Read,
	remoting.GetConsumerConnectionList:       Read,
	remoting.GetProducerConnectionList:       Read,
	remoting.GetTopicStatsInfo:               Read,
	remoting.QueryTopicConsumeByWho:          Read,
	remoting.ViewBrokerStatsData:             Read,
	remoting.GetConsumerRunningInfo:          Read,
	remoting.InvokeBrokerToGetConsumerStatus: Read,
	remoting.GetBrokerEpochCache:             Read,
	remoting.GetKVConfig:                     Read,
	remoting.GetKVListByNamespace:            Read,
	remoting.QueryDataVersion:                Read,
	remoting.GetAllTopicListFromNameServer:   Read,
	remoting.GetTopicsByCluster:              Read,
	remoting.GetSystemTopicListFromNS:        Read,
	remoting.GetUnitTopicList:                Read,
	remoting.GetHasUnitSubTopicList:          Read,
	remoting.GetHasUnitSubUnunitTopicList:    Read,
	remoting.GetNamesrvConfig:                Read,
	remoting.ControllerGetMetadataInfo:       Read,
	remoting.ControllerGetSyncStateData:      Read,

	remoting.UpdateAndCreateTopic:             Admin,
	remoting.UpdateBrokerConfig:               Admin,
	remoting.DeleteTopicInBroker:              Admin,
	remoting.UpdateAndCreateSubscriptionGroup: Admin,
	remoting.DeleteSubscriptionGroup:          Admin,
	remoting.InvokeBrokerToResetOffset:        Admin,
	remoting.ResetConsumerOffsetInBroker:      Admin,
	remoting.CloneGroupOffset:                 Admin,
	remoting.TriggerDeleteFiles:               Admin,
	remoting.CleanExpiredConsumeQueue:         Admin,
	remoting.CleanUnusedTopic:                 Admin,
	remoting.ResumeCheckHalfMessage:           Admin,
	remoting.ConsumeMessageDirectly:           Admin,
	remoting.WipeWritePermOfBroker:            Admin,
	remoting.AddWritePermOfBroker:             Admin,
	remoting.DeleteTopicInNamesrv:             Admin,
	remoting.PutKVConfig:                      Admin,
	remoting.DeleteKVConfig:                   Admin,
	remoting.UpdateNamesrvConfig:              Admin,
	remoting.RegisterBroker:                   Admin,
	remoting.UnregisterBroker:                 Admin,
	remoting.NotifyBrokerRoleChanged:          Admin,
	remoting.BrokerHeartbeat:                  Admin,
	remoting.ControllerGetNextBrokerID:        Admin,
	remoting.ControllerApplyBrokerID:          Admin,
	remoting.ControllerRegisterBroker:         Admin,
	remoting.ControllerGetReplicaInfo:         Admin,
	remoting.ControllerElectMaster:            Admin,
	remoting.ControllerAlterSyncStateSet:      Admin,
}

// ClassOf returns the class of a request code; unclassified codes are Admin.
func ClassOf(code int16) Class { return classes[code] }

// Classified reports whether code has an explicit class.
func Classified(code int16) bool {
	_, ok := classes[code]
	return ok
}

// resourcesOf lists what req needs, RocketMQ's table (PlainAccessValidator)
// plus batch and reply sends, which 4.9.8 leaves unchecked.
func resourcesOf(role Role, req *remoting.Command, n *needs) {
	ext := req.Ext
	if role == Namesrv {
		if req.Code == remoting.GetRouteInfoByTopic {
			n.add(ext("topic"), false, Any)
		}
		return
	}
	switch req.Code {
	case remoting.SendMessage, remoting.SendReplyMessage:
		if t := ext("topic"); strings.HasPrefix(t, retryPrefix) {
			n.add(ext("producerGroup"), true, Sub)
		} else {
			n.add(t, false, Pub)
		}
	case remoting.SendMessageV2, remoting.SendBatchMessage, remoting.SendReplyMessageV2:
		if t := ext("b"); strings.HasPrefix(t, retryPrefix) {
			n.add(ext("a"), true, Sub)
		} else {
			n.add(t, false, Pub)
		}
	case remoting.ConsumerSendMsgBack:
		n.add(ext("group"), true, Sub)
	case remoting.PullMessage:
		n.add(ext("topic"), false, Sub)
		n.add(ext("consumerGroup"), true, Sub)
	case remoting.QueryMessage:
		n.add(ext("topic"), false, Sub)
	case remoting.HeartBeat:
		for _, c := range gjson.GetBytes(req.Body, "consumerDataSet").Array() {
			n.add(c.Get("groupName").String(), true, Sub)
			for _, s := range c.Get("subscriptionDataSet").Array() {
				n.add(s.Get("topic").String(), false, Sub)
			}
		}
	case remoting.UnregisterClient, remoting.GetConsumerListByGroup:
		n.add(ext("consumerGroup"), true, Sub)
	case remoting.UpdateConsumerOffset:
		n.add(ext("consumerGroup"), true, Sub)
		n.add(ext("topic"), false, Sub)
	}
}
