package sqlfilter

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// kind is a value's Java type: a property is always a String, literals are
// Integer (fits in 32 bits), Long, Double, Boolean or null.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt  // java.lang.Integer
	kLong // java.lang.Long
	kDouble
	kString
	kErr // Java threw: the whole evaluation fails (no match)
)

type value struct {
	k kind
	b bool
	i int64
	f float64
	s string
}

var (
	vNull  = value{}
	vTrue  = value{k: kBool, b: true}
	vFalse = value{k: kBool}
	vErr   = value{k: kErr}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

func (v value) isNumber() bool { return v.k == kInt || v.k == kLong || v.k == kDouble }

func (v value) literal() string {
	switch v.k {
	case kNull:
		return "NULL"
	case kBool:
		if v.b {
			return "TRUE"
		}
		return "FALSE"
	case kInt, kLong:
		return strconv.FormatInt(v.i, 10)
	case kDouble:
		s := strconv.FormatFloat(v.f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0" // stays a decimal literal when parsed again
		}
		return s
	case kString:
		return quote(v.s)
	}
	return "<error>"
}

// Lookup returns the value of a message property and whether it is present.
type Lookup interface {
	Property(name string) (string, bool)
}

// Props is a RocketMQ property string (key\x01value pairs separated by \x02)
// as a Lookup; absent and empty values are both missing, as Java drops
// empty values when it decodes properties.
type Props string

// Property implements Lookup; a repeated key keeps its last value.
func (p Props) Property(name string) (string, bool) {
	s := string(p)
	var val string
	found := false
	for i := 0; i < len(s); {
		end := strings.IndexByte(s[i:], 2)
		if end < 0 {
			end = len(s)
		} else {
			end += i
		}
		piece := s[i:end]
		if kv := strings.IndexByte(piece, 1); kv > 0 && kv < len(piece)-1 && piece[:kv] == name {
			val, found = piece[kv+1:], true
		}
		i = end + 1
	}
	return val, found
}

// Map is a property map as a Lookup.
type Map map[string]string

// Property implements Lookup.
func (m Map) Property(name string) (string, bool) {
	v, ok := m[name]
	return v, ok && v != ""
}

// Result is the three-valued outcome of an evaluation, plus Java's exception.
type Result uint8

const (
	Unknown Result = iota // NULL: some operand was missing
	False
	True
	Failed // a conversion failed (Java throws; the message does not match)
)

func (r Result) String() string {
	return [...]string{"UNKNOWN", "FALSE", "TRUE", "FAILED"}[r]
}

// Evaluate evaluates the expression on a message's properties.
func (e *Expr) Evaluate(props Lookup) Result {
	v := eval(e.root, props)
	switch {
	case v.k == kErr:
		return Failed
	case v.k == kBool && v.b:
		return True
	case v.k == kBool:
		return False
	}
	return Unknown
}

// Matches reports whether a message with these properties is selected: only
// a TRUE result selects it.
func (e *Expr) Matches(props Lookup) bool { return e.Evaluate(props) == True }

// MatchProps is Matches on a RocketMQ property string; it does not allocate.
func (e *Expr) MatchProps(props string) bool {
	v := evalProps(e.root, props)
	return v.k == kBool && v.b
}

// evalProps and eval are the same evaluator; evalProps takes the property
// string directly so the hot path needs no interface conversion.
func evalProps(n *node, props string) value {
	return evalWith(n, props, nil)
}

func eval(n *node, l Lookup) value { return evalWith(n, "", l) }

func lookup(name, props string, l Lookup) (string, bool) {
	if l != nil {
		return l.Property(name)
	}
	return Props(props).Property(name)
}

func evalWith(n *node, props string, l Lookup) value {
	switch n.op {
	case opConst:
		return n.val
	case opProp:
		if s, ok := lookup(n.name, props, l); ok {
			return value{k: kString, s: s}
		}
		return vNull
	case opOr:
		lv := evalWith(n.l, props, l)
		if lv.k == kErr || lv.k == kBool && lv.b {
			return lv
		}
		rv := evalWith(n.r, props, l)
		if rv.k == kErr || rv.k == kBool && rv.b {
			return rv
		}
		if lv.k == kNull || rv.k == kNull {
			return vNull
		}
		return vFalse
	case opAnd:
		lv := evalWith(n.l, props, l)
		if lv.k == kErr || lv.k == kBool && !lv.b {
			return lv
		}
		rv := evalWith(n.r, props, l)
		if rv.k == kErr || rv.k == kBool && !rv.b {
			return rv
		}
		if lv.k == kNull || rv.k == kNull {
			return vNull
		}
		return vTrue
	case opNot:
		v := evalWith(n.l, props, l)
		switch v.k {
		case kNull, kErr:
			return v
		case kBool:
			return boolValue(!v.b)
		}
		return vErr // Java's (Boolean) cast fails
	case opBoolCast:
		v := evalWith(n.l, props, l)
		if v.k == kNull || v.k == kErr || v.k == kBool {
			return v
		}
		return vFalse
	case opNeg:
		v := evalWith(n.l, props, l)
		switch v.k {
		case kInt, kLong:
			v.i = -v.i
			return v
		case kDouble:
			v.f = -v.f
			return v
		case kErr:
			return v
		}
		return vNull
	case opEq:
		lv := evalWith(n.l, props, l)
		if lv.k == kErr {
			return lv
		}
		rv := evalWith(n.r, props, l)
		if rv.k == kErr {
			return rv
		}
		return equal(lv, rv)
	case opGt, opGe, opLt, opLe:
		lv := evalWith(n.l, props, l)
		if lv.k == kNull || lv.k == kErr {
			return lv
		}
		rv := evalWith(n.r, props, l)
		if rv.k == kNull || rv.k == kErr {
			return rv
		}
		if lv.k == kString && rv.k == kString {
			// Two strings are ordered as numbers, or not at all.
			lf, ok1 := javaParseDouble(lv.s)
			rf, ok2 := javaParseDouble(rv.s)
			if !ok1 || !ok2 {
				return vErr
			}
			lv, rv = value{k: kDouble, f: lf}, value{k: kDouble, f: rf}
		}
		c, ok := compare(lv, rv)
		if !ok {
			return vErr
		}
		switch n.op {
		case opGt:
			return boolValue(c > 0)
		case opGe:
			return boolValue(c >= 0)
		case opLt:
			return boolValue(c < 0)
		}
		return boolValue(c <= 0)
	case opIn:
		v := evalWith(n.l, props, l)
		if v.k != kString {
			if v.k == kErr {
				return v
			}
			return vNull
		}
		found := false
		for _, s := range n.list {
			if s == v.s {
				found = true
				break
			}
		}
		return boolValue(found != n.not)
	}
	return vErr
}

// equal is Java's equality: NULL = NULL is TRUE; a missing left side is
// unknown but a missing right side is FALSE; otherwise equal values, or values
// that compare as 0 after conversion.
func equal(lv, rv value) value {
	if (lv.k == kNull) != (rv.k == kNull) {
		if lv.k == kNull {
			return vNull
		}
		return vFalse
	}
	if lv.k == kNull {
		return vTrue
	}
	if lv.k == rv.k {
		switch lv.k {
		case kBool:
			return boolValue(lv.b == rv.b)
		case kInt, kLong:
			return boolValue(lv.i == rv.i)
		case kString:
			return boolValue(lv.s == rv.s)
		case kDouble:
			// Double.equals compares bit patterns (NaN equals NaN, 0.0 is not -0.0).
			return boolValue(math.Float64bits(lv.f) == math.Float64bits(rv.f))
		}
	}
	c, ok := compare(lv, rv)
	if !ok {
		return vErr
	}
	return boolValue(c == 0)
}

// compare is Java's ComparisonExpression.__compare with string conversion on:
// values of different types are converted up (Integer to Long to Double, a
// String to the other side's type); pairs with no conversion compare as -1;
// ok is false where Java throws (a string that is not a number).
func compare(lv, rv value) (int, bool) {
	if lv.k != rv.k {
		switch lv.k {
		case kBool:
			if rv.k == kString {
				return 0, false // Java's ClassCastException
			}
			return -1, true
		case kInt, kLong:
			switch rv.k {
			case kInt, kLong:
				// Integer and Long widen to long.
			case kDouble:
				lv = value{k: kDouble, f: float64(lv.i)}
			case kString:
				i, ok := javaParseInt(rv.s, lv.k == kInt)
				if !ok {
					return 0, false
				}
				rv = value{k: lv.k, i: i}
			default:
				return -1, true
			}
		case kDouble:
			switch rv.k {
			case kInt, kLong:
				rv = value{k: kDouble, f: float64(rv.i)}
			case kString:
				f, ok := javaParseDouble(rv.s)
				if !ok {
					return 0, false
				}
				rv = value{k: kDouble, f: f}
			default:
				return -1, true
			}
		case kString:
			switch rv.k {
			case kBool:
				lv = value{k: kBool, b: strings.EqualFold(lv.s, "true")}
			case kInt, kLong:
				i, ok := javaParseInt(lv.s, rv.k == kInt)
				if !ok {
					return 0, false
				}
				lv = value{k: rv.k, i: i}
			case kDouble:
				f, ok := javaParseDouble(lv.s)
				if !ok {
					return 0, false
				}
				lv = value{k: kDouble, f: f}
			default:
				return -1, true
			}
		default:
			return -1, true
		}
	}
	switch lv.k {
	case kBool:
		switch {
		case lv.b == rv.b:
			return 0, true
		case rv.b:
			return -1, true
		}
		return 1, true
	case kInt, kLong:
		switch {
		case lv.i < rv.i:
			return -1, true
		case lv.i > rv.i:
			return 1, true
		}
		return 0, true
	case kDouble:
		return javaDoubleCompare(lv.f, rv.f), true
	case kString:
		return compareUTF16(lv.s, rv.s), true
	}
	return -1, true
}

// javaDoubleCompare is Double.compare: -0.0 < 0.0 and NaN is above everything
// and equal to itself.
func javaDoubleCompare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	ab, bb := int64(math.Float64bits(a)), int64(math.Float64bits(b))
	if math.IsNaN(a) {
		ab = 0x7ff8000000000000
	}
	if math.IsNaN(b) {
		bb = 0x7ff8000000000000
	}
	switch {
	case ab < bb:
		return -1
	case ab > bb:
		return 1
	}
	return 0
}

// compareUTF16 orders strings as Java's String.compareTo (by UTF-16 code units).
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if ua[0] != ub[0] {
				return int(ua[0]) - int(ub[0])
			}
			return int(ua[1]) - int(ub[1])
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func utf16Units(r rune) [2]uint16 {
	if r >= 0x10000 {
		h, l := utf16.EncodeRune(r)
		return [2]uint16{uint16(h), uint16(l)}
	}
	return [2]uint16{uint16(r), 0}
}

// javaParseInt is Integer.valueOf / Long.valueOf: an optional sign and ASCII
// digits, nothing else, within range.
func javaParseInt(s string, int32Range bool) (int64, bool) {
	bits := 64
	if int32Range {
		bits = 32
	}
	if s == "" || s[0] == '+' && len(s) == 1 {
		return 0, false
	}
	i, err := strconv.ParseInt(s, 10, bits)
	return i, err == nil
}

// javaParseDouble is Double.valueOf for decimal input: blanks around, an
// optional sign, NaN, Infinity, digits with a fraction and an exponent, and an
// optional f/F/d/D suffix.
func javaParseDouble(s string) (float64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if s == "" {
		return 0, false
	}
	body := s
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	switch body {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if s[0] == '-' {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if n := len(s); n > 1 && strings.IndexByte("fFdD", s[n-1]) >= 0 {
		s = s[:n-1]
	}
	// Only the decimal syntax: Go's ParseFloat also takes "inf", hex and
	// underscores, which Java does not.
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits = true
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
