package remoting

import (
	"reflect"
	"testing"
)

func TestFieldsLastValueCounts(t *testing.T) {
	f := Fields{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"}}
	if v, ok := f.Get("a"); !ok || v != "3" {
		t.Fatalf("Get(a) = %q %v, want the last value", v, ok)
	}
	if _, ok := f.Get("c"); ok || f.Has("c") {
		t.Fatal("missing key reported present")
	}
	if m := f.Map(); len(m) != 2 || m["a"] != "3" {
		t.Fatalf("Map = %v", m)
	}
	f.Set("a", "4")
	if want := (Fields{{Key: "b", Value: "2"}, {Key: "a", Value: "4"}}); !reflect.DeepEqual(f, want) {
		t.Fatalf("after Set: %v, want %v", f, want)
	}
	f.Del("b")
	if want := (Fields{{Key: "a", Value: "4"}}); !reflect.DeepEqual(f, want) {
		t.Fatalf("after Del: %v, want %v", f, want)
	}
	c := f.Clone(1)
	c.Set("z", "9")
	if len(f) != 1 || len(c) != 2 {
		t.Fatalf("Clone shares storage: %v %v", f, c)
	}
	if FieldsOf(nil) != nil {
		t.Fatal("FieldsOf(nil) not nil")
	}
	if got := FieldsOf(map[string]string{"y": "1", "x": "2"}); got[0].Key != "x" || got[1].Key != "y" {
		t.Fatalf("FieldsOf not in key order: %v", got)
	}
}

// A key named twice in one header: the last value counts, for both header
// encodings, as it does for RocketMQ's map.
func TestDecodeRepeatedExtKey(t *testing.T) {
	c, err := Decode(jsonFrame(`{"code":10,"extFields":{"topic":"A","queueId":"1","topic":"B"}}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ext("topic") != "B" || c.Ext("queueId") != "1" {
		t.Fatalf("JSON: topic %q queueId %q", c.Ext("topic"), c.Ext("queueId"))
	}
	bin := &Command{Code: 10, SerializeType: RocketMQ, ExtFields: Fields{{Key: "topic", Value: "A"}, {Key: "topic", Value: "B"}}}
	c, err = Decode(mustEncode(t, bin))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ext("topic") != "B" {
		t.Fatalf("ROCKETMQ: topic %q", c.Ext("topic"))
	}
}
