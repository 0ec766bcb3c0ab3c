package sqlfilter

import (
	"errors"
	"strings"
	"testing"
)

func mustCompile(t testing.TB, src string) *Expr {
	t.Helper()
	e, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return e
}

// TestEvaluate covers RocketMQ's semantics, including the cases of its own
// ExpressionTest (properties are strings, numbers convert, NULL is unknown).
func TestEvaluate(t *testing.T) {
	cases := []struct {
		expr  string
		props Map
		want  Result
	}{
		{"a > 5 AND b = 'x'", Map{"a": "6", "b": "x"}, True},
		{"a > 5 AND b = 'x'", Map{"a": "5", "b": "x"}, False},
		{"a > 5 AND b = 'x'", Map{"a": "6"}, Unknown},
		{"a > 5 AND b = 'x'", Map{"b": "x"}, Unknown},
		{"a > 5 AND b = 'x'", Map{"a": "4"}, False}, // FALSE AND NULL is FALSE
		{"a > 5 OR b = 'x'", Map{"b": "x"}, True},   // NULL OR TRUE is TRUE
		{"a > 3.14", Map{"a": "3.1415"}, True},
		{"a > 3.1E10", Map{"a": "3.1415E10"}, True},
		{"a > b", Map{"a": "10", "b": "20"}, False},
		{"a > b", Map{"a": "20", "b": "10"}, True},
		{"a > b", Map{"a": "x", "b": "10"}, Failed},
		{"a > 5", Map{"a": "5.5"}, Failed}, // Integer.valueOf("5.5") throws
		{"a > 5.0", Map{"a": "5.5"}, True},
		{"a > 5", Map{"a": "abc"}, Failed},
		{"a > 5 OR b = 'x'", Map{"a": "abc", "b": "x"}, Failed}, // Java's exception aborts everything
		{"a > 3000000000", Map{"a": "3000000001"}, True},        // Long literal: Long.valueOf
		{"a > 5", Map{"a": "3000000001"}, Failed},               // Integer literal: out of int range
		{"a = 5", Map{"a": "5"}, True},
		{"a = 5", Map{"a": "+5"}, True},
		{"a = 5", Map{"a": " 5"}, Failed},
		{"a = 'hello'", Map{"a": "hello"}, True},
		{"a = 'hello'", Map{}, Unknown},
		{"'hello' = a", Map{}, False},
		{"NOT ('hello' = a)", Map{}, True},
		{"a <> 'hello'", Map{}, Unknown},
		{"'hello' <> a", Map{}, True},
		{"a <> 'hello'", Map{"a": "world"}, True},
		{"a = TRUE", Map{"a": "true"}, True},
		{"a = TRUE", Map{"a": "TRUE"}, True},
		{"a = FALSE", Map{"a": "yes"}, True}, // Boolean.valueOf("yes") is false
		{"a = TRUE AND b = FALSE", Map{"a": "true", "b": "false"}, True},
		{"5 = TRUE", Map{}, False},
		{"a IS NULL", Map{"abc": "2"}, True},
		{"a IS NULL", Map{"a": "2"}, False},
		{"a IS NOT NULL", Map{"a": "2"}, True},
		{"a IS NOT NULL", Map{}, False},
		{"a is null or a <> 'hello'", Map{}, True},
		{"a is null or a <> 'hello'", Map{"a": "hello"}, False},
		{"a IN ('3', '4', '5')", Map{"a": "3"}, True},
		{"a IN ('3', '4', '5')", Map{"a": "8"}, False},
		{"a IN ('3', '4', '5')", Map{}, Unknown},
		{"a NOT IN ('3', '4', '5')", Map{"a": "8"}, True},
		{"a NOT IN ('3', '4', '5')", Map{"a": "4"}, False},
		{"a BETWEEN 2 AND 10", Map{"a": "2"}, True},
		{"a BETWEEN 2 AND 10", Map{"a": "10"}, True},
		{"a BETWEEN 2 AND 10", Map{"a": "11"}, False},
		{"a NOT BETWEEN 2 AND 10", Map{"a": "1"}, True},
		{"a NOT BETWEEN 2 AND 10", Map{"a": "5"}, False},
		{"a BETWEEN -5 AND -1", Map{"a": "-3"}, True},
		{"a = -1", Map{"a": "-1"}, True},
		{"-a = 1", Map{"a": "-1"}, Unknown}, // negating a string is NULL
		{"TAGS = '''tag'''", Map{"TAGS": "'tag'"}, True},
		{"TRUE", Map{}, True},
		{"FALSE OR NULL", Map{}, Unknown},
		{"NOT NULL", Map{}, Unknown},
		{"a", Map{"a": "true"}, False}, // a property as a condition is never Boolean
		{"NOT a", Map{"a": "x"}, True},
		{"NOT a", Map{}, Unknown},
		{"NOT a = 1", Map{"a": "1"}, False}, // (NOT a) = 1: Boolean vs Integer
		{"a = 1 = TRUE", Map{"a": "1"}, True},
		{"(a > 1) AND ((b < 2) OR c >= 3)", Map{"a": "2", "c": "3"}, True},
		{"a >= 1.5 AND a <= 2L", Map{"a": "2"}, True},
		{"a > .5", Map{"a": "0.6"}, True},
		{"a > 5.", Map{"a": "6"}, True},
		{"a > 0.0", Map{"a": "1"}, True},
		{"a = 1.0", Map{"a": "1"}, True},
		{"a = 1.0", Map{"a": "1.0f"}, True},
		{"a > 1", Map{"a": "NaN"}, Failed}, // Integer.valueOf("NaN") throws
		{"a > 1.0", Map{"a": "NaN"}, True}, // NaN is above everything in Double.compare
		{"a > 1.0", Map{"a": "Infinity"}, True},
		{"a > 1.0", Map{"a": "inf"}, Failed},
		{"a > 1.0", Map{"a": "0x10"}, Failed},
		{"/* c */ a = 'x' -- trailing\n", Map{"a": "x"}, True},
		{"$x_1 = 'y'", Map{"$x_1": "y"}, True},
		{"a = 'é'", Map{"a": "é"}, True},
		{"a=''", Map{"a": ""}, Unknown}, // empty values are missing
	}
	for _, c := range cases {
		e := mustCompile(t, c.expr)
		if got := e.Evaluate(c.props); got != c.want {
			t.Errorf("%q with %v = %v, want %v (tree %s)", c.expr, c.props, got, c.want, e.root)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ expr, msg string }{
		{"", "empty expression"},
		{"a >", "expected a value"},
		{"a > 5 b", "expected end of expression"}, // Java silently ignores the tail
		{"a != 5", "'!=' (use '<>')"},
		{"a = NULL", "use IS NULL"},
		{"NULL = a", "use IS NULL"},
		{"TRUE = 5", "cannot be compared"},
		{"a > 'x'", "cannot be compared"},
		{"a > TRUE", "cannot be compared"},
		{"(a > 1) > 2", "cannot be compared"},
		{"NOT a > 5", "cannot be compared"},
		{"a BETWEEN 10 AND 2", "greater than upper bound"},
		{"a BETWEEN NULL AND 2", "cannot be NULL"},
		{"a BETWEEN 'a' AND 'b'", "cannot be compared"},
		{"5 IN ('a')", "IN needs a property"},
		{"a IN (1, 2)", "expected string literal"},
		{"a IN ()", "expected string literal"},
		{"5", "will not result in a boolean"},
		{"'x'", "will not result in a boolean"},
		{"a AND 5", "will not result in a boolean"},
		{"NOT 5", "will not result in a boolean"},
		{"a = 'x", "unterminated string"},
		{"a = 1 /* x", "unterminated comment"},
		{"a = 007", "leading zero"},
		{"a = 99999999999999999999", "out of the range"},
		{"a < 1e400", "out of the range"},
		{"a.b = 1", "unexpected character"},
		{"a IS 5", "NULL or NOT NULL"},
		{"(a = 1", "expected ')'"},
		{"and = 1", "expected a value"},
		{"a = 1 ;", "unexpected character"},
		{strings.Repeat("(", 300) + "a" + strings.Repeat(")", 300), "nested deeper"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		var se *SyntaxError
		if err == nil || !errors.As(err, &se) {
			t.Errorf("Compile(%q) = %v, want a SyntaxError", c.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Compile(%q) error %q, want it to mention %q", c.expr, err, c.msg)
		}
	}
}

func TestKeywordsCaseInsensitive(t *testing.T) {
	e := mustCompile(t, "a between 1 and 3 And b iS nOt NuLl oR c in ('x')")
	if !e.Matches(Map{"a": "2", "b": "y"}) || !e.Matches(Map{"c": "x"}) || e.Matches(Map{"a": "2"}) {
		t.Fatalf("keyword case handling wrong: %s", e.root)
	}
}

func TestPropsLookup(t *testing.T) {
	props := "a\x016\x02b\x01x\x02KEYS\x01k1 k2\x02empty\x01\x02a\x017"
	e := mustCompile(t, "a > 6 AND b = 'x' AND empty IS NULL AND KEYS = 'k1 k2'")
	if !e.MatchProps(props) { // the repeated key keeps its last value, 7
		t.Fatal("MatchProps = false, want true")
	}
	if got := e.Evaluate(Props(props)); got != True {
		t.Fatalf("Evaluate(Props) = %v", got)
	}
}

func TestMatchPropsDoesNotAllocate(t *testing.T) {
	e := mustCompile(t, "(a > 5 AND b = 'x') OR c IN ('p', 'q') OR d BETWEEN 1.5 AND 9 OR e IS NULL")
	props := "a\x016\x02b\x01y\x02c\x01z\x02d\x0110\x02e\x01v\x02UNIQ_KEY\x01ABCDEF0123456789"
	if n := testing.AllocsPerRun(100, func() { e.MatchProps(props) }); n != 0 {
		t.Fatalf("MatchProps allocates %v times per call", n)
	}
}

func BenchmarkMatchProps(b *testing.B) {
	e := mustCompile(b, "a > 5 AND b = 'x' AND c IN ('p', 'q')")
	props := "TAGS\x01TagA\x02KEYS\x01order-1\x02a\x0117\x02b\x01x\x02c\x01q\x02UNIQ_KEY\x01ABCDEF0123456789ABCDEF"
	b.ReportAllocs()
	for b.Loop() {
		if !e.MatchProps(props) {
			b.Fatal("no match")
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"a > 5 AND b = 'x'", "a BETWEEN 1 AND 2", "a NOT IN ('x', 'y''z')", "a IS NOT NULL OR NOT (b <= -1.5e3)",
		"TRUE", "(a)", "-+-a = 1L", "/* */ a -- c\n = .5", "a = 1 = TRUE", "NOT NOT a",
	} {
		f.Add(s, "a\x015\x02b\x01x")
	}
	f.Fuzz(func(t *testing.T, src, props string) {
		e, err := Compile(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(src) {
				t.Fatalf("Compile(%q): bad error %v", src, err)
			}
			return
		}
		// The canonical form of a compiled expression compiles to the same tree.
		canon := e.root.String()
		e2, err := Compile(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not compile: %v", canon, src, err)
		}
		if got := e2.root.String(); got != canon {
			t.Fatalf("canonical form unstable: %q -> %q", canon, got)
		}
		r1, r2 := e.Evaluate(Props(props)), e2.Evaluate(Props(props))
		if r1 != r2 || e.MatchProps(props) != (r1 == True) {
			t.Fatalf("%q on %q: %v vs %v", src, props, r1, r2)
		}
	})
}
