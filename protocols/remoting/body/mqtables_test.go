package body

import "testing"

func TestMQTablesFastjson(t *testing.T) {
	q0 := MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 0}
	q1 := MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 1}

	rb := ResetOffsetBody{OffsetTable: map[MessageQueue]int64{q1: 7, q0: 5}}
	got := string(rb.AppendFastjson(nil))
	want := `{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:5,{"brokerName":"broker-a","queueId":1,"topic":"T"}:7}}`
	if got != want {
		t.Fatalf("reset body\n got %s\nwant %s", got, want)
	}
	back, err := DecodeResetOffsetBody([]byte(got))
	if err != nil || back.OffsetTable[q0] != 5 || back.OffsetTable[q1] != 7 {
		t.Fatalf("decode reset body: %v %v", back, err)
	}

	cs := ConsumeStats{OffsetTable: map[MessageQueue]OffsetWrapper{q0: {BrokerOffset: 10, ConsumerOffset: 8, LastTimestamp: 1700000000000}}}
	got = string(cs.AppendFastjson(nil))
	want = `{"consumeTps":0.0,"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"brokerOffset":10,"consumerOffset":8,"lastTimestamp":1700000000000}}}`
	if got != want {
		t.Fatalf("consume stats\n got %s\nwant %s", got, want)
	}
	cs.ConsumeTps = 12.5
	dcs, err := DecodeConsumeStats(cs.AppendFastjson(nil))
	if err != nil || dcs.ConsumeTps != 12.5 || dcs.OffsetTable[q0] != cs.OffsetTable[q0] {
		t.Fatalf("decode consume stats: %+v %v", dcs, err)
	}

	ts := TopicStatsTable{OffsetTable: map[MessageQueue]TopicOffset{q1: {MinOffset: 1, MaxOffset: 9, LastUpdateTimestamp: 3}}}
	got = string(ts.AppendFastjson(nil))
	want = `{"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"lastUpdateTimestamp":3,"maxOffset":9,"minOffset":1}}}`
	if got != want {
		t.Fatalf("topic stats\n got %s\nwant %s", got, want)
	}
	dts, err := DecodeTopicStatsTable([]byte(got))
	if err != nil || dts.OffsetTable[q1] != ts.OffsetTable[q1] {
		t.Fatalf("decode topic stats: %+v %v", dts, err)
	}

	// Pretty-printed input and string keys decode too; garbage does not.
	pretty := "{\n\t\"offsetTable\":{\n\t\t{\"topic\":\"T\",\"brokerName\":\"broker-a\",\"queueId\":1} : 3 ,\n\t\t\"{\\\"topic\\\":\\\"T\\\",\\\"brokerName\\\":\\\"broker-a\\\",\\\"queueId\\\":0}\":4\n\t}\n}"
	if r, err := DecodeResetOffsetBody([]byte(pretty)); err != nil || r.OffsetTable[q1] != 3 || r.OffsetTable[q0] != 4 {
		t.Fatalf("decode pretty: %v %v", r, err)
	}
	for _, bad := range []string{``, `{`, `{"offsetTable":{{"topic":"T"}`, `{"offsetTable":{{"topic":"T"}:x y}}`, `[]`} {
		if _, err := DecodeResetOffsetBody([]byte(bad)); err == nil {
			t.Errorf("DecodeResetOffsetBody(%q) succeeded", bad)
		}
	}
}
