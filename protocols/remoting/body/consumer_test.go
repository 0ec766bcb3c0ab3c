package body

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCodeSetForms(t *testing.T) {
	for in, want := range map[string]CodeSet{
		`["2598919","-5"]`: {2598919, -5},
		`[2598919,-5]`:     {2598919, -5},
		`[]`:               {},
		`null`:             nil,
	} {
		var c CodeSet
		if err := json.Unmarshal([]byte(in), &c); err != nil || !reflect.DeepEqual(c, want) {
			t.Errorf("%s: %v %v", in, c, err)
		}
	}
	for _, bad := range []string{`["x"]`, `[1.5]`, `{}`, `[true]`} {
		var c CodeSet
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	out, _ := Marshal(&SubscriptionData{Topic: "T", CodeSet: CodeSet{1, 2}})
	if want := `{"classFilterMode":false,"topic":"T","subString":"","tagsSet":null,"codeSet":[1,2],"subVersion":0,"expressionType":""}`; string(out) != want {
		t.Errorf("encoded %s", out)
	}
}

func TestHeartbeatDecode(t *testing.T) {
	in := `{"clientID":"192.0.2.2@28201","producerDataSet":[{"groupName":"PG1"}],"consumerDataSet":[{"groupName":"CG1",
	"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET",
	"subscriptionDataSet":[{"classFilterMode":false,"topic":"TopicTest","subString":"TagA || TagB","tagsSet":["TagA","TagB"],
	"codeSet":["2598919","2598920"],"subVersion":1795558577928026338,"expressionType":"TAG"}],"unitMode":false}]}`
	var hb HeartbeatData
	if err := Unmarshal([]byte(in), &hb); err != nil {
		t.Fatal(err)
	}
	cd := hb.ConsumerDataSet[0]
	if hb.ClientID != "192.0.2.2@28201" || hb.ProducerDataSet[0].GroupName != "PG1" || cd.MessageModel != Clustering ||
		cd.SubscriptionDataSet[0].SubVersion != 1795558577928026338 || cd.SubscriptionDataSet[0].CodeSet[1] != 2598920 {
		t.Fatalf("%+v", hb)
	}
}

func TestConsumerOffsetTable(t *testing.T) {
	tb := &ConsumerOffsetTable{OffsetTable: map[string]map[int32]int64{"T@g": {1: 118, 0: 120}, "A@b": {}}}
	if got := string(tb.AppendFastjson(nil, false)); got != `{"offsetTable":{"A@b":{},"T@g":{0:120,1:118}}}` {
		t.Fatalf("compact %s", got)
	}
	pretty := tb.AppendFastjson(nil, true)
	back, err := DecodeConsumerOffsetTable(pretty)
	if err != nil || !reflect.DeepEqual(back, tb) {
		t.Fatalf("pretty round trip %s: %v %v", pretty, back, err)
	}
	empty := (&ConsumerOffsetTable{}).AppendFastjson(nil, true)
	if back, err := DecodeConsumerOffsetTable(empty); err != nil || len(back.OffsetTable) != 0 {
		t.Fatalf("empty %q: %v", empty, err)
	}
	if _, err := DecodeConsumerOffsetTable([]byte(`{"offsetTable":{"T@g":{"q":1}}}`)); err == nil {
		t.Fatal("non-integer queue id accepted")
	}
}

func TestSubscriptionGroupDefaults(t *testing.T) {
	c, err := DecodeSubscriptionGroupConfig([]byte(`{"groupName":"G","consumeEnable":false}`))
	want := NewSubscriptionGroupConfig("G")
	want.ConsumeEnable = false
	if err != nil || c != want {
		t.Fatalf("%+v %v", c, err)
	}
	w, err := DecodeSubscriptionGroupWrapper([]byte(`{"subscriptionGroupTable":{"K":{"retryQueueNums":3}},"dataVersion":{"counter":2,"timestamp":5}}`))
	if err != nil || w.SubscriptionGroupTable["K"].GroupName != "K" || w.SubscriptionGroupTable["K"].RetryQueueNums != 3 ||
		w.SubscriptionGroupTable["K"].RetryMaxTimes != 16 || w.DataVersion.Counter != 2 {
		t.Fatalf("%+v %v", w, err)
	}
}
