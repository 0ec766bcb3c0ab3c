// Package message owns RocketMQ's message record format: the stored record layout
// shared by the commit log, pull bodies and check-back bodies, the property string,
// tag hash codes and message IDs.
package message

import "net/netip"

// Message is a message as the broker hands it to the store.
type Message struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	Body                      []byte
	Properties                string // encoded property string (key\x01value\x02...)
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  netip.AddrPort
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	// TagsCode is the consume-queue tags field: the Java hash of TAGS, or the
	// delivery time for the schedule topic. Set by the broker.
	TagsCode int64
}

// Ext is a decoded stored record.
type Ext struct {
	Message
	StoreSize       int32
	BodyCRC         int32
	QueueOffset     int64
	CommitLogOffset int64
	StoreTimestamp  int64
}
