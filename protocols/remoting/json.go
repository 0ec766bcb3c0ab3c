package remoting

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// The JSON header codec is hand-written because every frame goes through it:
// encoding appends straight into the connection's write buffer, and decoding
// copies the header into one string whose substrings become the remark, keys and
// values (only values with escapes, such as message properties with \u0001,
// need their own allocation). See BenchmarkEncodeJSON/BenchmarkDecodeJSON for
// the comparison with encoding/json.

// appendJSONHeader appends the compact JSON header. Every ext value is written
// as a JSON string, which is what the Go client requires (docs/protocol.md, JSON).
func appendJSONHeader(dst []byte, c *Command, opaque, flag int32) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	if int(c.Language) < len(languageNames) {
		dst = append(dst, '"')
		dst = append(dst, languageNames[c.Language]...)
		dst = append(dst, '"')
	} else {
		dst = strconv.AppendInt(dst, int64(c.Language), 10)
	}
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = body.AppendStringRaw(dst, c.Remark)
	dst = append(dst, `,"extFields":{`...)
	first := true
	for _, f := range c.ExtFields {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = body.AppendStringRaw(dst, f.Key)
		dst = append(dst, ':')
		dst = body.AppendStringRaw(dst, f.Value)
	}
	return append(dst, "}}"...)
}

// jsonParser reads one JSON header. It accepts standard JSON and what other
// clients send: ext values of any JSON type (read as their text), language as a
// name or a number, integers as numbers or numeric strings, unknown members.
type jsonParser struct {
	s string
	i int
}

const maxJSONDepth = 64

func decodeJSONHeader(h []byte, c *Command) error {
	p := jsonParser{s: string(h)}
	if err := p.header(c); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.s) {
		return p.errorf("trailing data after the header object")
	}
	return nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return protoErr("JSON header at byte %d: "+format, append([]any{p.i}, args...)...)
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte (0 at the end).
func (p *jsonParser) next() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *jsonParser) expect(b byte) error {
	if p.next() != b {
		return p.errorf("expected %q", b)
	}
	p.i++
	return nil
}

func (p *jsonParser) header(c *Command) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.next() == '}' {
		p.i++
		return nil
	}
	for {
		if p.next() != '"' {
			return p.errorf("expected a member name")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		var n int64
		switch key {
		case "code":
			n, err = p.int(16)
			c.Code = int16(n)
		case "version":
			n, err = p.int(16)
			c.Version = int16(n)
		case "opaque":
			n, err = p.int(32)
			c.Opaque = int32(n)
		case "flag":
			n, err = p.int(32)
			c.Flag = int32(n)
		case "language":
			err = p.language(c)
		case "remark":
			c.Remark, _, err = p.text(0)
		case "extFields":
			err = p.extFields(c)
		default:
			err = p.skip(0)
		}
		if err != nil {
			return err
		}
		switch p.next() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errorf("expected ',' or '}'")
		}
	}
}

// int reads an integer of the given bit size written as a number, a numeric
// string or null (zero).
func (p *jsonParser) int(bits int) (int64, error) {
	var tok string
	switch b := p.next(); {
	case b == '"':
		s, err := p.str()
		if err != nil {
			return 0, err
		}
		tok = s
	case b == 'n':
		return 0, p.literal("null")
	default:
		s, err := p.number()
		if err != nil {
			return 0, err
		}
		tok = s
	}
	n, err := strconv.ParseInt(tok, 10, bits)
	if err != nil {
		// Tolerate integral floats ("10.0", "1e2") from loose encoders.
		f, ferr := strconv.ParseFloat(tok, 64)
		if ferr != nil || f != float64(int64(f)) || int64(f) < -1<<(bits-1) || int64(f) >= 1<<(bits-1) {
			return 0, p.errorf("%q is not an int%d", tok, bits)
		}
		n = int64(f)
	}
	return n, nil
}

func (p *jsonParser) language(c *Command) error {
	switch p.next() {
	case '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		c.Language = languageByName(s)
		return nil
	case 'n':
		return p.literal("null")
	}
	n, err := p.int(16)
	if err != nil {
		return err
	}
	if n < 0 || n > 255 {
		return p.errorf("language %d out of range", n)
	}
	c.Language = LanguageCode(n)
	return nil
}

func (p *jsonParser) extFields(c *Command) error {
	switch p.next() {
	case 'n':
		return p.literal("null")
	case '{':
		p.i++
	default:
		return p.errorf("extFields is not an object")
	}
	if p.next() == '}' {
		p.i++
		return nil
	}
	// Colons bound the member count (values may hold more); the cap keeps a
	// hostile header from sizing a huge slice up front.
	if c.ExtFields == nil {
		c.ExtFields = make(Fields, 0, min(strings.Count(p.s[p.i:], ":"), 32))
	}
	for {
		if p.next() != '"' {
			return p.errorf("expected an ext field name")
		}
		k, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		v, ok, err := p.text(1)
		if err != nil {
			return err
		}
		// null means "not set", as for Java's map of strings.
		if ok {
			c.ExtFields = append(c.ExtFields, Field{k, v})
			if len(c.ExtFields) > maxExtFields {
				return p.errorf("more than %d ext fields", maxExtFields)
			}
		}
		switch p.next() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errorf("expected ',' or '}' in extFields")
		}
	}
}

// text reads any value as text: a string's contents, a number or true/false as
// written, an object or array as its raw JSON. ok is false for null.
func (p *jsonParser) text(depth int) (s string, ok bool, err error) {
	switch b := p.next(); b {
	case '"':
		s, err = p.str()
		return s, err == nil, err
	case 't':
		return "true", true, p.literal("true")
	case 'f':
		return "false", true, p.literal("false")
	case 'n':
		return "", false, p.literal("null")
	case '{', '[':
		start := p.i
		if err := p.skip(depth); err != nil {
			return "", false, err
		}
		return p.s[start:p.i], true, nil
	default:
		s, err = p.number()
		return s, err == nil, err
	}
}

func (p *jsonParser) literal(lit string) error {
	if !strings.HasPrefix(p.s[p.i:], lit) {
		return p.errorf("invalid literal")
	}
	p.i += len(lit)
	return nil
}

// number scans a JSON number and returns its text.
func (p *jsonParser) number() (string, error) {
	s, start := p.s, p.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return "", p.errorf("invalid value")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return "", p.errorf("invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return "", p.errorf("invalid number")
		}
	}
	p.i = i
	return s[start:i], nil
}

// str reads a string starting at its opening quote. Strings without escapes
// are substrings of the header; others are unescaped into one allocation.
func (p *jsonParser) str() (string, error) {
	// A plain loop beats IndexByte on the short strings headers are made of.
	s, start := p.s, p.i+1
	for i := start; i < len(s); i++ {
		if c := s[i]; c == '"' {
			p.i = i + 1
			return s[start:i], nil
		} else if c == '\\' {
			break
		}
	}
	end, err := p.skipString()
	if err != nil {
		return "", err
	}
	raw := p.s[start : end-1]
	var b strings.Builder
	b.Grow(len(raw)) // unescaping never lengthens the text
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := strings.IndexByte(raw[i:], '\\')
			if j < 0 {
				j = len(raw) - i
			}
			b.WriteString(raw[i : i+j])
			i += j
			continue
		}
		e := raw[i+1] // skipString checked every escape
		i += 2
		switch e {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(raw[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		default: // '"', '\\', '/'
			b.WriteByte(e)
		}
	}
	return b.String(), nil
}

// hex4 decodes 4 hex digits already validated by skipString.
func hex4(s string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// skipString validates the string at p.i (its opening quote) and moves past it,
// returning the index after the closing quote.
func (p *jsonParser) skipString() (int, error) {
	s := p.s
	for i := p.i + 1; i < len(s); {
		switch s[i] {
		case '"':
			p.i = i + 1
			return p.i, nil
		case '\\':
			if i+1 >= len(s) {
				return 0, p.errorf("unterminated string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
					return 0, p.errorf("invalid \\u escape")
				}
				i += 6
			default:
				return 0, p.errorf("invalid escape \\%c", s[i+1])
			}
		default:
			i++
		}
	}
	return 0, p.errorf("unterminated string")
}

// skip moves past one value of any type, validating it.
func (p *jsonParser) skip(depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nesting deeper than %d", maxJSONDepth)
	}
	switch p.next() {
	case '"':
		_, err := p.skipString()
		return err
	case '{':
		p.i++
		if p.next() == '}' {
			p.i++
			return nil
		}
		for {
			if p.next() != '"' {
				return p.errorf("expected a member name")
			}
			if _, err := p.skipString(); err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			switch p.next() {
			case ',':
				p.i++
			case '}':
				p.i++
				return nil
			default:
				return p.errorf("expected ',' or '}'")
			}
		}
	case '[':
		p.i++
		if p.next() == ']' {
			p.i++
			return nil
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			switch p.next() {
			case ',':
				p.i++
			case ']':
				p.i++
				return nil
			default:
				return p.errorf("expected ',' or ']'")
			}
		}
	default:
		_, _, err := p.text(depth)
		return err
	}
}
