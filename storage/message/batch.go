package message

import (
	"encoding/binary"
	"fmt"
)

// batchFixed is the fixed part of one message of a SEND_BATCH_MESSAGE body:
// TOTALSIZE, MAGICCODE, BODYCRC, FLAG and BODYLENGTH (4 bytes each).
const batchFixed = 20

// DecodeBatch walks a SEND_BATCH_MESSAGE body (docs/protocol.md, Bodies): per message
// [totalSize:4][magic:4][bodyCRC:4][flag:4][bodyLen:4][body][propsLen:2][props].
// TOTALSIZE must equal 20+body+2+props and every length must fit in the body; the
// magic and CRC fields are ignored (the store recomputes the CRC). body passed to
// fn aliases the input. An empty batch is an error.
func DecodeBatch(body []byte, fn func(flag int32, body []byte, props string) error) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty", ErrBadBatch)
	}
	be := binary.BigEndian
	for i := 0; len(body) > 0; i++ {
		if len(body) < batchFixed+2 {
			return fmt.Errorf("%w: message %d truncated (%d bytes left)", ErrBadBatch, i, len(body))
		}
		total := int64(int32(be.Uint32(body)))
		flag := int32(be.Uint32(body[12:]))
		bodyLen := int64(int32(be.Uint32(body[16:])))
		if bodyLen < 0 || batchFixed+bodyLen+2 > int64(len(body)) {
			return fmt.Errorf("%w: message %d body length %d out of range", ErrBadBatch, i, bodyLen)
		}
		p := batchFixed + int(bodyLen)
		propsLen := int64(int16(be.Uint16(body[p:])))
		if propsLen < 0 || int64(p)+2+propsLen > int64(len(body)) {
			return fmt.Errorf("%w: message %d properties length %d out of range", ErrBadBatch, i, propsLen)
		}
		if total != int64(p)+2+propsLen {
			return fmt.Errorf("%w: message %d total size %d, fields add up to %d", ErrBadBatch, i, total, int64(p)+2+propsLen)
		}
		if err := fn(flag, body[batchFixed:p:p], string(body[p+2:total])); err != nil {
			return err
		}
		body = body[total:]
	}
	return nil
}

// AppendBatchMessage appends one message in the batch body format (what a
// client sends); used by tests and tools.
func AppendBatchMessage(dst []byte, flag int32, body []byte, props string) []byte {
	be := binary.BigEndian
	total := batchFixed + len(body) + 2 + len(props)
	dst = be.AppendUint32(dst, uint32(total))
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, uint32(flag))
	dst = be.AppendUint32(dst, uint32(len(body)))
	dst = append(dst, body...)
	dst = be.AppendUint16(dst, uint16(len(props)))
	return append(dst, props...)
}
