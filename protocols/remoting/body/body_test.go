package body

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestRouteJSONFastjsonStyle(t *testing.T) {
	r := TopicRouteData{
		BrokerDatas: []BrokerData{{BrokerName: "broker-a", Cluster: "DefaultCluster",
			BrokerAddrs: map[int64]string{1: "127.0.0.1:10921", 0: "127.0.0.1:10911"}}},
		QueueDatas: []QueueData{{BrokerName: "broker-a", Perm: 6, ReadQueueNums: 4, WriteQueueNums: 4}},
	}
	got := string(r.AppendJSON(nil, FastjsonKeys))
	want := `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if got != want {
		t.Fatalf("fastjson route\n got %s\nwant %s", got, want)
	}
	std := r.AppendJSON(nil, StandardKeys)
	if !json.Valid(std) {
		t.Fatalf("standard route is not valid JSON: %s", std)
	}
	if !strings.Contains(string(std), `{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}`) {
		t.Fatalf("standard route keys: %s", std)
	}
	for _, data := range [][]byte{[]byte(got), std} {
		back, err := DecodeTopicRouteData(data)
		if err != nil {
			t.Fatal(err)
		}
		r.FilterServerTable = map[string][]string{}
		if !reflect.DeepEqual(*back, r) {
			t.Fatalf("round trip: %+v", back)
		}
	}

	r.OrderTopicConf = "broker-a:4"
	r.FilterServerTable = map[string][]string{"127.0.0.1:10911": {"f1", "f2"}}
	got = string(r.AppendJSON(nil, FastjsonKeys))
	if !strings.Contains(got, `"filterServerTable":{"127.0.0.1:10911":["f1","f2"]},"orderTopicConf":"broker-a:4","queueDatas"`) {
		t.Fatalf("route with order conf: %s", got)
	}
}

func TestEmptyBrokerAddrsPresent(t *testing.T) {
	bd := BrokerData{BrokerName: "b", Cluster: "c"}
	if got := string(bd.AppendJSON(nil, FastjsonKeys)); got != `{"brokerAddrs":{},"brokerName":"b","cluster":"c"}` {
		t.Fatal(got)
	}
}

func TestQuoteBareKeys(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:                           `{"a":1}`,
		`{0:"x:1",12:"y"}`:                  `{"0":"x:1","12":"y"}`,
		`{"m":{0:"a"},"l":[{1:"b"},"c:d"]}`: `{"m":{"0":"a"},"l":[{"1":"b"},"c:d"]}`,
		`{ -1 : "a" }`:                      `{ "-1" : "a" }`,
		`{"s":"{0:\"q\"}"}`:                 `{"s":"{0:\"q\"}"}`,
		`[1,2,{3:4}]`:                       `[1,2,{"3":4}]`,
		`{}`:                                `{}`,
	} {
		if got := string(QuoteBareKeys([]byte(in))); got != want {
			t.Errorf("QuoteBareKeys(%s) = %s, want %s", in, got, want)
		}
	}
	in := []byte(`{"a":[1,2,{"b":"c"}]}`)
	if n := testing.AllocsPerRun(100, func() { QuoteBareKeys(in) }); n != 0 {
		t.Errorf("QuoteBareKeys allocates %v times on standard JSON", n)
	}
}

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       `"plain"`,
		"q\"b\\":      `"q\"b\\"`,
		"a\nb\tc\x01": `"a\nb\tc\u0001"`,
		"ü<>&":        `"ü<>&"`,
		"bad\xffx":    `"bad\ufffdx"`,
	} {
		got := AppendString(nil, in)
		if string(got) != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
}

func TestClusterInfo(t *testing.T) {
	ci := ClusterInfo{
		BrokerAddrTable: map[string]BrokerData{
			"b": {BrokerName: "b", Cluster: "c", BrokerAddrs: map[int64]string{0: "h:2"}},
			"a": {BrokerName: "a", Cluster: "c", BrokerAddrs: map[int64]string{0: "h:1", 1: "h:3"}},
		},
		ClusterAddrTable: map[string][]string{"c": {"a", "b"}},
	}
	got := string(ci.AppendJSON(nil, FastjsonKeys))
	want := `{"brokerAddrTable":{"a":{"brokerAddrs":{0:"h:1",1:"h:3"},"brokerName":"a","cluster":"c"},` +
		`"b":{"brokerAddrs":{0:"h:2"},"brokerName":"b","cluster":"c"}},"clusterAddrTable":{"c":["a","b"]}}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	back, err := DecodeClusterInfo([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*back, ci) {
		t.Fatalf("round trip: %+v", back)
	}
}

// A registration as a Java 4.9.8 broker's fastjson writes it.
const javaRegisterBody = `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"timestamp":1700000000000},` +
	`"topicConfigTable":{"TopicTest":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4},` +
	`"%RETRY%g":{"order":false,"perm":6,"readQueueNums":1,"topicFilterType":"SINGLE_TAG","topicName":"%RETRY%g","topicSysFlag":0,"writeQueueNums":1}}}}`

func TestRegisterBody(t *testing.T) {
	b, err := DecodeRegisterBrokerBody([]byte(javaRegisterBody), false)
	if err != nil {
		t.Fatal(err)
	}
	w := b.TopicConfigSerializeWrapper
	if w.DataVersion != (DataVersion{Counter: 3, Timestamp: 1700000000000}) || len(w.TopicConfigTable) != 2 ||
		w.TopicConfigTable["TopicTest"].WriteQueueNums != 4 || b.FilterServerList == nil {
		t.Fatalf("decoded %+v", b)
	}
	enc, err := b.Encode(false)
	if err != nil {
		t.Fatal(err)
	}
	if string(enc) != `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"timestamp":1700000000000},"topicConfigTable":{`+
		`"%RETRY%g":{"order":false,"perm":6,"readQueueNums":1,"topicFilterType":"SINGLE_TAG","topicName":"%RETRY%g","topicSysFlag":0,"writeQueueNums":1},`+
		`"TopicTest":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}}}}` {
		t.Fatalf("encoded %s", enc)
	}

	comp, err := b.Encode(true)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRegisterBrokerBody(comp, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, b) {
		t.Fatalf("compressed round trip:\n got %+v\nwant %+v", back, b)
	}

	// Old brokers sent the bare wrapper.
	old, err := DecodeRegisterBrokerBody([]byte(`{"dataVersion":{"counter":1,"timestamp":2},"topicConfigTable":{"T":{"topicName":"T","perm":6,"readQueueNums":1,"writeQueueNums":1}}}`), false)
	if err != nil || old.TopicConfigSerializeWrapper.DataVersion.Counter != 1 || len(old.TopicConfigSerializeWrapper.TopicConfigTable) != 1 {
		t.Fatalf("bare wrapper: %+v %v", old, err)
	}
}

func TestRegisterBodyRejects(t *testing.T) {
	for _, in := range []string{
		`not json`,
		`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"U"}}}}`,
		`{"topicConfigSerializeWrapper":{"topicConfigTable":{"":{}}}}`,
		`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"readQueueNums":-1}}}}`,
		`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"perm":"x"}}}}`,
	} {
		if _, err := DecodeRegisterBrokerBody([]byte(in), false); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
	for _, in := range [][]byte{nil, []byte("garbage"), {0x78, 0x9c, 1, 2, 3}} {
		if _, err := DecodeRegisterBrokerBody(in, true); err == nil {
			t.Errorf("compressed %q: accepted", in)
		}
	}
}

func TestSmallBodies(t *testing.T) {
	b, _ := Marshal(&TopicList{TopicList: []string{"a", "b"}})
	if string(b) != `{"topicList":["a","b"]}` {
		t.Fatal(string(b))
	}
	b, _ = Marshal(&KVTable{Table: map[string]string{"k": "<v>"}})
	if string(b) != `{"table":{"k":"<v>"}}` {
		t.Fatal(string(b))
	}
	if PermString(6) != "RW-" || PermString(4) != "R--" || PermString(7) != "RWX" {
		t.Fatal(PermString(6))
	}
}

func BenchmarkRouteAppendJSON(b *testing.B) {
	r := TopicRouteData{
		BrokerDatas: []BrokerData{
			{BrokerName: "broker-a", Cluster: "DefaultCluster", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}},
			{BrokerName: "broker-b", Cluster: "DefaultCluster", BrokerAddrs: map[int64]string{0: "10.0.0.3:10911", 1: "10.0.0.4:10911"}},
		},
		QueueDatas: []QueueData{{BrokerName: "broker-a", Perm: 6, ReadQueueNums: 8, WriteQueueNums: 8}, {BrokerName: "broker-b", Perm: 6, ReadQueueNums: 8, WriteQueueNums: 8}},
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0], FastjsonKeys)
	}
}

func TestTopicConfigText(t *testing.T) {
	tc, err := decodeTopicConfigText(`T 4 8 6 SINGLE_TAG {"+message.type":"NORMAL"}`)
	if err != nil || tc != (TopicConfig{TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 8, Perm: 6, TopicFilterType: SingleTag}) {
		t.Fatalf("%+v %v", tc, err)
	}
	for _, bad := range []string{"", "T 4 8 6", "T x 8 6 SINGLE_TAG", "T 4 8 6 OTHER", " 4 8 6 SINGLE_TAG"} {
		if _, err := decodeTopicConfigText(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzDecode checks that hostile bodies give errors, never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(javaRegisterBody), false)
	f.Add([]byte(`{0:"a",`), false)
	f.Add([]byte(`{"a":{1:{2:[`), false)
	f.Add([]byte(`"\`), false)
	f.Add([]byte{0x78, 0x9c, 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		DecodeRegisterBrokerBody(data, compressed)
		DecodeTopicRouteData(data)
		DecodeClusterInfo(data)
	})
}
