package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Byte positions of the fixed part of a record.
const (
	posTotalSize   = 0
	posMagic       = 4
	posBodyCRC     = 8
	posQueueID     = 12
	posFlag        = 16
	posQueueOffset = 20
	posPhysOffset  = 28
	posSysFlag     = 36
	posBornTs      = 40
	posBornHost    = 48

	hostLenV4 = 8  // 4-byte IP + 4-byte port
	hostLenV6 = 20 // 16-byte IP + 4-byte port

	// MinRecordSize is the size of a record with IPv4 hosts and empty body,
	// topic and properties.
	MinRecordSize = 91
)

// Errors returned by Decode and CheckRecord.
var (
	ErrTruncated     = errors.New("message: record truncated")
	ErrBadMagic      = errors.New("message: bad magic code")
	ErrSizeMismatch  = errors.New("message: record size does not match its fields")
	ErrBodyCRC       = errors.New("message: body CRC mismatch")
	ErrBlankRecord   = errors.New("message: end-of-file blank record")
	ErrTopicTooLong  = errors.New("message: topic longer than 127 bytes")
	ErrTopicEmpty    = errors.New("message: empty topic")
	ErrPropsTooLong  = errors.New("message: properties longer than 32767 bytes")
	ErrBodyTooLong   = errors.New("message: body too long")
	ErrBadBatch      = errors.New("message: malformed batch body")
	ErrBadMessageID  = errors.New("message: malformed offset message ID")
	ErrBadHostFamily = errors.New("message: host address family does not match sysFlag")
)

// BodyCRC is RocketMQ's body checksum: CRC32 (IEEE) masked to 31 bits.
func BodyCRC(body []byte) int32 { return int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF) }

func hostLen(addr netip.AddrPort) int {
	if a := addr.Addr().Unmap(); a.Is6() {
		return hostLenV6
	}
	return hostLenV4
}

// Check validates what the record layout can hold: a topic of 1..127 bytes and
// properties of at most 32767 bytes. Encode assumes a checked message.
func Check(m *Message) error {
	switch {
	case len(m.Topic) == 0:
		return ErrTopicEmpty
	case len(m.Topic) > MaxTopicLength:
		return ErrTopicTooLong
	case len(m.Properties) > MaxPropertiesLength:
		return ErrPropsTooLong
	case int64(len(m.Body)) > 1<<31-1-4096:
		return ErrBodyTooLong
	}
	return nil
}

// EncodedSize returns the size of m's stored record.
func EncodedSize(m *Message) int {
	return 84 - 2*hostLenV4 + hostLen(m.BornHost) + hostLen(m.StoreHost) +
		4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(m.Properties)
}

// Encode appends m's stored record to dst and returns the extended slice. The
// IPv6 bits of the written sysFlag follow the host addresses (an IPv4-mapped IPv6
// address is written as IPv4). m must pass Check.
func Encode(dst []byte, m *Message, queueOffset, commitLogOffset, storeTimestamp int64) []byte {
	size := EncodedSize(m)
	start := len(dst)
	if cap(dst)-start < size {
		nd := make([]byte, start, start+size)
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:start+size]
	b := dst[start:]
	be := binary.BigEndian
	sysFlag := m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if hostLen(m.BornHost) == hostLenV6 {
		sysFlag |= SysFlagBornHostV6
	}
	if hostLen(m.StoreHost) == hostLenV6 {
		sysFlag |= SysFlagStoreHostV6
	}
	be.PutUint32(b[posTotalSize:], uint32(size))
	be.PutUint32(b[posMagic:], uint32(int64(MagicMessage)&0xFFFFFFFF))
	be.PutUint32(b[posBodyCRC:], uint32(BodyCRC(m.Body)))
	be.PutUint32(b[posQueueID:], uint32(m.QueueID))
	be.PutUint32(b[posFlag:], uint32(m.Flag))
	be.PutUint64(b[posQueueOffset:], uint64(queueOffset))
	be.PutUint64(b[posPhysOffset:], uint64(commitLogOffset))
	be.PutUint32(b[posSysFlag:], uint32(sysFlag))
	be.PutUint64(b[posBornTs:], uint64(m.BornTimestamp))
	p := posBornHost + putHost(b[posBornHost:], m.BornHost)
	be.PutUint64(b[p:], uint64(storeTimestamp))
	p += 8
	p += putHost(b[p:], m.StoreHost)
	be.PutUint32(b[p:], uint32(m.ReconsumeTimes))
	p += 4
	be.PutUint64(b[p:], uint64(m.PreparedTransactionOffset))
	p += 8
	be.PutUint32(b[p:], uint32(len(m.Body)))
	p += 4
	p += copy(b[p:], m.Body)
	b[p] = byte(len(m.Topic))
	p++
	p += copy(b[p:], m.Topic)
	be.PutUint16(b[p:], uint16(len(m.Properties)))
	p += 2
	copy(b[p:], m.Properties)
	return dst
}

func putHost(b []byte, ap netip.AddrPort) int {
	a := ap.Addr().Unmap()
	if a.Is6() {
		ip := a.As16()
		copy(b, ip[:])
		binary.BigEndian.PutUint32(b[16:], uint32(ap.Port()))
		return hostLenV6
	}
	var ip [4]byte
	if a.Is4() {
		ip = a.As4()
	}
	copy(b, ip[:])
	binary.BigEndian.PutUint32(b[4:], uint32(ap.Port()))
	return hostLenV4
}

func getHost(b []byte, v6 bool) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), uint16(binary.BigEndian.Uint32(b[16:])))
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(binary.BigEndian.Uint32(b[4:])))
}

// layout holds the variable positions of a record.
type layout struct {
	size       int
	bornV6     bool
	storeV6    bool
	storeTsPos int
	storeHost  int
	reconsume  int
	prepared   int
	bodyPos    int
	bodyLen    int
	topicPos   int
	topicLen   int
	propsPos   int
	propsLen   int
}

// parseLayout validates the record at the start of buf (which may extend past
// it) and locates its variable fields. It never reads out of bounds.
func parseLayout(buf []byte) (layout, error) {
	var l layout
	if len(buf) < 8 {
		return l, ErrTruncated
	}
	be := binary.BigEndian
	size := int64(int32(be.Uint32(buf[posTotalSize:])))
	magic := int32(be.Uint32(buf[posMagic:]))
	if magic == MagicBlank {
		if size < BlankRecordMinSize {
			return l, ErrSizeMismatch
		}
		l.size = int(size)
		return l, ErrBlankRecord
	}
	if magic != MagicMessage {
		return l, ErrBadMagic
	}
	if size < MinRecordSize {
		return l, ErrSizeMismatch
	}
	if int64(len(buf)) < size {
		return l, ErrTruncated
	}
	rec := buf[:size]
	sysFlag := int32(be.Uint32(rec[posSysFlag:]))
	l.size = int(size)
	l.bornV6 = sysFlag&SysFlagBornHostV6 != 0
	l.storeV6 = sysFlag&SysFlagStoreHostV6 != 0
	bh, sh := hostLenV4, hostLenV4
	if l.bornV6 {
		bh = hostLenV6
	}
	if l.storeV6 {
		sh = hostLenV6
	}
	l.storeTsPos = posBornHost + bh
	l.storeHost = l.storeTsPos + 8
	l.reconsume = l.storeHost + sh
	l.prepared = l.reconsume + 4
	bodyLenPos := l.prepared + 8
	if bodyLenPos+4 > len(rec) {
		return l, ErrSizeMismatch
	}
	bodyLen := int64(int32(be.Uint32(rec[bodyLenPos:])))
	l.bodyPos = bodyLenPos + 4
	if bodyLen < 0 || int64(l.bodyPos)+bodyLen+1 > int64(len(rec)) {
		return l, ErrSizeMismatch
	}
	l.bodyLen = int(bodyLen)
	p := l.bodyPos + l.bodyLen
	topicLen := int(int8(rec[p]))
	if topicLen < 0 {
		return l, ErrSizeMismatch
	}
	l.topicPos = p + 1
	l.topicLen = topicLen
	p = l.topicPos + topicLen
	if p+2 > len(rec) {
		return l, ErrSizeMismatch
	}
	propsLen := int(int16(be.Uint16(rec[p:])))
	if propsLen < 0 {
		return l, ErrSizeMismatch
	}
	l.propsPos = p + 2
	l.propsLen = propsLen
	if l.propsPos+propsLen != len(rec) {
		return l, ErrSizeMismatch
	}
	return l, nil
}

// CheckRecord validates the record at the start of buf, which may extend past
// it: magic, declared size equal to the size its fields add up to, and, when
// checkCRC is set, the body CRC. It returns the record size. For an end-of-file
// blank record it returns the declared filler size and ErrBlankRecord.
func CheckRecord(buf []byte, checkCRC bool) (int, error) {
	l, err := parseLayout(buf)
	if err != nil {
		return l.size, err
	}
	if checkCRC {
		want := int32(binary.BigEndian.Uint32(buf[posBodyCRC:]))
		if BodyCRC(buf[l.bodyPos:l.bodyPos+l.bodyLen]) != want {
			return l.size, ErrBodyCRC
		}
	}
	return l.size, nil
}

// Decode decodes one stored record. rec must hold exactly one record (trailing
// bytes are an error). Body aliases rec; the CRC is not verified (see CheckRecord).
func Decode(rec []byte) (*Ext, error) {
	e := new(Ext)
	if err := DecodeInto(rec, e); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeInto is Decode into a caller-owned Ext.
func DecodeInto(rec []byte, e *Ext) error {
	l, err := parseLayout(rec)
	if err != nil {
		return err
	}
	if l.size != len(rec) {
		return fmt.Errorf("%w: %d trailing bytes", ErrSizeMismatch, len(rec)-l.size)
	}
	be := binary.BigEndian
	*e = Ext{
		Message: Message{
			Topic:                     string(rec[l.topicPos : l.topicPos+l.topicLen]),
			QueueID:                   int32(be.Uint32(rec[posQueueID:])),
			Flag:                      int32(be.Uint32(rec[posFlag:])),
			Body:                      rec[l.bodyPos : l.bodyPos+l.bodyLen : l.bodyPos+l.bodyLen],
			Properties:                string(rec[l.propsPos : l.propsPos+l.propsLen]),
			SysFlag:                   int32(be.Uint32(rec[posSysFlag:])),
			BornTimestamp:             int64(be.Uint64(rec[posBornTs:])),
			BornHost:                  getHost(rec[posBornHost:], l.bornV6),
			StoreHost:                 getHost(rec[l.storeHost:], l.storeV6),
			ReconsumeTimes:            int32(be.Uint32(rec[l.reconsume:])),
			PreparedTransactionOffset: int64(be.Uint64(rec[l.prepared:])),
		},
		StoreSize:       int32(l.size),
		BodyCRC:         int32(be.Uint32(rec[posBodyCRC:])),
		QueueOffset:     int64(be.Uint64(rec[posQueueOffset:])),
		CommitLogOffset: int64(be.Uint64(rec[posPhysOffset:])),
		StoreTimestamp:  int64(be.Uint64(rec[l.storeTsPos:])),
	}
	return nil
}

// SplitRecords calls fn for each record of buf, a concatenation of records (a
// pull body). It stops at the first malformed record.
func SplitRecords(buf []byte, fn func(rec []byte) error) error {
	for len(buf) > 0 {
		l, err := parseLayout(buf)
		if err != nil {
			return err
		}
		if err := fn(buf[:l.size]); err != nil {
			return err
		}
		buf = buf[l.size:]
	}
	return nil
}

// Field accessors on a record without decoding it. They expect a record that
// passed CheckRecord or was written by the store; on a buffer too short for the
// field they return the zero value.

func u32(rec []byte, pos int) uint32 {
	if pos < 0 || pos+4 > len(rec) {
		return 0
	}
	return binary.BigEndian.Uint32(rec[pos:])
}

func u64(rec []byte, pos int) uint64 {
	if pos < 0 || pos+8 > len(rec) {
		return 0
	}
	return binary.BigEndian.Uint64(rec[pos:])
}

// RecordSize returns the TOTALSIZE field.
func RecordSize(rec []byte) int32 { return int32(u32(rec, posTotalSize)) }

// RecordMagic returns the MAGICCODE field.
func RecordMagic(rec []byte) int32 { return int32(u32(rec, posMagic)) }

// RecordBodyCRC returns the BODYCRC field.
func RecordBodyCRC(rec []byte) int32 { return int32(u32(rec, posBodyCRC)) }

// RecordQueueID returns the QUEUEID field.
func RecordQueueID(rec []byte) int32 { return int32(u32(rec, posQueueID)) }

// RecordFlag returns the user FLAG field.
func RecordFlag(rec []byte) int32 { return int32(u32(rec, posFlag)) }

// RecordQueueOffset returns the QUEUEOFFSET field.
func RecordQueueOffset(rec []byte) int64 { return int64(u64(rec, posQueueOffset)) }

// RecordPhysicalOffset returns the PHYSICALOFFSET field.
func RecordPhysicalOffset(rec []byte) int64 { return int64(u64(rec, posPhysOffset)) }

// RecordSysFlag returns the SYSFLAG field.
func RecordSysFlag(rec []byte) int32 { return int32(u32(rec, posSysFlag)) }

// RecordBornTimestamp returns the BORNTIMESTAMP field.
func RecordBornTimestamp(rec []byte) int64 { return int64(u64(rec, posBornTs)) }

func storeTsPos(rec []byte) int {
	if RecordSysFlag(rec)&SysFlagBornHostV6 != 0 {
		return posBornHost + hostLenV6
	}
	return posBornHost + hostLenV4
}

// RecordStoreTimestamp returns the STORETIMESTAMP field.
func RecordStoreTimestamp(rec []byte) int64 { return int64(u64(rec, storeTsPos(rec))) }

// RecordStoreHost returns the STOREHOSTADDRESS field.
func RecordStoreHost(rec []byte) netip.AddrPort {
	p := storeTsPos(rec) + 8
	v6 := RecordSysFlag(rec)&SysFlagStoreHostV6 != 0
	n := hostLenV4
	if v6 {
		n = hostLenV6
	}
	if p+n > len(rec) {
		return netip.AddrPort{}
	}
	return getHost(rec[p:], v6)
}

// RecordReconsumeTimes returns the RECONSUMETIMES field.
func RecordReconsumeTimes(rec []byte) int32 {
	l, err := parseLayout(rec)
	if err != nil {
		return 0
	}
	return int32(u32(rec, l.reconsume))
}

// RecordBody returns the body bytes (aliasing rec), nil if malformed.
func RecordBody(rec []byte) []byte {
	l, err := parseLayout(rec)
	if err != nil {
		return nil
	}
	return rec[l.bodyPos : l.bodyPos+l.bodyLen]
}

// RecordTopicBytes returns the topic bytes (aliasing rec), nil if malformed.
func RecordTopicBytes(rec []byte) []byte {
	l, err := parseLayout(rec)
	if err != nil {
		return nil
	}
	return rec[l.topicPos : l.topicPos+l.topicLen]
}

// RecordTopic returns the topic.
func RecordTopic(rec []byte) string { return string(RecordTopicBytes(rec)) }

// RecordPropertiesBytes returns the property bytes (aliasing rec), nil if malformed.
func RecordPropertiesBytes(rec []byte) []byte {
	l, err := parseLayout(rec)
	if err != nil {
		return nil
	}
	return rec[l.propsPos : l.propsPos+l.propsLen]
}

// RecordProperties returns the property string.
func RecordProperties(rec []byte) string { return string(RecordPropertiesBytes(rec)) }

// RecordFields returns the fields dispatch needs, in one pass and without
// allocating: topic and properties alias rec.
func RecordFields(rec []byte) (topic, props []byte, queueID int32, queueOffset, storeTimestamp int64, sysFlag int32, err error) {
	l, err := parseLayout(rec)
	if err != nil {
		return nil, nil, 0, 0, 0, 0, err
	}
	return rec[l.topicPos : l.topicPos+l.topicLen], rec[l.propsPos : l.propsPos+l.propsLen],
		RecordQueueID(rec), RecordQueueOffset(rec), int64(u64(rec, l.storeTsPos)), RecordSysFlag(rec), nil
}

// PatchRecord rewrites the queue offset, commit-log offset and store timestamp
// of an encoded record in place (the put path fills them inside its lock).
func PatchRecord(rec []byte, queueOffset, commitLogOffset, storeTimestamp int64) {
	be := binary.BigEndian
	be.PutUint64(rec[posQueueOffset:], uint64(queueOffset))
	be.PutUint64(rec[posPhysOffset:], uint64(commitLogOffset))
	be.PutUint64(rec[storeTsPos(rec):], uint64(storeTimestamp))
}

// PutBlankRecord writes the end-of-file filler header (size, blank magic) at b.
func PutBlankRecord(b []byte, size int32) {
	binary.BigEndian.PutUint32(b[posTotalSize:], uint32(size))
	binary.BigEndian.PutUint32(b[posMagic:], uint32(int64(MagicBlank)&0xFFFFFFFF))
}
