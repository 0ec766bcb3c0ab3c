package config

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Property is one key/value pair of a java.util.Properties file.
type Property struct {
	Key   string
	Value string
	Line  int // 1-based line where the entry starts
}

// ParseProperties reads java.util.Properties syntax, the format of RocketMQ's
// broker.conf and *.properties files: '#' and '!' comment lines, key=value,
// key: value or key value, logical lines continued by a trailing backslash, and
// the Java escapes (\t \n \r \f \uXXXX, \x for x). Content is UTF-8; a file that
// is not valid UTF-8 is read as ISO-8859-1, as Java's Properties.load does.
//
// One deliberate difference from Java: trailing unescaped whitespace is trimmed
// from values. Java keeps it, and RocketMQ then fails to parse the number and
// silently keeps the default (a stray space after mapedFileSizeCommitLog=...);
// what the operator meant is the value without the space.
func ParseProperties(data []byte) ([]Property, error) {
	text := string(data)
	if !utf8.ValidString(text) {
		text = latin1(data)
	}
	var out []Property
	line := 1
	for len(text) > 0 {
		logical, start, rest, next := nextLogicalLine(text, line)
		text, line = rest, next
		if logical == "" {
			continue
		}
		key, value, err := splitProperty(logical)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		out = append(out, Property{Key: key, Value: value, Line: start})
	}
	return out, nil
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func isPropSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// nextNaturalLine splits off one line; it returns the line without its
// terminator (\n, \r or \r\n) and the rest.
func nextNaturalLine(s string) (line, rest string) {
	i := strings.IndexAny(s, "\r\n")
	if i < 0 {
		return s, ""
	}
	if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
		return s[:i], s[i+2:]
	}
	return s[:i], s[i+1:]
}

// endsWithContinuation reports whether a line ends with an odd number of
// backslashes, that is an escaped line terminator.
func endsWithContinuation(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// nextLogicalLine returns the next non-blank, non-comment logical line with
// leading whitespace removed ("" if the consumed lines held none), the line
// number it started on, the remaining text and the next line number.
func nextLogicalLine(s string, line int) (logical string, start int, rest string, next int) {
	nat, rest := nextNaturalLine(s)
	start, next = line, line+1
	nat = strings.TrimLeft(nat, " \t\f")
	if nat == "" || nat[0] == '#' || nat[0] == '!' {
		// Comments do not continue, whatever they end with.
		return "", start, rest, next
	}
	if !endsWithContinuation(nat) {
		return nat, start, rest, next
	}
	var b strings.Builder
	for endsWithContinuation(nat) {
		b.WriteString(nat[:len(nat)-1])
		if rest == "" {
			// A backslash at the end of the file continues into nothing.
			return b.String(), start, rest, next
		}
		nat, rest = nextNaturalLine(rest)
		next++
		nat = strings.TrimLeft(nat, " \t\f")
	}
	b.WriteString(nat)
	return b.String(), start, rest, next
}

// splitProperty splits a logical line into its unescaped key and value.
func splitProperty(l string) (key, value string, err error) {
	i := 0
	keyEnd := len(l)
	valStart := len(l)
	for i < len(l) {
		c := l[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' {
			keyEnd, valStart = i, i+1
			break
		}
		if isPropSpace(c) {
			keyEnd = i
			j := i
			for j < len(l) && isPropSpace(l[j]) {
				j++
			}
			if j < len(l) && (l[j] == '=' || l[j] == ':') {
				j++
			}
			valStart = j
			break
		}
		i++
	}
	if keyEnd > len(l) {
		keyEnd = len(l)
	}
	for valStart < len(l) && isPropSpace(l[valStart]) {
		valStart++
	}
	rawVal := trimTrailingSpace(l[min(valStart, len(l)):])
	if key, err = unescape(l[:keyEnd]); err != nil {
		return "", "", err
	}
	if value, err = unescape(rawVal); err != nil {
		return "", "", err
	}
	return key, value, nil
}

// trimTrailingSpace drops trailing whitespace that is not escaped.
func trimTrailingSpace(s string) string {
	for len(s) > 0 && isPropSpace(s[len(s)-1]) {
		bs := 0
		for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
			bs++
		}
		if bs%2 == 1 {
			break // "\ " is an escaped, wanted space
		}
		s = s[:len(s)-1]
	}
	return s
}

// unescape applies the java.util.Properties escapes.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	var pending []uint16 // UTF-16 code units from \u escapes, joined for surrogate pairs
	flush := func() {
		if len(pending) > 0 {
			b.WriteString(string(utf16.Decode(pending)))
			pending = pending[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			flush()
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break // a lone trailing backslash stands for nothing
		}
		switch s[i] {
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uxxxx escape %q", s[i-1:])
			}
			var u uint16
			for _, h := range []byte(s[i+1 : i+5]) {
				var d byte
				switch {
				case h >= '0' && h <= '9':
					d = h - '0'
				case h >= 'a' && h <= 'f':
					d = h - 'a' + 10
				case h >= 'A' && h <= 'F':
					d = h - 'A' + 10
				default:
					return "", fmt.Errorf("malformed \\uxxxx escape %q", s[i-1:i+5])
				}
				u = u<<4 | uint16(d)
			}
			pending = append(pending, u)
			i += 4
			continue
		case 't':
			flush()
			b.WriteByte('\t')
		case 'n':
			flush()
			b.WriteByte('\n')
		case 'r':
			flush()
			b.WriteByte('\r')
		case 'f':
			flush()
			b.WriteByte('\f')
		default:
			flush()
			// \x stands for x; copy the whole (possibly multi-byte) rune.
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+size])
			i += size - 1
		}
	}
	flush()
	return b.String(), nil
}
