package broker

import (
	"context"

	"github.com/mqd/mqd/protocols/remoting"
)

// provisionManagers builds the broker's metadata managers and services; the
// managers load their files from configDir.
func (b *Broker) provisionManagers() error {
	var err error
	if b.topics, err = newTopicConfigManager(b); err != nil {
		return err
	}
	if b.subGroups, err = newSubscriptionGroupManager(b); err != nil {
		return err
	}
	if b.offsets, err = newConsumerOffsetManager(b); err != nil {
		return err
	}
	b.clients = newClientManager(b)
	b.locks = newQueueLockManager(b)
	b.pullHold = newPullHoldService(b)
	return b.provisionSchedule()
}

// registerHandlers wires request codes to handlers: metadata and client
// management (registerMetaHandlers, admin.go) and the message path (send,
// pull, offsets).
func (b *Broker) registerHandlers() {
	b.registerMetaHandlers()
	b.registerOpsHandlers()
	b.registerDataHandlers()
	b.registerConsumerAdminHandlers()
	b.registerQueryHandlers()
	b.server.Handle(remoting.ConsumerSendMsgBack, b.handleConsumerSendMsgBack)
	b.server.Handle(remoting.GetAllDelayOffset, b.handleGetAllDelayOffset)
	b.server.Handle(remoting.GetBrokerRuntimeInfo, b.handleGetBrokerRuntimeInfo)
}

func (b *Broker) startServices() error {
	b.pullHold.Start()
	if err := b.startSchedule(); err != nil {
		return err
	}
	if err := b.startTransactionService(); err != nil {
		return err
	}
	if err := b.startMetrics(); err != nil {
		return err
	}
	return b.startMetaServices()
}

func (b *Broker) stopServices(ctx context.Context) {
	b.stopMetrics(ctx)
	b.stopSchedule()           // persists delay offsets and timer progress
	b.stopTransactionService() // before the offsets it mirrors are persisted
	b.stopMetaServices(ctx)
}

func (b *Broker) onConnClose(c *remoting.Conn) {
	b.clients.OnConnClose(c)
}
