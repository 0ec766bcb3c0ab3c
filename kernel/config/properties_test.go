package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	in := "# comment\n" +
		"  ! another comment \\\n" +
		"a=1\n" +
		"b : two words  \n" +
		"c three\n" +
		"\n" +
		"   \t\n" +
		"d=one, \\\n" +
		"     two, \\\n" +
		"\tthree\n" +
		"e\\=x=y\n" +
		"f=tab\\there\\nnl\n" +
		"g=caf\\u00e9 \\uD83D\\uDE00\n" +
		"h=中文值\n" +
		"i=keep\\ \n" +
		"j=\r\n" +
		"k=crlf\r\n" +
		"l=cr\r" +
		"m\n" +
		"n=\\q\\\\\n" +
		"o=1073741824 \t\n" +
		"last=eof\\"
	got, err := ParseProperties([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Property{
		{"a", "1", 3},
		{"b", "two words", 4},
		{"c", "three", 5},
		{"d", "one, two, three", 8},
		{"e=x", "y", 11},
		{"f", "tab\there\nnl", 12},
		{"g", "café 😀", 13},
		{"h", "中文值", 14},
		{"i", "keep ", 15},
		{"j", "", 16},
		{"k", "crlf", 17},
		{"l", "cr", 18},
		{"m", "", 19},
		{"n", "q\\", 20},
		{"o", "1073741824", 21},
		{"last", "eof", 22},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w Property
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("entry %d = %#v, want %#v", i, g, w)
			}
		}
	}
}

func TestParsePropertiesLatin1(t *testing.T) {
	// Not valid UTF-8: read as ISO-8859-1, as Java's Properties.load(InputStream).
	got, err := ParseProperties([]byte("# caf\xe9\nname=caf\xe9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Value != "café" {
		t.Fatalf("got %#v", got)
	}
}

func TestParsePropertiesMalformedUnicode(t *testing.T) {
	for _, in := range []string{"a=\\u12\n", "x=1\nb=\\u12G4\n"} {
		_, err := ParseProperties([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "malformed \\uxxxx") {
			t.Errorf("%q: err = %v, want malformed \\uxxxx", in, err)
		}
	}
	_, err := ParseProperties([]byte("x=1\nb=\\u12G4\n"))
	if !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want line 2", err)
	}
}

func FuzzParseProperties(f *testing.F) {
	f.Add([]byte("a=1\nb : 2\\\n  3\n# c\n!d\ne\\u0041 f\n"))
	f.Add([]byte("k=\\uD83D\\uDE00\\\r\n\tv \n"))
	f.Add([]byte("\xff\xfe=\\"))
	f.Fuzz(func(t *testing.T, data []byte) {
		props, err := ParseProperties(data)
		if err != nil {
			return
		}
		for _, p := range props {
			if p.Line < 1 {
				t.Fatalf("line %d < 1", p.Line)
			}
			if strings.HasSuffix(p.Value, " ") && !strings.HasSuffix(string(data), "\\ ") && !strings.Contains(string(data), "\\ ") && !strings.Contains(string(data), "\\u") {
				t.Fatalf("value %q keeps an unescaped trailing space", p.Value)
			}
		}
	})
}
