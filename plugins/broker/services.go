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
