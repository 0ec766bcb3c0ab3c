package broker

import "github.com/mqd/mqd/protocols/remoting"

// routes is the broker's routing table: every request code it serves and
// its handler, grouped by subsystem, with the file each handler lives in.
// A code not listed here is answered REQUEST_CODE_NOT_SUPPORTED by the
// remoting server. This is the only place handlers are registered.
func (b *Broker) routes() map[int16]remoting.Handler {
	return map[int16]remoting.Handler{
		// Message path: send.go, pull.go, sendback.go, transaction.go.
		remoting.SendMessage:         b.handleSend,
		remoting.SendMessageV2:       b.handleSend,
		remoting.SendBatchMessage:    b.handleSendBatch,
		remoting.SendReplyMessage:    b.handleSendReply,
		remoting.SendReplyMessageV2:  b.handleSendReply,
		remoting.PullMessage:         b.handlePull,
		remoting.ConsumerSendMsgBack: b.handleConsumerSendMsgBack,
		remoting.EndTransaction:      b.handleEndTransaction,

		// Offsets and lookups by offset: offsetapi.go; by key: query.go.
		remoting.QueryConsumerOffset:     b.handleQueryConsumerOffset,
		remoting.UpdateConsumerOffset:    b.handleUpdateConsumerOffset,
		remoting.GetMaxOffset:            b.handleGetMaxOffset,
		remoting.GetMinOffset:            b.handleGetMinOffset,
		remoting.SearchOffsetByTimestamp: b.handleSearchOffsetByTimestamp,
		remoting.GetEarliestMsgStoretime: b.handleGetEarliestMsgStoretime,
		remoting.ViewMessageByID:         b.handleViewMessageByID,
		remoting.QueryMessage:            b.handleQueryMessage,

		// Clients: clients.go; orderly-consumption locks: locks.go.
		remoting.HeartBeat:                 b.handleHeartbeat,
		remoting.UnregisterClient:          b.handleUnregisterClient,
		remoting.GetConsumerListByGroup:    b.handleGetConsumerList,
		remoting.CheckClientConfig:         b.handleCheckClientConfig,
		remoting.GetConsumerConnectionList: b.handleGetConsumerConnectionList,
		remoting.GetProducerConnectionList: b.handleGetProducerConnectionList,
		remoting.LockBatchMQ:               b.handleLockBatch,
		remoting.UnlockBatchMQ:             b.handleUnlockBatch,

		// Topic and group administration, and the tables slaves copy: admin.go,
		// schedule.go (delay offsets).
		remoting.UpdateAndCreateTopic:             b.handleUpdateAndCreateTopic,
		remoting.DeleteTopicInBroker:              b.handleDeleteTopic,
		remoting.GetAllTopicConfig:                b.handleGetAllTopicConfig,
		remoting.UpdateAndCreateSubscriptionGroup: b.handleUpdateSubscriptionGroup,
		remoting.GetAllSubscriptionGroupConfig:    b.handleGetAllSubscriptionGroup,
		remoting.DeleteSubscriptionGroup:          b.handleDeleteSubscriptionGroup,
		remoting.GetAllConsumerOffset:             b.handleGetAllConsumerOffset,
		remoting.GetAllDelayOffset:                b.handleGetAllDelayOffset,

		// Consumer administration: consumeradmin.go; relayed to a client:
		// consumerrelay.go.
		remoting.GetConsumeStats:                 b.handleGetConsumeStats,
		remoting.GetTopicStatsInfo:               b.handleGetTopicStatsInfo,
		remoting.QueryTopicConsumeByWho:          b.handleQueryTopicConsumeByWho,
		remoting.CloneGroupOffset:                b.handleCloneGroupOffset,
		remoting.InvokeBrokerToResetOffset:       b.handleResetOffset,
		remoting.GetConsumerRunningInfo:          b.handleGetConsumerRunningInfo,
		remoting.InvokeBrokerToGetConsumerStatus: b.handleGetConsumerStatus,
		remoting.ConsumeMessageDirectly:          b.handleConsumeMessageDirectly,

		// Broker configuration and statistics: admin.go (GET_BROKER_CONFIG),
		// liveconfig.go, statsitems.go, runtime.go.
		remoting.GetBrokerConfig:      b.handleGetBrokerConfig,
		remoting.UpdateBrokerConfig:   b.handleUpdateBrokerConfig,
		remoting.ViewBrokerStatsData:  b.handleViewBrokerStatsData,
		remoting.GetBrokerRuntimeInfo: b.handleGetBrokerRuntimeInfo,

		// Controller mode: replicas.go.
		remoting.GetBrokerEpochCache:     b.handleGetBrokerEpochCache,
		remoting.NotifyBrokerRoleChanged: b.handleNotifyRoleChanged,
	}
}

// registerHandlers puts the routing table on the server.
func (b *Broker) registerHandlers() {
	for code, h := range b.routes() {
		b.server.Handle(code, h)
	}
}
