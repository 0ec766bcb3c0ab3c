package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"reflect"
	"testing"
)

func sample() *Message {
	return &Message{
		Topic:                     "TopicTest",
		QueueID:                   3,
		Flag:                      7,
		Body:                      []byte("hello, world"),
		Properties:                "TAGS\x01TagA\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01ABC",
		SysFlag:                   SysFlagTranCommit,
		BornTimestamp:             1700000000123,
		BornHost:                  netip.MustParseAddrPort("192.168.1.2:50000"),
		StoreHost:                 netip.MustParseAddrPort("10.0.0.1:10911"),
		ReconsumeTimes:            2,
		PreparedTransactionOffset: 4096,
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := sample()
	rec := Encode(nil, m, 42, 1<<33, 1700000000999)
	if len(rec) != EncodedSize(m) {
		t.Fatalf("len %d, EncodedSize %d", len(rec), EncodedSize(m))
	}
	if want := 91 + len(m.Body) + len(m.Topic) + len(m.Properties); len(rec) != want {
		t.Fatalf("IPv4 record size %d, want %d", len(rec), want)
	}
	if RecordMagic(rec) != MagicMessage || binary.BigEndian.Uint32(rec[4:]) != 0xDAA320A7 {
		t.Fatalf("magic %x", binary.BigEndian.Uint32(rec[4:]))
	}
	if got := binary.BigEndian.Uint32(rec[8:]); got != crc32.ChecksumIEEE(m.Body)&0x7FFFFFFF {
		t.Fatalf("crc %x", got)
	}
	e, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := *m
	if !reflect.DeepEqual(e.Message, want) {
		t.Fatalf("decoded %+v\nwant %+v", e.Message, want)
	}
	if e.QueueOffset != 42 || e.CommitLogOffset != 1<<33 || e.StoreTimestamp != 1700000000999 || int(e.StoreSize) != len(rec) {
		t.Fatalf("ext fields %+v", e)
	}
	if RecordTopic(rec) != m.Topic || RecordQueueID(rec) != 3 || RecordQueueOffset(rec) != 42 ||
		RecordPhysicalOffset(rec) != 1<<33 || RecordStoreTimestamp(rec) != 1700000000999 ||
		RecordProperties(rec) != m.Properties || !bytes.Equal(RecordBody(rec), m.Body) ||
		RecordReconsumeTimes(rec) != 2 || RecordStoreHost(rec) != m.StoreHost || RecordFlag(rec) != 7 {
		t.Fatal("accessor mismatch")
	}
	if _, err := CheckRecord(rec, true); err != nil {
		t.Fatal(err)
	}
	PatchRecord(rec, 9, 10, 11)
	if RecordQueueOffset(rec) != 9 || RecordPhysicalOffset(rec) != 10 || RecordStoreTimestamp(rec) != 11 {
		t.Fatal("patch")
	}
}

func TestEncodeIPv6(t *testing.T) {
	m := sample()
	m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:1234")
	m.StoreHost = netip.MustParseAddrPort("[::ffff:10.0.0.1]:10911") // mapped: stored as IPv4
	rec := Encode(nil, m, 1, 2, 3)
	if want := 91 + 12 + len(m.Body) + len(m.Topic) + len(m.Properties); len(rec) != want {
		t.Fatalf("size %d want %d", len(rec), want)
	}
	e, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if e.SysFlag&SysFlagBornHostV6 == 0 || e.SysFlag&SysFlagStoreHostV6 != 0 {
		t.Fatalf("sysflag %x", e.SysFlag)
	}
	if e.BornHost != m.BornHost || e.StoreHost != netip.MustParseAddrPort("10.0.0.1:10911") || e.StoreTimestamp != 3 {
		t.Fatalf("hosts %v %v ts %d", e.BornHost, e.StoreHost, e.StoreTimestamp)
	}
	m.StoreHost = netip.MustParseAddrPort("[fe80::2]:1")
	rec = Encode(nil, m, 1, 2, 3)
	if RecordStoreTimestamp(rec) != 3 || RecordStoreHost(rec) != m.StoreHost {
		t.Fatal("v6 store host")
	}
	if len(OffsetMsgID(m.StoreHost, 5)) != 56 {
		t.Fatal("v6 msg id length")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	rec := Encode(nil, sample(), 0, 0, 0)
	cases := map[string][]byte{
		"short":     rec[:7],
		"truncated": rec[:len(rec)-1],
		"trailing":  append(append([]byte(nil), rec...), 0),
	}
	bad := append([]byte(nil), rec...)
	bad[5] ^= 0xFF
	cases["magic"] = bad
	bad = append([]byte(nil), rec...)
	binary.BigEndian.PutUint32(bad, uint32(len(rec)+1))
	cases["size"] = append(bad, 0)
	for name, b := range cases {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded garbage", name)
		}
	}
	bad = append([]byte(nil), rec...)
	bad[len(bad)-len(sample().Properties)-4-len(sample().Topic)] ^= 1 // last body byte
	if _, err := CheckRecord(bad, true); !errors.Is(err, ErrBodyCRC) {
		t.Fatalf("crc check: %v", err)
	}
	blank := make([]byte, 16)
	PutBlankRecord(blank, 16)
	if n, err := CheckRecord(blank, true); !errors.Is(err, ErrBlankRecord) || n != 16 {
		t.Fatalf("blank: %d %v", n, err)
	}
}

func TestProperties(t *testing.T) {
	for _, p := range []string{"A\x011\x02B\x012", "A\x011\x02B\x012\x02", "\x02A\x011\x02junk\x02\x01x\x02B\x012\x02"} {
		if Property(p, "A") != "1" || Property(p, "B") != "2" || Property(p, "C") != "" {
			t.Errorf("Property(%q)", p)
		}
		if m := ParseProperties(p); !reflect.DeepEqual(m, map[string]string{"A": "1", "B": "2"}) {
			t.Errorf("ParseProperties(%q) = %v", p, m)
		}
		if string(PropertyBytes([]byte(p), "B")) != "2" {
			t.Errorf("PropertyBytes(%q)", p)
		}
	}
	if Property("K\x01a\x01b", "K") != "a\x01b" {
		t.Error("value with \\x01")
	}
	p := AppendProperty("A\x011\x02", "B", "2")
	if p != "A\x011\x02B\x012" {
		t.Errorf("append %q", p)
	}
	p = AppendProperty(p, "A", "3")
	if Property(p, "A") != "3" || Property(p, "B") != "2" {
		t.Errorf("replace %q", p)
	}
	if q := RemoveProperty(p, "A"); q != "B\x012" {
		t.Errorf("remove %q", q)
	}
	if f := FormatProperties(map[string]string{"B": "2", "A": "1", "E": ""}); f != "A\x011\x02B\x012" {
		t.Errorf("format %q", f)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Property(p, "B") }); n != 0 {
		t.Errorf("Property allocates %v", n)
	}
}

func TestTagsHashCode(t *testing.T) {
	for s, want := range map[string]int64{
		"TagA": 2598919, "": 0, "hello world long tag": 1557810642, "标签": 857175, "😀a": 54959966,
		"polygenelubricants": -2147483648,
	} {
		if got := TagsHashCode(s); got != want {
			t.Errorf("TagsHashCode(%q) = %d, want %d", s, got, want)
		}
		if got := TagsHashCodeBytes([]byte(s)); got != want {
			t.Errorf("TagsHashCodeBytes(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestOffsetMsgID(t *testing.T) {
	host := netip.MustParseAddrPort("127.0.0.1:20911")
	id := OffsetMsgID(host, 1000)
	if id != "7F000001000051AF00000000000003E8" {
		t.Fatalf("id %s", id)
	}
	h, off, err := ParseOffsetMsgID(id)
	if err != nil || h != host || off != 1000 {
		t.Fatalf("parse: %v %d %v", h, off, err)
	}
	v6 := netip.MustParseAddrPort("[2001:db8::5]:10911")
	h, off, err = ParseOffsetMsgID(OffsetMsgID(v6, 1<<40))
	if err != nil || h != v6 || off != 1<<40 {
		t.Fatalf("v6 parse: %v %d %v", h, off, err)
	}
	for _, bad := range []string{"", "7F00", "ZZ000001000051AF00000000000003E8", "7F000001FFFFFFFF00000000000003E8", "7F000001000051AF80000000000003E8"} {
		if _, _, err := ParseOffsetMsgID(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	var body []byte
	body = AppendBatchMessage(body, 1, []byte("one"), "TAGS\x01a")
	body = AppendBatchMessage(body, 2, nil, "")
	body = AppendBatchMessage(body, 3, []byte("three"), "KEYS\x01k\x02")
	var got []string
	err := DecodeBatch(body, func(flag int32, b []byte, props string) error {
		got = append(got, string(rune('0'+flag))+string(b)+props)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1oneTAGS\x01a", "2", "3threeKEYS\x01k\x02"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
	nop := func(int32, []byte, string) error { return nil }
	if DecodeBatch(nil, nop) == nil || DecodeBatch(body[:len(body)-1], nop) == nil {
		t.Fatal("accepted truncated batch")
	}
	bad := append([]byte(nil), body...)
	binary.BigEndian.PutUint32(bad, 1000)
	if DecodeBatch(bad, nop) == nil {
		t.Fatal("accepted wrong total size")
	}
}

func TestSplitRecords(t *testing.T) {
	var buf []byte
	for i := 0; i < 3; i++ {
		buf = Encode(buf, sample(), int64(i), 0, 0)
	}
	n := 0
	if err := SplitRecords(buf, func(rec []byte) error {
		if RecordQueueOffset(rec) != int64(n) {
			t.Errorf("record %d offset %d", n, RecordQueueOffset(rec))
		}
		n++
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("split %d %v", n, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(nil, sample(), 1, 2, 3))
	m := sample()
	m.BornHost = netip.MustParseAddrPort("[::1]:1")
	f.Add(Encode(nil, m, 1, 2, 3))
	f.Add([]byte{0, 0, 0, 8, 0xCB, 0xD4, 0x31, 0x94})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		_, _ = CheckRecord(b, true)
		_ = RecordTopic(b)
		_ = RecordStoreTimestamp(b)
		_ = RecordStoreHost(b)
		_ = RecordProperties(b)
		_ = RecordReconsumeTimes(b)
		if err != nil {
			return
		}
		// A decodable record re-encodes to a record that decodes to the same
		// message (ports are 4 bytes on disk but 2 in netip, so bytes may differ).
		re := Encode(nil, &e.Message, e.QueueOffset, e.CommitLogOffset, e.StoreTimestamp)
		e2, err := Decode(re)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		e2.BodyCRC, e2.SysFlag, e.SysFlag, e2.StoreSize = e.BodyCRC, 0, 0, e.StoreSize
		unmap := func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) }
		e.BornHost, e.StoreHost = unmap(e.BornHost), unmap(e.StoreHost)
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", e, e2)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatchMessage(AppendBatchMessage(nil, 1, []byte("x"), "A\x01b"), 0, nil, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = DecodeBatch(b, func(flag int32, body []byte, props string) error {
			total += 22 + len(body) + len(props)
			return nil
		})
		if total > len(b) {
			t.Fatalf("decoded %d bytes from %d", total, len(b))
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	m := sample()
	m.Body = make([]byte, 128)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(EncodedSize(m)))
	for b.Loop() {
		buf = Encode(buf[:0], m, 1, 2, 3)
	}
}

func BenchmarkDecode(b *testing.B) {
	m := sample()
	m.Body = make([]byte, 128)
	rec := Encode(nil, m, 1, 2, 3)
	var e Ext
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if err := DecodeInto(rec, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPropertyBytesMatchesProperty: the byte-slice lookup agrees with the
// string one on well-formed, malformed and repeated pieces.
func TestPropertyBytesMatchesProperty(t *testing.T) {
	for _, props := range []string{
		"", "KEYS\x01a b\x02UNIQ_KEY\x01u1\x02", "KEYS\x01a\x02KEYS\x01b", "KEYS\x01\x02TAGS\x01t",
		"\x01x\x02KEYS\x01k", "KEYS", "KEYSX\x01no\x02KEY\x01no", "TAGS\x01t\x02\x02\x02KEYS\x01k\x02",
	} {
		for _, key := range []string{"KEYS", "UNIQ_KEY", "TAGS", "KEY"} {
			if got, want := string(PropertyBytes([]byte(props), key)), Property(props, key); got != want {
				t.Errorf("PropertyBytes(%q, %q) = %q, Property says %q", props, key, got, want)
			}
		}
	}
}

func BenchmarkPropertyBytes(b *testing.B) {
	props := []byte("KEYS\x01order-1234 customer-77\x02UNIQ_KEY\x017F0000010F2C18B4AAC27A5B3C9C0001\x02TAGS\x01TagA\x02WAIT\x01true\x02")
	for b.Loop() {
		if len(PropertyBytes(props, PropertyUniqKey)) == 0 || len(PropertyBytes(props, PropertyKeys)) == 0 {
			b.Fatal("not found")
		}
	}
}
