package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// sendHeader is a realistic SEND_MESSAGE request: the Go client's 14 ext
// fields, properties with \u0001/\u0002, a 1 KiB body.
func sendHeader() *Command {
	ext := map[string]string{
		"producerGroup":         "ProducerGroupName",
		"topic":                 "TopicTest",
		"defaultTopic":          "TBW102",
		"defaultTopicQueueNums": "4",
		"queueId":               "3",
		"sysFlag":               "0",
		"bornTimestamp":         "1732560000123",
		"flag":                  "0",
		"properties":            "UNIQ_KEY\x01C0A8010B00002A9F0000000000000001\x02WAIT\x01true\x02TAGS\x01TagA\x02KEYS\x01order-42\x02",
		"reconsumeTimes":        "0",
		"unitMode":              "false",
		"maxReconsumeTimes":     "16",
		"batch":                 "false",
		"bname":                 "broker-a",
	}
	c := NewRequest(SendMessage, ext, bytes.Repeat([]byte("0123456789abcdef"), 64))
	c.Opaque = 12345
	return c
}

func mustEncode(t testing.TB, c *Command) []byte {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalCommands(t *testing.T, want, got *Command) {
	t.Helper()
	w, g := *want, *got
	// Compared as maps: a repeated key counts once, order does not count.
	w.ExtFields, g.ExtFields = FieldsOf(w.ExtFields.Map()), FieldsOf(g.ExtFields.Map())
	if len(w.Body) == 0 {
		w.Body = nil
	}
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("decoded command differs\nwant %+v\n got %+v", w, g)
	}
}

func TestRoundTrip(t *testing.T) {
	cmds := map[string]*Command{
		"send":     sendHeader(),
		"empty":    {Code: 0},
		"response": {Code: TopicNotExist, Language: LangJava, Version: 409, Opaque: -7, Flag: FlagResponse, Remark: "topic \"x\" not\nexist \\ \u00e9\u4e2d\U0001F600"},
		"oneway":   {Code: NotifyConsumerIdsChanged, Language: LanguageCode(200), Flag: FlagOneway, ExtFields: FieldsOf(map[string]string{"consumerGroup": "g", "": "empty key", "k": ""})},
		"body":     {Code: PullMessage, Body: []byte{0, 1, 2, 3}},
	}
	for name, c := range cmds {
		for _, st := range []SerializeType{JSON, RocketMQ} {
			t.Run(name+"/"+st.String(), func(t *testing.T) {
				c := *c
				c.SerializeType = st
				frame := mustEncode(t, &c)
				if got := SerializeType(frame[4]); got != st {
					t.Fatalf("serialize type byte %d, want %d", got, st)
				}
				if int(binary.BigEndian.Uint32(frame)) != len(frame)-4 {
					t.Fatalf("length word %d for %d bytes", binary.BigEndian.Uint32(frame), len(frame))
				}
				got, err := Decode(frame)
				if err != nil {
					t.Fatal(err)
				}
				equalCommands(t, &c, got)
				// The same frame read from a stream.
				got, err = ReadCommand(bufio.NewReader(bytes.NewReader(frame)), 0)
				if err != nil {
					t.Fatal(err)
				}
				equalCommands(t, &c, got)
			})
		}
	}
}

// TestJSONHeaderIsWhatTheGoClientParses checks the encoder's output with a
// standard JSON decoder into the Go client's shape: compact, every ext value a
// string, control characters escaped.
func TestJSONHeaderIsWhatTheGoClientParses(t *testing.T) {
	c := sendHeader()
	frame := mustEncode(t, c)
	hl := binary.BigEndian.Uint32(frame[4:]) & MaxHeaderLen
	header := frame[8 : 8+hl]
	var h struct {
		Code      int16             `json:"code"`
		Language  string            `json:"language"`
		Version   int16             `json:"version"`
		Opaque    int32             `json:"opaque"`
		Flag      int32             `json:"flag"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatalf("%v in %s", err, header)
	}
	if h.Code != c.Code || h.Language != "GO" || h.Version != Version || h.Opaque != c.Opaque || !reflect.DeepEqual(h.ExtFields, c.ExtFields.Map()) {
		t.Fatalf("got %+v", h)
	}
	if bytes.ContainsAny(header, "\x01\x02\n ") {
		t.Fatalf("header not compact or control characters not escaped: %q", header)
	}
	if !bytes.Contains(header, []byte(`TagA\u0002`)) {
		t.Fatalf("properties not escaped as \\u0002: %s", header)
	}
}

func jsonFrame(header string, body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
	return append(append(b, header...), body...)
}

func TestJSONHeaderLenient(t *testing.T) {
	cases := []struct {
		header string
		want   Command
	}{
		{ // scalars of every type as ext values; null means absent
			`{"code":10,"language":"JAVA","version":373,"opaque":5,"flag":0,"extFields":{"queueId":0,"unitMode":false,"batch":true,"n":null,"f":-1.5e3,"big":1234567890123456789012,"s":"x"}}`,
			Command{Code: 10, Language: LangJava, Version: 373, Opaque: 5, ExtFields: FieldsOf(map[string]string{
				"queueId": "0", "unitMode": "false", "batch": "true", "f": "-1.5e3", "big": "1234567890123456789012", "s": "x"})},
		},
		{ // language as a number, no remark or extFields, unknown members, whitespace
			" {\n \"serializeTypeCurrentRPC\" : \"JSON\", \"code\" : 0, \"language\" : 9, \"x\":{\"a\":[1,{\"b\":null}]},\"opaque\":-2147483648,\"flag\":1}\r\n",
			Command{Code: 0, Language: LangGo, Opaque: -2147483648, Flag: 1},
		},
		{ // quoted integers, integral float, null remark, unknown language name
			`{"code":"105","version":1e2,"opaque":"7","remark":null,"language":"COBOL","extFields":{}}`,
			Command{Code: 105, Version: 100, Opaque: 7, Language: LangOther},
		},
		{ // escapes: \/, \uXXXX with surrogate pair, lone surrogate, control chars
			`{"code":1,"remark":"a\/b\"c\\d\u00e9\ud83d\ude00\ud800x\t","extFields":{"p\u0001":"A\u0001B\u0002","k":{"n":1}}}`,
			Command{Code: 1, Remark: "a/b\"c\\d\u00e9\U0001F600\uFFFDx\t", ExtFields: FieldsOf(map[string]string{"p\x01": "A\x01B\x02", "k": `{"n":1}`})},
		},
		{ // extFields null, empty object
			`{}`, Command{},
		},
		{
			`{"extFields":null,"code":3}`, Command{Code: 3},
		},
	}
	for _, tc := range cases {
		got, err := Decode(jsonFrame(tc.header, ""))
		if err != nil {
			t.Fatalf("%s: %v", tc.header, err)
		}
		equalCommands(t, &tc.want, got)
	}
}

func TestJSONHeaderLargeIntegersKeepPrecision(t *testing.T) {
	got, err := Decode(jsonFrame(`{"code":34,"extFields":{"subVersion":1732560000123456789,"s":"9007199254740993"}}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.ExtInt64("subVersion"); !ok || v != 1732560000123456789 {
		t.Fatalf("subVersion %v %v", v, ok)
	}
	if v, _ := got.ExtInt64("s"); v != 9007199254740993 {
		t.Fatalf("s %v", v)
	}
}

func binaryFrame(header []byte, body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(RocketMQ)<<24|uint32(len(header)))
	return append(append(b, header...), body...)
}

func TestBinaryHeaderLayout(t *testing.T) {
	c := &Command{Code: 310, Language: LangJava, Version: 409, Opaque: 0x01020304, Flag: 2, Remark: "ok",
		ExtFields: FieldsOf(map[string]string{"a": "bc"}), SerializeType: RocketMQ, Body: []byte("xyz")}
	want := []byte{
		0x01, 0x36, 0, 0x01, 0x99, 1, 2, 3, 4, 0, 0, 0, 2,
		0, 0, 0, 2, 'o', 'k',
		0, 0, 0, 9, 0, 1, 'a', 0, 0, 0, 2, 'b', 'c',
	}
	if got := mustEncode(t, c); !bytes.Equal(got, binaryFrame(want, "xyz")) {
		t.Fatalf("got  %x\nwant %x", got, binaryFrame(want, "xyz"))
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := mustEncode(t, sendHeader())
	hdr := func(total, word uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, total)
		return binary.BigEndian.AppendUint32(b, word)
	}
	cases := map[string][]byte{
		"negative length":        hdr(0x80000000, 0),
		"length too small":       hdr(3, 0),
		"oversize":               hdr(16<<20, 0),
		"header beyond frame":    append(hdr(8, 5), 0, 0, 0, 0),
		"bad serialize type":     append(hdr(6, 2<<24|2), '{', '}'),
		"empty JSON header":      jsonFrame("", "body"),
		"bad JSON":               jsonFrame(`{"code":}`, ""),
		"JSON trailing garbage":  jsonFrame(`{"code":1}x`, ""),
		"JSON not an object":     jsonFrame(`[1]`, ""),
		"JSON ext array":         jsonFrame(`{"extFields":[1]}`, ""),
		"JSON code out of range": jsonFrame(`{"code":40000}`, ""),
		"JSON bad escape":        jsonFrame(`{"remark":"\x"}`, ""),
		"JSON bad unicode":       jsonFrame(`{"remark":"\u12G4"}`, ""),
		"JSON unterminated":      jsonFrame(`{"remark":"abc}`, ""),
		"JSON too deep":          jsonFrame(`{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`, ""),
		"binary too short":       binaryFrame(make([]byte, 20), ""),
		"binary remark overrun":  binaryFrame([]byte{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0}, ""),
		"binary ext overrun":     binaryFrame([]byte{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1}, ""),
		"binary negative key":    binaryFrame([]byte{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0xff, 0xff, 0, 0, 0, 0}, ""),
		"binary value overrun":   binaryFrame([]byte{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 'k', 0, 0, 0, 5}, ""),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadCommand(bufio.NewReader(bytes.NewReader(frame)), 0)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("ReadCommand: got %v, want a protocol error", err)
			}
			if len(frame) >= 8 && int(binary.BigEndian.Uint32(frame)) == len(frame)-4 {
				if _, err := Decode(frame); !errors.Is(err, ErrProtocol) {
					t.Fatalf("Decode: got %v, want a protocol error", err)
				}
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 100, len(valid) - 1} {
			_, err := ReadCommand(bufio.NewReader(bytes.NewReader(valid[:n])), 0)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%d bytes: got %v", n, err)
			}
		}
		if _, err := ReadCommand(bufio.NewReader(bytes.NewReader(nil)), 0); err != io.EOF {
			t.Fatalf("empty stream: got %v, want io.EOF", err)
		}
	})
	t.Run("configured limit", func(t *testing.T) {
		if _, err := ReadCommand(bufio.NewReader(bytes.NewReader(valid)), len(valid)); err != nil {
			t.Fatalf("frame at the limit: %v", err)
		}
		if _, err := ReadCommand(bufio.NewReader(bytes.NewReader(valid)), len(valid)-1); !errors.Is(err, ErrProtocol) {
			t.Fatalf("frame over the limit: %v", err)
		}
	})
}

func TestEncodeRejects(t *testing.T) {
	c := &Command{ExtFields: FieldsOf(map[string]string{strings.Repeat("k", 40000): "v"}), SerializeType: RocketMQ}
	if _, err := Encode(c); err == nil {
		t.Fatal("binary key longer than int16 encoded")
	}
	c = &Command{SerializeType: 7}
	if _, err := Encode(c); err == nil {
		t.Fatal("unknown serialize type encoded")
	}
	// A failed append leaves dst as it was.
	dst := []byte("keep")
	dst, err := AppendFrame(dst, c)
	if err == nil || string(dst) != "keep" {
		t.Fatalf("dst %q err %v", dst, err)
	}
}

func TestNames(t *testing.T) {
	if LangGo.String() != "GO" || LanguageCode(99).String() != "99" || RocketMQ.String() != "ROCKETMQ" {
		t.Fatal("language/serialize names")
	}
	if RequestCodeName(SendMessage) != "SEND_MESSAGE" || ResponseCodeName(RequestCodeNotSupported) != "REQUEST_CODE_NOT_SUPPORTED" || RequestCodeName(9999) != "9999" {
		t.Fatal("code names")
	}
	if NewResponse(PullNotFound, "").CodeName() != "PULL_NOT_FOUND" {
		t.Fatal("CodeName")
	}
}
