package body

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// KeyStyle selects how integer map keys (broker ids in brokerAddrs) are written.
type KeyStyle uint8

const (
	// FastjsonKeys writes them bare, {0:"addr"}: fastjson's default, what a Java
	// 4.9.8 name server sends clients older than V4_9_4 (the Go client reports
	// V4_5_2). Java's fastjson and the Go client's hand parser both read it;
	// standard JSON parsers do not.
	FastjsonKeys KeyStyle = iota
	// StandardKeys writes them quoted, {"0":"addr"}: standard JSON, what Java sends
	// clients ≥ V4_9_4 or those asking acceptStandardJsonOnly.
	StandardKeys
)

// Marshal encodes v as compact JSON without HTML escaping (Java does not escape
// <, > or &) and without a trailing newline. Use it for bodies without integer map
// keys; routes and cluster info have AppendJSON methods.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // Encode appends '\n'
}

// Unmarshal decodes JSON written by fastjson or a standard encoder into v: bare
// object keys ({0:"a"}) are quoted before decoding.
func Unmarshal(data []byte, v any) error {
	return json.Unmarshal(QuoteBareKeys(data), v)
}

// QuoteBareKeys returns data with fastjson's unquoted object keys quoted. When
// there are none it returns data itself, without allocating.
func QuoteBareKeys(data []byte) []byte {
	var out []byte // nil until the first bare key
	last := 0      // data[last:] is not yet copied to out
	var stackBuf [32]bool
	stack := stackBuf[:0] // true for an object, false for an array
	expectKey := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			expectKey = false
		case '{':
			stack = append(stack, true)
			expectKey = true
		case '[':
			stack = append(stack, false)
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1]
		case ':':
			expectKey = false
		case ' ', '\t', '\r', '\n':
		default:
			if !expectKey {
				continue
			}
			j := i
			for j < len(data) && data[j] != ':' && data[j] != ' ' && data[j] != '\t' && data[j] != '\r' && data[j] != '\n' {
				j++
			}
			if out == nil {
				out = make([]byte, 0, len(data)+16)
			}
			out = append(out, data[last:i]...)
			out = append(out, '"')
			out = append(out, data[i:j]...)
			out = append(out, '"')
			last = j
			i = j - 1
			expectKey = false
		}
	}
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}

const hexDigits = "0123456789abcdef"

// jsonEscape marks the bytes appendString cannot copy without a look: control
// characters, '"' and '\\' (escaped), and non-ASCII bytes (UTF-8, checked
// unless AppendStringRaw).
var jsonEscape = func() (t [256]bool) {
	for i := 0; i < 0x20; i++ {
		t[i] = true
	}
	t['"'], t['\\'] = true, true
	for i := utf8.RuneSelf; i < 256; i++ {
		t[i] = true
	}
	return t
}()

// AppendString appends s as a JSON string the way fastjson writes it: quotes,
// backslashes and control characters escaped, other characters as UTF-8. Invalid
// UTF-8 becomes U+FFFD so the output is always valid JSON.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, true) }

// AppendStringRaw is AppendString that copies invalid UTF-8 as it is. The
// remoting header codec uses it: its parser keeps such bytes, so a decoded
// header encodes back to the same command (FuzzDecode checks that), while Java
// and Go peers turn them into U+FFFD when they decode.
func AppendStringRaw(dst []byte, s string) []byte { return appendString(dst, s, false) }

func appendString(dst []byte, s string, checkUTF8 bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !jsonEscape[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			if !checkUTF8 {
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendIntField appends ,"name":n or "name":n (first field).
func appendIntField(dst []byte, name string, n int64, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, n, 10)
}

// appendStringField appends ,"name":"s" or "name":"s" (first field).
func appendStringField(dst []byte, name, s string, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return AppendString(dst, s)
}
