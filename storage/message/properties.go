package message

import (
	"bytes"
	"sort"
	"strings"
)

// The property string is key\x01value pairs separated by \x02, with or without a
// trailing \x02 (RocketMQ ≤4.9.0 and the Go client write one, ≥4.9.1 does not).
// Parsing follows Java's string2messageProperties: a pair needs a non-empty key
// and a non-empty value; the key ends at the first \x01; malformed pieces are
// skipped; a repeated key keeps the last value.

// nextPair returns the pair starting at i and the index of the next piece.
func nextPair(props string, i int) (key, value string, ok bool, next int) {
	end := strings.IndexByte(props[i:], PropertySeparator)
	if end < 0 {
		end = len(props)
	} else {
		end += i
	}
	piece := props[i:end]
	if kv := strings.IndexByte(piece, NameValueSeparator); kv > 0 && kv < len(piece)-1 {
		return piece[:kv], piece[kv+1:], true, end + 1
	}
	return "", "", false, end + 1
}

// Property returns the value of key in props ("" if absent). It does not allocate.
func Property(props, key string) string {
	var val string
	for i := 0; i < len(props); {
		k, v, ok, next := nextPair(props, i)
		if ok && k == key {
			val = v
		}
		i = next
	}
	return val
}

// PropertyBytes is Property over a byte slice (a record's property bytes); the
// result aliases props. It does not allocate. Pieces are found with
// IndexByte (vectorised): the index builder and filters call this per record.
func PropertyBytes(props []byte, key string) []byte {
	var val []byte
	for len(props) > 0 {
		piece := props
		if end := bytes.IndexByte(props, PropertySeparator); end >= 0 {
			piece, props = props[:end], props[end+1:]
		} else {
			props = nil
		}
		// A key holds no \x01, so "key\x01" as a prefix is the piece's key.
		if len(piece) > len(key)+1 && piece[len(key)] == NameValueSeparator && string(piece[:len(key)]) == key {
			val = piece[len(key)+1:]
		}
	}
	return val
}

// HasProperty reports whether key has a (non-empty) value in props.
func HasProperty(props, key string) bool { return Property(props, key) != "" }

// AppendProperty sets key to value in props, replacing any previous value, and
// returns the new string. The pair goes at the end, without a trailing \x02. An
// empty key or value (which parsers drop) leaves props without key.
func AppendProperty(props, key, value string) string {
	if Property(props, key) != "" {
		props = RemoveProperty(props, key)
	}
	if key == "" || value == "" {
		return props
	}
	var b strings.Builder
	b.Grow(len(props) + len(key) + len(value) + 2)
	b.WriteString(props)
	if len(props) > 0 && props[len(props)-1] != PropertySeparator {
		b.WriteByte(PropertySeparator)
	}
	b.WriteString(key)
	b.WriteByte(NameValueSeparator)
	b.WriteString(value)
	return b.String()
}

// RemoveProperty returns props without any pair for key. Other pairs keep their
// order and spelling; malformed pieces are dropped.
func RemoveProperty(props, key string) string {
	if Property(props, key) == "" {
		return props
	}
	var b strings.Builder
	b.Grow(len(props))
	for i := 0; i < len(props); {
		k, v, ok, next := nextPair(props, i)
		if ok && k != key {
			if b.Len() > 0 {
				b.WriteByte(PropertySeparator)
			}
			b.WriteString(k)
			b.WriteByte(NameValueSeparator)
			b.WriteString(v)
		}
		i = next
	}
	return b.String()
}

// ParseProperties parses a property string into a map.
func ParseProperties(props string) map[string]string {
	m := make(map[string]string, strings.Count(props, string(rune(NameValueSeparator))))
	for i := 0; i < len(props); {
		k, v, ok, next := nextPair(props, i)
		if ok {
			m[k] = v
		}
		i = next
	}
	return m
}

// RangeProperties calls fn for each well-formed pair, in order, until fn
// returns false. It does not allocate.
func RangeProperties(props string, fn func(key, value string) bool) {
	for i := 0; i < len(props); {
		k, v, ok, next := nextPair(props, i)
		if ok && !fn(k, v) {
			return
		}
		i = next
	}
}

// FormatProperties encodes a map as a property string, keys sorted so the output
// is deterministic, without a trailing \x02. Pairs with an empty key or value are
// skipped, since no parser would read them back.
func FormatProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		if k == "" || v == "" {
			continue
		}
		keys = append(keys, k)
		n += len(k) + len(v) + 2
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(n)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(PropertySeparator)
		}
		b.WriteString(k)
		b.WriteByte(NameValueSeparator)
		b.WriteString(m[k])
	}
	return b.String()
}
