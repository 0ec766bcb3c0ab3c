package sqlfilter

import (
	"math"
	"strconv"
	"strings"
)

// op is a node's operation.
type op uint8

const (
	opConst    op = iota // val
	opProp               // name
	opAnd                // l AND r
	opOr                 // l OR r
	opNot                // NOT l
	opBoolCast           // a property used as a condition
	opNeg                // -l
	opEq                 // l = r (IS NULL is l = NULL)
	opGt                 // l > r
	opGe                 // l >= r
	opLt                 // l < r
	opLe                 // l <= r
	opIn                 // l [NOT] IN list
)

// node is one expression node. A single concrete type (no interface per
// operation) keeps evaluation free of allocations.
type node struct {
	op   op
	not  bool // opIn: NOT IN
	l, r *node
	val  value
	name string
	list []string
}

// isBoolean reports whether the node is a Java BooleanExpression.
func (n *node) isBoolean() bool {
	switch n.op {
	case opConst:
		return n.val.k == kBool || n.val.k == kNull
	case opProp, opNeg:
		return false
	}
	return true
}

// Expr is a compiled selector; it is immutable and safe for concurrent use.
type Expr struct {
	src  string
	root *node
}

// MaxLength bounds the expression text, and MaxDepth its nesting, so a hostile
// subscription cannot exhaust the broker.
const (
	MaxLength = 64 << 10
	MaxDepth  = 256
)

// Compile parses an SQL92 selector.
func Compile(src string) (*Expr, error) {
	if len(src) > MaxLength {
		return nil, &SyntaxError{Expr: src[:64] + "...", Pos: MaxLength, Msg: "expression longer than " + strconv.Itoa(MaxLength) + " bytes"}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	root, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, root: root}, nil
}

// String returns the source text of the expression.
func (e *Expr) String() string { return e.src }

type parser struct {
	src   string
	toks  []token
	pos   int
	depth int
}

func (p *parser) peek() token        { return p.toks[p.pos] }
func (p *parser) peekAt(n int) token { return p.toks[min(p.pos+n, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if p.pos < len(p.toks)-1 {
		p.pos++
	}
	return t
}

func (p *parser) errAt(pos int, msg string) error {
	return &SyntaxError{Expr: p.src, Pos: pos, Msg: msg}
}

func (p *parser) unexpected(want string) error {
	t := p.peek()
	return p.errAt(t.pos, "expected "+want+", found "+t.describe())
}

func (p *parser) expect(k tokKind) (token, error) {
	if p.peek().kind != k {
		return token{}, p.unexpected(tokNames[k])
	}
	return p.next(), nil
}

func (p *parser) parse() (*node, error) {
	if p.peek().kind == tEOF {
		return nil, p.errAt(0, "empty expression")
	}
	n, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, p.unexpected("end of expression")
	}
	return p.asBoolean(n, 0)
}

// asBoolean is Java's asBooleanExpression: conditions pass, a bare property
// becomes a boolean cast, anything else (a number, a string) is an error.
func (p *parser) asBoolean(n *node, pos int) (*node, error) {
	if n.isBoolean() {
		return n, nil
	}
	if n.op == opProp {
		return &node{op: opBoolCast, l: n}, nil
	}
	return nil, p.errAt(pos, "expression will not result in a boolean value: "+n.String())
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errAt(p.peek().pos, "expression nested deeper than "+strconv.Itoa(MaxDepth))
	}
	return nil
}

func (p *parser) orExpr() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	pos := p.peek().pos
	left, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOr {
		opPos := p.next().pos
		rpos := p.peek().pos
		right, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		if left, err = p.asBoolean(left, pos); err != nil {
			return nil, err
		}
		if right, err = p.asBoolean(right, rpos); err != nil {
			return nil, err
		}
		left, pos = &node{op: opOr, l: left, r: right}, opPos
	}
	return left, nil
}

func (p *parser) andExpr() (*node, error) {
	pos := p.peek().pos
	left, err := p.equality()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tAnd {
		opPos := p.next().pos
		rpos := p.peek().pos
		right, err := p.equality()
		if err != nil {
			return nil, err
		}
		if left, err = p.asBoolean(left, pos); err != nil {
			return nil, err
		}
		if right, err = p.asBoolean(right, rpos); err != nil {
			return nil, err
		}
		left, pos = &node{op: opAnd, l: left, r: right}, opPos
	}
	return left, nil
}

func (p *parser) equality() (*node, error) {
	left, err := p.comparison()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tEq || t.kind == tNe:
			p.next()
			rpos := p.peek().pos
			right, err := p.comparison()
			if err != nil {
				return nil, err
			}
			if err := p.checkEqual(left, right, t.pos, rpos); err != nil {
				return nil, err
			}
			left = &node{op: opEq, l: left, r: right}
			if t.kind == tNe {
				left = &node{op: opNot, l: left}
			}
		case t.kind == tIs && p.peekAt(1).kind == tNull:
			p.pos += 2
			left = &node{op: opEq, l: left, r: &node{op: opConst}}
		case t.kind == tIs && p.peekAt(1).kind == tNot && p.peekAt(2).kind == tNull:
			p.pos += 3
			left = &node{op: opNot, l: &node{op: opEq, l: left, r: &node{op: opConst}}}
		case t.kind == tIs:
			p.next()
			return nil, p.unexpected("NULL or NOT NULL after IS")
		default:
			return left, nil
		}
	}
}

// checkEqual is Java's checkEqualOperand and checkEqualOperandCompatability.
func (p *parser) checkEqual(l, r *node, lpos, rpos int) error {
	if l.op == opConst && l.val.k == kNull {
		return p.errAt(lpos, "NULL cannot be compared, use IS NULL")
	}
	if r.op == opConst && r.val.k == kNull {
		return p.errAt(rpos, "NULL cannot be compared, use IS NULL")
	}
	if l.op == opConst && r.op == opConst && l.isBoolean() && !r.isBoolean() {
		return p.errAt(lpos, l.String()+" cannot be compared with "+r.String())
	}
	return nil
}

// checkOrdered is Java's checkLessThanOperand: constants must be numbers and
// conditions cannot be ordered.
func (p *parser) checkOrdered(n *node, pos int) error {
	if n.op == opConst {
		if n.val.isNumber() {
			return nil
		}
		return p.errAt(pos, "value "+n.String()+" cannot be compared with <, <=, >, >= or BETWEEN")
	}
	if n.isBoolean() {
		return p.errAt(pos, "condition "+n.String()+" cannot be compared with <, <=, >, >= or BETWEEN")
	}
	return nil
}

func (p *parser) ordered(o op, l, r *node, lpos, rpos int) (*node, error) {
	if err := p.checkOrdered(l, lpos); err != nil {
		return nil, err
	}
	if err := p.checkOrdered(r, rpos); err != nil {
		return nil, err
	}
	return &node{op: o, l: l, r: r}, nil
}

func (p *parser) comparison() (*node, error) {
	lpos := p.peek().pos
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var o op
		switch t.kind {
		case tGt:
			o = opGt
		case tGe:
			o = opGe
		case tLt:
			o = opLt
		case tLe:
			o = opLe
		case tBetween:
			p.next()
			if left, err = p.between(left, lpos, false); err != nil {
				return nil, err
			}
			lpos = t.pos
			continue
		case tIn:
			p.next()
			if left, err = p.in(left, lpos, false); err != nil {
				return nil, err
			}
			lpos = t.pos
			continue
		case tNot:
			switch p.peekAt(1).kind {
			case tBetween:
				p.pos += 2
				if left, err = p.between(left, lpos, true); err != nil {
					return nil, err
				}
			case tIn:
				p.pos += 2
				if left, err = p.in(left, lpos, true); err != nil {
					return nil, err
				}
			default:
				return left, nil
			}
			lpos = t.pos
			continue
		default:
			return left, nil
		}
		p.next()
		rpos := p.peek().pos
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		if left, err = p.ordered(o, left, right, lpos, rpos); err != nil {
			return nil, err
		}
		lpos = t.pos
	}
}

// between builds v BETWEEN lo AND hi as (v >= lo AND v <= hi), and NOT BETWEEN
// as (v < lo OR v > hi), after Java's check of constant bounds.
func (p *parser) between(v *node, vpos int, not bool) (*node, error) {
	lopos := p.peek().pos
	lo, err := p.unary()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tAnd); err != nil {
		return nil, err
	}
	hipos := p.peek().pos
	hi, err := p.unary()
	if err != nil {
		return nil, err
	}
	if not {
		a, err := p.ordered(opLt, v, lo, vpos, lopos)
		if err != nil {
			return nil, err
		}
		b, err := p.ordered(opGt, v, hi, vpos, hipos)
		if err != nil {
			return nil, err
		}
		return &node{op: opOr, l: a, r: b}, nil
	}
	if lo.op == opConst && hi.op == opConst {
		if lo.val.k == kNull || hi.val.k == kNull {
			return nil, p.errAt(lopos, "BETWEEN bounds cannot be NULL")
		}
		c, ok := compare(hi.val, lo.val)
		if !ok {
			return nil, p.errAt(lopos, "BETWEEN bounds "+lo.String()+" and "+hi.String()+" cannot be compared")
		}
		if c < 0 {
			return nil, p.errAt(lopos, "BETWEEN lower bound "+lo.String()+" is greater than upper bound "+hi.String())
		}
	}
	a, err := p.ordered(opGe, v, lo, vpos, lopos)
	if err != nil {
		return nil, err
	}
	b, err := p.ordered(opLe, v, hi, vpos, hipos)
	if err != nil {
		return nil, err
	}
	return &node{op: opAnd, l: a, r: b}, nil
}

func (p *parser) in(v *node, vpos int, not bool) (*node, error) {
	if v.op != opProp {
		return nil, p.errAt(vpos, "IN needs a property on its left, got "+v.String())
	}
	if _, err := p.expect(tLParen); err != nil {
		return nil, err
	}
	var list []string
	for {
		t, err := p.expect(tString)
		if err != nil {
			return nil, err
		}
		list = append(list, t.text)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if _, err := p.expect(tRParen); err != nil {
		return nil, err
	}
	return &node{op: opIn, l: v, list: list, not: not}, nil
}

func (p *parser) unary() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	t := p.peek()
	switch t.kind {
	case tPlus:
		p.next()
		return p.unary()
	case tMinus:
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{op: opNeg, l: n}, nil
	case tNot:
		p.next()
		pos := p.peek().pos
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		if n, err = p.asBoolean(n, pos); err != nil {
			return nil, err
		}
		return &node{op: opNot, l: n}, nil
	}
	return p.primary()
}

func (p *parser) primary() (*node, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &node{op: opConst, val: value{k: kString, s: t.text}}, nil
	case tDecimal:
		p.next()
		text := strings.TrimRight(t.text, "lL")
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "integer "+t.text+" out of the range of a 64-bit long")
		}
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return &node{op: opConst, val: value{k: kInt, i: i}}, nil
		}
		return &node{op: opConst, val: value{k: kLong, i: i}}, nil
	case tFloat:
		p.next()
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, p.errAt(t.pos, "number "+t.text+" out of the range of a double")
		}
		return &node{op: opConst, val: value{k: kDouble, f: f}}, nil
	case tTrue, tFalse:
		p.next()
		return &node{op: opConst, val: value{k: kBool, b: t.kind == tTrue}}, nil
	case tNull:
		p.next()
		return &node{op: opConst}, nil
	case tIdent:
		p.next()
		return &node{op: opProp, name: t.text}, nil
	case tLParen:
		p.next()
		n, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, p.unexpected("a value, a property or '('")
}

// String renders the node in a fully parenthesised form (for errors and tests).
func (n *node) String() string {
	var sb strings.Builder
	n.write(&sb)
	return sb.String()
}

func (n *node) write(sb *strings.Builder) {
	bin := func(sym string) {
		sb.WriteByte('(')
		n.l.write(sb)
		sb.WriteString(sym)
		n.r.write(sb)
		sb.WriteByte(')')
	}
	switch n.op {
	case opConst:
		sb.WriteString(n.val.literal())
	case opProp:
		sb.WriteString(n.name)
	case opAnd:
		bin(" AND ")
	case opOr:
		bin(" OR ")
	case opNot:
		sb.WriteString("(NOT ")
		n.l.write(sb)
		sb.WriteByte(')')
	case opBoolCast:
		n.l.write(sb)
	case opNeg:
		sb.WriteString("(-")
		n.l.write(sb)
		sb.WriteByte(')')
	case opEq:
		if n.r.op == opConst && n.r.val.k == kNull {
			sb.WriteByte('(')
			n.l.write(sb)
			sb.WriteString(" IS NULL)")
			return
		}
		bin(" = ")
	case opGt:
		bin(" > ")
	case opGe:
		bin(" >= ")
	case opLt:
		bin(" < ")
	case opLe:
		bin(" <= ")
	case opIn:
		sb.WriteByte('(')
		n.l.write(sb)
		if n.not {
			sb.WriteString(" NOT")
		}
		sb.WriteString(" IN (")
		for i, s := range n.list {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(quote(s))
		}
		sb.WriteString("))")
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
