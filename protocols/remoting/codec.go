package remoting

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Frame limits.
const (
	// DefaultMaxFrameSize is Java's default frame limit (16 MiB). Like Java's
	// decoder, the limit covers the whole frame including the length word.
	DefaultMaxFrameSize = 16 << 20
	// MaxHeaderLen is the largest header the 24-bit length field can carry.
	MaxHeaderLen = 1<<24 - 1
	// binaryFixedLen is the fixed part of a ROCKETMQ header: code, language,
	// version, opaque, flag, remark length and ext length.
	binaryFixedLen = 2 + 1 + 2 + 4 + 4 + 4 + 4
	// maxExtFields bounds the ext fields a peer can make us build: real headers
	// have a few dozen, and every lookup scans them (fields.go).
	maxExtFields = 1 << 16
)

// ErrProtocol is wrapped by every error about a malformed frame; a connection
// that receives one is closed.
var ErrProtocol = errors.New("remoting: protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

var be = binary.BigEndian

// ReadCommand reads one frame from r and decodes it. A frame larger than
// maxFrameSize (DefaultMaxFrameSize when <= 0) or otherwise malformed yields an
// error wrapping ErrProtocol, and nothing is allocated for its declared size.
// io.EOF means the stream ended cleanly between frames. The returned command's
// Body aliases a buffer owned by the command alone.
func ReadCommand(r *bufio.Reader, maxFrameSize int) (*Command, error) {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	// Peek validates the length and header word before anything is allocated.
	// The length word alone first: a frame shorter than the header word is
	// refused as soon as its length arrives, not once 4 more bytes that a
	// hostile or broken peer may never send have come.
	p, err := r.Peek(4)
	if err != nil {
		if err == io.EOF && len(p) > 0 {
			return nil, protoErr("truncated frame: %d bytes before end of stream", len(p))
		}
		return nil, err
	}
	if total := int(int32(be.Uint32(p))); total < 4 {
		return nil, protoErr("frame length %d too small", total)
	}
	p, err = r.Peek(8)
	if err != nil {
		if err == io.EOF && len(p) > 0 {
			return nil, protoErr("truncated frame: %d bytes before end of stream", len(p))
		}
		return nil, err
	}
	total, hdrLen, st := int(int32(be.Uint32(p))), int(be.Uint32(p[4:])&MaxHeaderLen), SerializeType(p[4])
	if err := checkFrame(total, hdrLen, st, maxFrameSize); err != nil {
		return nil, err
	}
	if _, err := r.Discard(4); err != nil {
		return nil, err
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, protoErr("truncated frame: stream ended inside a %d-byte frame", total)
		}
		return nil, err
	}
	return decodeFrame(buf)
}

// checkFrame validates a frame's length word (total, excluding itself) and
// header word before the frame is read.
func checkFrame(total, hdrLen int, st SerializeType, maxFrameSize int) error {
	switch {
	case total < 4:
		return protoErr("frame length %d too small", total)
	case total > maxFrameSize-4:
		return protoErr("frame length %d exceeds limit %d", total+4, maxFrameSize)
	case st != JSON && st != RocketMQ:
		return protoErr("unknown serialize type %d", byte(st))
	case hdrLen > total-4:
		return protoErr("header length %d beyond frame length %d", hdrLen, total)
	}
	return nil
}

// Decode decodes one complete frame, starting with its length word. The
// command's Body aliases frame.
func Decode(frame []byte) (*Command, error) {
	if len(frame) < 8 {
		return nil, protoErr("frame of %d bytes is shorter than its length and header words", len(frame))
	}
	total, hdrLen, st := int(int32(be.Uint32(frame))), int(be.Uint32(frame[4:])&MaxHeaderLen), SerializeType(frame[4])
	if total != len(frame)-4 {
		return nil, protoErr("frame length %d does not match the %d bytes given", total, len(frame)-4)
	}
	if err := checkFrame(total, hdrLen, st, math.MaxInt); err != nil {
		return nil, err
	}
	return decodeFrame(frame[4:])
}

// decodeFrame decodes a validated frame without its length word.
func decodeFrame(buf []byte) (*Command, error) {
	word := be.Uint32(buf)
	hdrLen := int(word & MaxHeaderLen)
	header, body := buf[4:4+hdrLen], buf[4+hdrLen:]
	cmd := &Command{SerializeType: SerializeType(word >> 24)}
	var err error
	if cmd.SerializeType == JSON {
		err = decodeJSONHeader(header, cmd)
	} else {
		err = decodeBinaryHeader(header, cmd)
	}
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		cmd.Body = body
	}
	return cmd, nil
}

// Encode returns the command as one frame in its SerializeType.
func Encode(c *Command) ([]byte, error) {
	return AppendFrame(make([]byte, 0, 256+c.bodyLen()), c)
}

// AppendFrame appends the command's frame, in its SerializeType, to dst.
func AppendFrame(dst []byte, c *Command) ([]byte, error) {
	dst, err := appendFrameHead(dst, c, c.Opaque, c.Flag, c.SerializeType)
	if err != nil {
		return dst, err
	}
	if c.Body != nil {
		return append(dst, c.Body...), nil
	}
	for _, p := range c.BodyParts {
		dst = append(dst, p...)
	}
	return dst, nil
}

// appendFrameHead appends the length word, header word and header of c with the
// given opaque, flag and encoding (so callers need not mutate a command another
// goroutine may share); the body is the caller's to write next. On error dst is
// returned unchanged.
func appendFrameHead(dst []byte, c *Command, opaque, flag int32, st SerializeType) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	switch st {
	case JSON:
		dst = appendJSONHeader(dst, c, opaque, flag)
	case RocketMQ:
		dst, err = appendBinaryHeader(dst, c, opaque, flag)
	default:
		err = fmt.Errorf("remoting: cannot encode serialize type %d", byte(st))
	}
	if err != nil {
		return dst[:start], err
	}
	hdrLen := len(dst) - start - 8
	if hdrLen > MaxHeaderLen {
		return dst[:start], fmt.Errorf("remoting: header of %d bytes exceeds %d", hdrLen, MaxHeaderLen)
	}
	total := 4 + hdrLen + c.bodyLen()
	if total > math.MaxInt32 {
		return dst[:start], fmt.Errorf("remoting: frame of %d bytes exceeds the 2 GiB length field", total)
	}
	be.PutUint32(dst[start:], uint32(total))
	be.PutUint32(dst[start+4:], uint32(st)<<24|uint32(hdrLen))
	return dst, nil
}

// appendBinaryHeader appends the ROCKETMQ header (docs/protocol.md, ROCKETMQ binary).
func appendBinaryHeader(dst []byte, c *Command, opaque, flag int32) ([]byte, error) {
	dst = be.AppendUint16(dst, uint16(c.Code))
	dst = append(dst, byte(c.Language))
	dst = be.AppendUint16(dst, uint16(c.Version))
	dst = be.AppendUint32(dst, uint32(opaque))
	dst = be.AppendUint32(dst, uint32(flag))
	if len(c.Remark) > MaxHeaderLen {
		return dst, fmt.Errorf("remoting: remark of %d bytes too long", len(c.Remark))
	}
	dst = be.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	extAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, f := range c.ExtFields {
		k, v := f.Key, f.Value
		if len(k) > math.MaxInt16 || len(v) > MaxHeaderLen {
			return dst, fmt.Errorf("remoting: ext field %.32q too long", k)
		}
		dst = be.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = be.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
		if len(dst)-extAt > MaxHeaderLen {
			return dst, fmt.Errorf("remoting: ext fields exceed %d bytes", MaxHeaderLen)
		}
	}
	be.PutUint32(dst[extAt:], uint32(len(dst)-extAt-4))
	return dst, nil
}

// decodeBinaryHeader decodes a ROCKETMQ header. Strings are substrings of one
// copy of the header, so a header costs one string allocation plus the fields.
func decodeBinaryHeader(h []byte, c *Command) error {
	if len(h) < binaryFixedLen {
		return protoErr("ROCKETMQ header of %d bytes is shorter than %d", len(h), binaryFixedLen)
	}
	c.Code = int16(be.Uint16(h))
	c.Language = LanguageCode(h[2])
	c.Version = int16(be.Uint16(h[3:]))
	c.Opaque = int32(be.Uint32(h[5:]))
	c.Flag = int32(be.Uint32(h[9:]))
	var s string // the header as a string, made once when some string is present
	if len(h) > binaryFixedLen {
		s = string(h)
	}
	pos := 13
	remarkLen := int(int32(be.Uint32(h[pos:])))
	pos += 4
	if remarkLen < 0 || remarkLen > len(h)-pos-4 {
		return protoErr("ROCKETMQ remark length %d out of range", remarkLen)
	}
	if remarkLen > 0 {
		c.Remark = s[pos : pos+remarkLen]
	}
	pos += remarkLen
	extLen := int(int32(be.Uint32(h[pos:])))
	pos += 4
	if extLen < 0 || extLen != len(h)-pos {
		return protoErr("ROCKETMQ ext length %d does not match the %d bytes left", extLen, len(h)-pos)
	}
	if extLen == 0 {
		return nil
	}
	// Validate and count the entries first, so the slice is sized once.
	n := 0
	for p := pos; p < len(h); n++ {
		if len(h)-p < 2 {
			return protoErr("ROCKETMQ ext entry truncated")
		}
		kl := int(int16(be.Uint16(h[p:])))
		p += 2
		if kl < 0 || kl > len(h)-p-4 {
			return protoErr("ROCKETMQ ext key length %d out of range", kl)
		}
		p += kl
		vl := int(int32(be.Uint32(h[p:])))
		p += 4
		if vl < 0 || vl > len(h)-p {
			return protoErr("ROCKETMQ ext value length %d out of range", vl)
		}
		p += vl
	}
	if n > maxExtFields {
		return protoErr("%d ext fields, more than %d", n, maxExtFields)
	}
	c.ExtFields = make(Fields, 0, n)
	for pos < len(h) {
		kl := int(be.Uint16(h[pos:]))
		k := s[pos+2 : pos+2+kl]
		pos += 2 + kl
		vl := int(be.Uint32(h[pos:]))
		c.ExtFields = append(c.ExtFields, Field{k, s[pos+4 : pos+4+vl]})
		pos += 4 + vl
	}
	return nil
}
