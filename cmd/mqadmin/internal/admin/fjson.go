package admin

import (
	"fmt"
	"strconv"
	"strings"
)

// Value is a parsed JSON value in the form RocketMQ's fastjson writes it. Java
// maps keyed by an object (ConsumeStats.offsetTable, TopicStatsTable.offsetTable,
// ResetOffsetBody.offsetTable: Map<MessageQueue, ...>) are written with object
// keys, {{"brokerName":"a","queueId":0,"topic":"t"}:{...}}, and integer keys are
// written bare, {0:"addr"}; encoding/json reads neither, so admin bodies go
// through this small parser. Objects keep their key order. (body.Unmarshal,
// which quotes bare keys and then uses encoding/json, serves bodies without
// object keys; every body read here has them.)
type Value struct {
	Kind  byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	Str   string
	Arr   []Value
	Pairs []Pair
}

// Pair is one member of an object; Key is any value (usually a string).
type Pair struct {
	Key, Val Value
}

// ParseJSON parses data.
func ParseJSON(data []byte) (Value, error) {
	p := &jparser{s: data}
	v, err := p.value()
	if err != nil {
		return Value{}, err
	}
	p.ws()
	if p.i != len(p.s) {
		return Value{}, p.errf("trailing data")
	}
	return v, nil
}

// Get returns the member of an object whose key is the string name.
func (v Value) Get(name string) Value {
	for _, p := range v.Pairs {
		if p.Key.Kind == 's' && p.Key.Str == name {
			return p.Val
		}
	}
	return Value{Kind: 'z'}
}

// String returns a string or number's text ("" for others).
func (v Value) String() string {
	if v.Kind == 's' || v.Kind == 'n' || v.Kind == 'b' {
		return v.Str
	}
	return ""
}

// Int returns a number (or numeric string) as int64, 0 if it is none.
func (v Value) Int() int64 {
	n, err := strconv.ParseInt(v.Str, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(v.Str, 64)
		if ferr != nil {
			return 0
		}
		return int64(f)
	}
	return n
}

// Float returns a number as float64, 0 if it is none.
func (v Value) Float() float64 {
	f, _ := strconv.ParseFloat(v.Str, 64)
	return f
}

// Bool returns a boolean (or "true" string).
func (v Value) Bool() bool { return v.Str == "true" }

type jparser struct {
	s []byte
	i int
}

func (p *jparser) errf(format string, args ...any) error {
	return fmt.Errorf("bad JSON body at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jparser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) value() (Value, error) {
	p.ws()
	if p.i >= len(p.s) {
		return Value{}, p.errf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		return Value{Kind: 's', Str: s}, err
	default:
		// number, true, false, null, or a bare fastjson key
		start := p.i
		for p.i < len(p.s) && !strings.ContainsRune(" \t\r\n,:]}", rune(p.s[p.i])) {
			p.i++
		}
		tok := string(p.s[start:p.i])
		switch tok {
		case "":
			return Value{}, p.errf("unexpected %q", c)
		case "true", "false":
			return Value{Kind: 'b', Str: tok}, nil
		case "null":
			return Value{Kind: 'z'}, nil
		}
		if _, err := strconv.ParseFloat(tok, 64); err == nil {
			return Value{Kind: 'n', Str: tok}, nil
		}
		return Value{Kind: 's', Str: tok}, nil
	}
}

func (p *jparser) object() (Value, error) {
	p.i++ // {
	v := Value{Kind: 'o'}
	for {
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return v, nil
		}
		k, err := p.value()
		if err != nil {
			return v, err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return v, p.errf("want ':'")
		}
		p.i++
		val, err := p.value()
		if err != nil {
			return v, err
		}
		v.Pairs = append(v.Pairs, Pair{Key: k, Val: val})
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return v, nil
		}
		return v, p.errf("want ',' or '}'")
	}
}

func (p *jparser) array() (Value, error) {
	p.i++ // [
	v := Value{Kind: 'a'}
	for {
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return v, nil
		}
		e, err := p.value()
		if err != nil {
			return v, err
		}
		v.Arr = append(v.Arr, e)
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return v, nil
		}
		return v, p.errf("want ',' or ']'")
	}
}

func (p *jparser) str() (string, error) {
	start := p.i
	p.i++
	simple := true
	for p.i < len(p.s) && p.s[p.i] != '"' {
		if p.s[p.i] == '\\' {
			simple = false
			p.i++
		}
		p.i++
	}
	if p.i >= len(p.s) {
		return "", p.errf("unterminated string")
	}
	p.i++
	raw := p.s[start:p.i]
	if simple {
		return string(raw[1 : len(raw)-1]), nil
	}
	s, err := strconv.Unquote(string(raw))
	if err != nil {
		// fastjson may escape '/' or use \u forms Unquote accepts; anything
		// else is returned as written rather than failing the command.
		return strings.ReplaceAll(string(raw[1:len(raw)-1]), `\/`, `/`), nil
	}
	return s, nil
}
