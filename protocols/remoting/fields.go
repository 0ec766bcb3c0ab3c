package remoting

import (
	"cmp"
	"slices"
)

// Field is one ext field of a command header.
type Field struct {
	Key, Value string
}

// Fields are a command's ext fields in the order they were decoded or set.
//
// A slice rather than a map: a send request carries about fifteen fields and
// the broker reads about as many, and building and probing a map for them was
// a tenth of the broker's CPU per message (docs/protocol.md, "Ext fields").
// Scanning a dozen short keys costs less than hashing them, and decoding
// needs one allocation instead of a map's several.
//
// A header may name a key twice (JSON allows it); as with RocketMQ's map the
// last value counts: Get scans from the end (the ACL signature keeps only
// the last copy too).
// Encoding writes the fields as they are, and every decoder, ours included,
// again keeps the last.
type Fields []Field

// FieldsOf returns m's fields in key order (nil for an empty map).
func FieldsOf(m map[string]string) Fields {
	if len(m) == 0 {
		return nil
	}
	f := make(Fields, 0, len(m))
	for k, v := range m {
		f = append(f, Field{k, v})
	}
	slices.SortFunc(f, func(a, b Field) int { return cmp.Compare(a.Key, b.Key) })
	return f
}

// Get returns the value of key and whether it is present.
func (f Fields) Get(key string) (string, bool) {
	for i := len(f) - 1; i >= 0; i-- {
		if f[i].Key == key {
			return f[i].Value, true
		}
	}
	return "", false
}

// Has reports whether key is present.
func (f Fields) Has(key string) bool {
	_, ok := f.Get(key)
	return ok
}

// Set sets key to value, replacing every earlier value.
func (f *Fields) Set(key, value string) {
	f.Del(key)
	*f = append(*f, Field{key, value})
}

// Del removes key.
func (f *Fields) Del(key string) {
	*f = slices.DeleteFunc(*f, func(e Field) bool { return e.Key == key })
}

// Clone returns a copy with room for extra more fields.
func (f Fields) Clone(extra int) Fields {
	c := make(Fields, len(f), len(f)+extra)
	copy(c, f)
	return c
}

// Map returns the fields as a map (the last value of a repeated key).
func (f Fields) Map() map[string]string {
	m := make(map[string]string, len(f))
	for _, e := range f {
		m[e.Key] = e.Value
	}
	return m
}
