package broker

// Replication of the broker's own appends. Every put a client waits on calls
// awaitReplica (ha.go), so under SYNC_MASTER its answer waits until a slave
// has the record, as Java's putMessage does: SEND_MESSAGE, batches, half
// messages, END_TRANSACTION commits (including the schedule-topic copy of a
// delayed commit), CONSUMER_SEND_MSG_BACK (retry and DLQ copies) and stored
// reply messages. Appends no client waits on - schedule and timer
// deliveries, transaction op records, TRANS_CHECK_MAX_TIME_TOPIC copies -
// only wake the HA senders: the record they derive from is already
// replicated, so a master lost before the copy reaches the slave leads to
// the copy being made again from the slave's state (a duplicate, never a
// loss), while waiting would stall a delivery loop for syncFlushTimeout per
// message whenever the slave is away.

// notifyReplica wakes the HA senders after an append nobody waits on.
func (b *Broker) notifyReplica() {
	if h := b.ha; h != nil && h.slot != nil {
		h.master.Notify()
	}
}
