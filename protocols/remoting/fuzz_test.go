package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/metrics"
	"testing"
)

const fuzzLimit = 64 << 10

// seedFrames are the checked-in corpus of FuzzDecode (testdata/fuzz/FuzzDecode,
// regenerated with REMOTING_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds).
func seedFrames(t testing.TB) map[string][]byte {
	send := sendHeader()
	sendBin := *send
	sendBin.SerializeType = RocketMQ
	resp := &Command{Code: PullNotFound, Flag: FlagResponse, Opaque: 9, Remark: "no new message", Language: LangJava, Version: 409,
		ExtFields: FieldsOf(map[string]string{"nextBeginOffset": "12", "minOffset": "0", "maxOffset": "12", "suggestWhichBrokerId": "0"})}
	respBin := *resp
	respBin.SerializeType = RocketMQ
	two := append(mustEncode(t, &Command{Code: HeartBeat, Body: []byte(`{"clientID":"c"}`)}), mustEncode(t, &respBin)...)
	word := func(total, hw uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, total), hw)
	}
	return map[string][]byte{
		"json-send":           mustEncode(t, send),
		"binary-send":         mustEncode(t, &sendBin),
		"json-response":       mustEncode(t, resp),
		"binary-response":     mustEncode(t, &respBin),
		"two-frames":          two,
		"json-lenient":        jsonFrame(`{"code":"10","language":9,"version":1e2,"opaque":3,"flag":0,"x":[{"y":null}],"extFields":{"queueId":0,"unitMode":false,"n":null,"s":"A\u0001\ud83d\ude00"}}`, "body"),
		"json-empty":          jsonFrame(`{}`, ""),
		"bad-oversize":        word(0x7fffffff, 0),
		"bad-negative":        word(0xffffffff, 0),
		"bad-header-overrun":  append(word(8, 1000), 0, 0, 0, 0),
		"bad-serialize-type":  append(word(6, 3<<24|2), '{', '}'),
		"bad-json":            jsonFrame(`{"code":10,"extFields":{"a":}}`, ""),
		"bad-binary-ext":      binaryFrame([]byte{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 'k', 0, 0, 0, 5}, ""),
		"bad-truncated":       mustEncode(t, send)[:50],
		"bad-garbage":         []byte("GET / HTTP/1.1\r\n\r\n"),
		"bad-deep-json":       jsonFrame(`{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, ""),
		"bad-unterminated":    jsonFrame(`{"remark":"\u00`, ""),
		"bad-binary-negative": binaryFrame([]byte{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, ""),
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("REMOTING_WRITE_SEEDS") == "" {
		t.Skip("set REMOTING_WRITE_SEEDS=1 to regenerate testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedFrames(t) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the stream decoder and the one-frame
// decoder. Neither may panic; a frame declared larger than the limit must be
// rejected without allocating it; whatever decodes must re-encode and decode to
// the same command.
func FuzzDecode(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 4 {
			if declared := int32(binary.BigEndian.Uint32(data)); declared > fuzzLimit-4 {
				checkOversize(t, data, declared)
				return
			}
		}
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		for {
			cmd, err := ReadCommand(br, fuzzLimit)
			if err != nil {
				break
			}
			checkReencode(t, cmd)
		}
		if cmd, err := Decode(data); err == nil {
			checkReencode(t, cmd)
		}
	})
}

// checkOversize checks that a frame declared past the limit is rejected
// without allocating its size. Other goroutines (the fuzz worker's, earlier
// tests') allocate too, so it takes four measurements in a row over the limit.
func checkOversize(t *testing.T, data []byte, declared int32) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	var err error
	measure := func() uint64 {
		metrics.Read(sample) // reads the counter without stopping the world
		before := sample[0].Value.Uint64()
		_, err = ReadCommand(bufio.NewReaderSize(bytes.NewReader(data), 4096), fuzzLimit)
		metrics.Read(sample)
		return sample[0].Value.Uint64() - before
	}
	least := measure()
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("frame declared %d bytes accepted past the %d limit: %v", declared, fuzzLimit, err)
	}
	for i := 0; i < 3 && least > fuzzLimit; i++ {
		least = min(least, measure())
	}
	if least > fuzzLimit {
		t.Fatalf("rejecting an oversize frame allocated at least %d bytes", least)
	}
}

func checkReencode(t *testing.T, cmd *Command) {
	frame, err := Encode(cmd)
	if err != nil {
		t.Fatalf("decoded command does not encode: %v (%+v)", err, cmd)
	}
	again, err := Decode(frame)
	if err != nil {
		t.Fatalf("re-encoded frame does not decode: %v\n%q", err, frame)
	}
	a, b := *cmd, *again
	if len(a.ExtFields) == 0 {
		a.ExtFields = nil
	}
	if len(b.ExtFields) == 0 {
		b.ExtFields = nil
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip changed the command\nbefore %+v\nafter  %+v", a, b)
	}
}
