// Package transport is the master/slave byte transport of replication:
// RocketMQ 4.x's HA protocol on the master's haListenPort. A slave connects and
// sends its commit-log max offset as an 8-byte big-endian long, again after
// every append and every haSendHeartbeatInterval; the master streams its
// commit log from the first reported offset in frames [offset:8][size:4][size
// bytes], at most haTransferBatchSize bytes and never crossing a file, with
// header-only frames as heartbeats. There is no handshake, so an mqd slave can
// follow a RocketMQ master and the other way round.
//
// Divergence. Each side checks offsets instead of trusting them: the master
// refuses a slave that reports an offset beyond its own log (the slave holds
// bytes the master does not: the master lost its tail or was re-seeded), or
// one that is not a record boundary of its log, or one older than its oldest
// retained file; it then logs both offsets, sends one header-only frame
// carrying its own max offset when the slave is ahead (else -1) and closes.
// The slave refuses frames that do not start at its own end and checks every
// record it appends (storage.Replicable). docs/replication.md has the whole
// picture.
// A slave that detects either stops replicating and marks itself diverged
// until restart; the broker then refuses to serve reads from it rather than
// serve data the master does not have. Repair: stop the slave, move its store
// directory away (keep it if it holds the only copy of acknowledged messages)
// and start it again: an empty slave copies the master's whole retained log.
package transport

import (
	"crypto/tls"
	"encoding/binary"
	"time"

	"github.com/rs/zerolog"
)

// Options configure both ends.
type Options struct {
	BatchSize    int           // haTransferBatchSize
	Heartbeat    time.Duration // haSendHeartbeatInterval
	Housekeeping time.Duration // haHousekeepingInterval: idle limit of a connection
	Reconnect    time.Duration // slave: pause before reconnecting
	// BrokerID, on a slave, is sent in a hello before the first offset
	// report so that the master knows which replica confirms what (the
	// SyncStateSet of controller mode); 0 sends none, as RocketMQ 4.x.
	BrokerID int64
	// TLS, on a slave, dials the master over TLS (tls.client.enable).
	TLS    *tls.Config
	Logger zerolog.Logger
}

// helloMagic opens an mqd slave's hello: [helloMagic:8][brokerId:8]. A
// RocketMQ slave's first 8 bytes are its commit-log offset, which never
// comes near this value, so a master tells the two apart by the first
// word and accepts both.
const helloMagic int64 = 0x7F6D71642D484131 // "\x7fmqd-HA1"

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 32 * 1024
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.Housekeeping <= 0 {
		o.Housekeeping = 20 * time.Second
	}
	if o.Reconnect <= 0 {
		o.Reconnect = 5 * time.Second
	}
}

// headerSize is a master frame's header: offset (8) and body size (4).
const headerSize = 12

// maxFrameBody bounds what a slave accepts in one frame (a master sends at most
// haTransferBatchSize, which Validate caps at 64 MiB).
const maxFrameBody = 64 << 20

// idleWait is how long a master's sender sleeps when it has nothing to send
// and is not woken (RocketMQ: 100 ms).
const idleWait = 100 * time.Millisecond

// maxUnreported bounds how many appended bytes a slave leaves unconfirmed
// while frames keep arriving back to back.
const maxUnreported = 256 << 10

// coalesceWait bounds how long a sender waits for a frame to fill (coalesce).
const coalesceWait = 300 * time.Microsecond

func putHeader(b []byte, offset int64, size int) {
	binary.BigEndian.PutUint64(b, uint64(offset))
	binary.BigEndian.PutUint32(b[8:], uint32(size))
}
