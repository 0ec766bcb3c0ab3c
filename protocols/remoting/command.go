// Package remoting implements RocketMQ's 4.x "remoting" wire protocol: the frame
// codec for both header encodings (JSON and the ROCKETMQ binary form), request and
// response codes, and a TCP server and client that multiplex requests, responses
// and server-initiated requests on one connection by opaque. docs/protocol.md
// describes the protocol as implemented here.
package remoting

import (
	"strconv"
)

// SerializeType is the header encoding of a frame.
type SerializeType byte

// Header encodings.
const (
	JSON     SerializeType = 0
	RocketMQ SerializeType = 1
)

// Flag bits.
const (
	FlagResponse int32 = 1
	FlagOneway   int32 = 2
)

// LanguageCode is the language of the peer (GO = 9, JAVA = 0, ...).
type LanguageCode byte

// Language codes used on the wire.
const (
	LangJava LanguageCode = 0
	LangGo   LanguageCode = 9
)

// Command is one frame: a request, a response or a oneway request.
type Command struct {
	Code      int16
	Language  LanguageCode
	Version   int16
	Opaque    int32
	Flag      int32
	Remark    string
	ExtFields Fields
	Body      []byte
	// BodyParts, used when Body is nil, is a body in several slices that a
	// connection writes in order without copying them together (a pull answers
	// with the store's mapped records this way). The encoded body length is the
	// sum of the parts.
	BodyParts [][]byte
	// OnWritten, if set, runs exactly once when a connection no longer needs the
	// body: after the frame was written or copied into the connection's buffer,
	// or when it could not be sent (connection failed or closed, encode error,
	// response to a oneway request). Owners release BodyParts' memory there; a
	// command with OnWritten must not be written more than once. Encode and
	// AppendFrame do not call it.
	OnWritten     func()
	SerializeType SerializeType
}

// NewRequest returns a request command. ext may be nil; its fields are
// written in key order, so a request encodes the same way every time.
func NewRequest(code int16, ext map[string]string, body []byte) *Command {
	return &Command{Code: code, Language: LangGo, Version: Version, ExtFields: FieldsOf(ext), Body: body}
}

// NewRequestFields returns a request command with the given ext fields, not
// copied: Set and Del change them in place, so give it fields nobody else
// uses (Clone them otherwise).
func NewRequestFields(code int16, ext Fields, body []byte) *Command {
	return &Command{Code: code, Language: LangGo, Version: Version, ExtFields: ext, Body: body}
}

// NewResponse returns a response with the given code and remark; the server fills
// in opaque, flag and encoding from the request.
func NewResponse(code int16, remark string) *Command {
	return &Command{Code: code, Language: LangGo, Version: Version, Remark: remark, Flag: FlagResponse}
}

// IsResponse reports whether the response bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the oneway bit is set (the Go client never sets it).
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// Ext returns the ext field or "".
func (c *Command) Ext(key string) string {
	v, _ := c.ExtFields.Get(key)
	return v
}

// SetExt sets an ext field.
func (c *Command) SetExt(key, value string) { c.ExtFields.Set(key, value) }

// ExtInt64 parses an integer ext field; ok is false if missing or malformed.
func (c *Command) ExtInt64(key string) (int64, bool) {
	v, ok := c.ExtFields.Get(key)
	if !ok || v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// ExtInt32 parses a 32-bit integer ext field.
func (c *Command) ExtInt32(key string) (int32, bool) {
	v, ok := c.ExtFields.Get(key)
	if !ok || v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// ExtBool parses a boolean ext field ("true"/"false"); missing is false.
func (c *Command) ExtBool(key string) bool {
	v := c.Ext(key)
	return v == "true" || v == "TRUE" || v == "True"
}
