package admin

import "testing"

// TestParseFastjson reads what RocketMQ's fastjson writes for a ConsumeStats:
// MessageQueue objects as map keys, bare integer keys, escapes.
func TestParseFastjson(t *testing.T) {
	in := `{"consumeTps":12.5,"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"brokerOffset":10,"consumerOffset":7,"lastTimestamp":1700000000000},` +
		`{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"brokerOffset":3,"consumerOffset":3,"lastTimestamp":0}},"addrs":{0:"a\"b",1:"c\u0041"},"ok":true,"none":null,"list":[1,-2.5e3]}`
	v, err := ParseJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("consumeTps").Float() != 12.5 || !v.Get("ok").Bool() || v.Get("none").Kind != 'z' {
		t.Fatalf("scalars: %+v", v)
	}
	ot := v.Get("offsetTable").Pairs
	if len(ot) != 2 || queueOf(ot[0].Key) != (MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 1}) || ot[0].Val.Get("consumerOffset").Int() != 7 {
		t.Fatalf("offsetTable: %+v", ot)
	}
	addrs := v.Get("addrs").Pairs
	if addrs[0].Key.String() != "0" || addrs[0].Val.String() != `a"b` || addrs[1].Val.String() != "cA" {
		t.Fatalf("addrs: %+v", addrs)
	}
	if l := v.Get("list").Arr; len(l) != 2 || l[1].Float() != -2500 {
		t.Fatalf("list: %+v", l)
	}
	for _, bad := range []string{`{`, `{"a":}`, `{"a" 1}`, `[1,`, `{"a":1}x`, `"abc`} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
