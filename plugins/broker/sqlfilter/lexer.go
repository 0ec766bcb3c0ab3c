// Package sqlfilter compiles and evaluates RocketMQ's SQL92 message selectors
// (ExpressionType SQL92, MessageSelector.bySql) over message properties.
//
// The grammar and the evaluation semantics are those of RocketMQ 4.9.8's
// SelectorParser (a JMS-selector subset):
//
//	expr        = and { OR and }
//	and         = equality { AND equality }
//	equality    = comparison { ("=" | "<>") comparison | IS [NOT] NULL }
//	comparison  = unary { (">" | ">=" | "<" | "<=") unary
//	                    | [NOT] BETWEEN unary AND unary
//	                    | [NOT] IN "(" string { "," string } ")" }
//	unary       = "+" unary | "-" unary | NOT unary | primary
//	primary     = literal | identifier | "(" expr ")"
//	literal     = 'string' ('' escapes a quote) | integer [L] | decimal | TRUE | FALSE | NULL
//	identifier  = [A-Za-z_$][A-Za-z0-9_$]*   (keywords are case-insensitive and reserved)
//
// NOT binds tighter than comparisons, as in Java: "NOT a > 5" is rejected, write
// "NOT (a > 5)". Property values are strings; comparing one with a number
// converts it (Integer, Long or Double, after the literal's type) and a value
// that does not convert makes the whole expression fail to match. A missing
// property yields NULL, and NULL comparisons are unknown (no match), with Java's
// asymmetries kept: 'x' = a is FALSE when a is missing (so NOT ('x' = a)
// matches) while a = 'x' is unknown. A message matches only when the
// expression evaluates to TRUE.
//
// Differences from Java, all stricter or saner and documented in the tests:
// trailing input after a complete expression is an error (Java ignores it),
// float literals below Double.MIN_VALUE such as 0.0 are accepted (Java rejects
// them), and numeric strings are parsed with ASCII digits only.
package sqlfilter

import (
	"fmt"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tDecimal
	tFloat
	tNot
	tAnd
	tOr
	tBetween
	tIn
	tTrue
	tFalse
	tNull
	tIs
	tEq     // =
	tNe     // <>
	tGt     // >
	tGe     // >=
	tLt     // <
	tLe     // <=
	tLParen // (
	tRParen // )
	tComma  // ,
	tPlus   // +
	tMinus  // -
)

var tokNames = [...]string{
	tEOF: "end of expression", tIdent: "identifier", tString: "string literal", tDecimal: "integer literal",
	tFloat: "decimal literal", tNot: "NOT", tAnd: "AND", tOr: "OR", tBetween: "BETWEEN", tIn: "IN",
	tTrue: "TRUE", tFalse: "FALSE", tNull: "NULL", tIs: "IS", tEq: "'='", tNe: "'<>'", tGt: "'>'",
	tGe: "'>='", tLt: "'<'", tLe: "'<='", tLParen: "'('", tRParen: "')'", tComma: "','", tPlus: "'+'", tMinus: "'-'",
}

var keywords = map[string]tokKind{
	"NOT": tNot, "AND": tAnd, "OR": tOr, "BETWEEN": tBetween, "IN": tIn,
	"TRUE": tTrue, "FALSE": tFalse, "NULL": tNull, "IS": tIs,
}

type token struct {
	kind tokKind
	pos  int    // byte offset in the expression, for error messages
	text string // identifier name, decoded string, or number image
}

func (t token) describe() string {
	switch t.kind {
	case tIdent:
		return "identifier " + t.text
	case tString:
		return "string '" + t.text + "'"
	case tDecimal, tFloat:
		return "number " + t.text
	}
	return tokNames[t.kind]
}

// SyntaxError is a compile error with its position in the expression.
type SyntaxError struct {
	Expr string
	Pos  int // byte offset
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid SQL92 expression %q: %s at position %d", e.Expr, e.Msg, e.Pos+1)
}

// lex splits an expression into tokens (Java's SelectorParserTokenManager):
// blanks, -- line comments and /* */ block comments separate tokens.
func lex(src string) ([]token, error) {
	var toks []token
	fail := func(pos int, format string, args ...any) ([]token, error) {
		return nil, &SyntaxError{Expr: src, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			if nl := strings.IndexAny(src[i:], "\r\n"); nl >= 0 {
				i += nl + 1
			} else {
				i = len(src)
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return fail(i, "unterminated comment")
			}
			i += 2 + end + 2
		case c == '\'':
			var sb strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return fail(i, "unterminated string literal")
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						sb.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				sb.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{kind: tString, pos: i, text: sb.String()})
			i = j + 1
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			tok, n, err := lexNumber(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i += n
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			word := src[i:j]
			if k, ok := keywords[strings.ToUpper(word)]; ok {
				toks = append(toks, token{kind: k, pos: i, text: word})
			} else {
				toks = append(toks, token{kind: tIdent, pos: i, text: word})
			}
			i = j
		default:
			kind, n := tEOF, 1
			switch c {
			case '=':
				kind = tEq
			case '<':
				kind = tLt
				if i+1 < len(src) && src[i+1] == '=' {
					kind, n = tLe, 2
				} else if i+1 < len(src) && src[i+1] == '>' {
					kind, n = tNe, 2
				}
			case '>':
				kind = tGt
				if i+1 < len(src) && src[i+1] == '=' {
					kind, n = tGe, 2
				}
			case '(':
				kind = tLParen
			case ')':
				kind = tRParen
			case ',':
				kind = tComma
			case '+':
				kind = tPlus
			case '-':
				kind = tMinus
			}
			if kind == tEOF {
				if c == '!' && i+1 < len(src) && src[i+1] == '=' {
					return fail(i, "unknown operator '!=' (use '<>')")
				}
				return fail(i, "unexpected character %q", rune(c))
			}
			toks = append(toks, token{kind: kind, pos: i, text: src[i : i+n]})
			i += n
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

// lexNumber reads DECIMAL_LITERAL ("0" | [1-9][0-9]* [lL]) or
// FLOATING_POINT_LITERAL (digits "." digits? exp? | "." digits exp? | digits exp).
func lexNumber(src string, i int) (token, int, error) {
	j := i
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	float := false
	if j < len(src) && src[j] == '.' {
		float = true
		j++
		for j < len(src) && isDigit(src[j]) {
			j++
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < len(src) && isDigit(src[k]) {
			for k < len(src) && isDigit(src[k]) {
				k++
			}
			float = true
			j = k
		}
	}
	if float {
		return token{kind: tFloat, pos: i, text: src[i:j]}, j - i, nil
	}
	if src[i] == '0' && j-i > 1 {
		return token{}, 0, &SyntaxError{Expr: src, Pos: i, Msg: "integer literal with a leading zero"}
	}
	if j < len(src) && (src[j] == 'l' || src[j] == 'L') {
		j++
	}
	if j < len(src) && isIdentPart(src[j]) {
		return token{}, 0, &SyntaxError{Expr: src, Pos: i, Msg: "malformed number"}
	}
	return token{kind: tDecimal, pos: i, text: src[i:j]}, j - i, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) }
