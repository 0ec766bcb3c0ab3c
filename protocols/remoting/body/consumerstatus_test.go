package body

import "testing"

func TestGetConsumerStatusBody(t *testing.T) {
	// What the Go client answers to 221.
	client := []byte(`{"messageQueueTable":{{"topic":"T","brokerName":"broker-a","queueId":1}:7,{"topic":"T","brokerName":"broker-a","queueId":0}:3}}`)
	s, err := DecodeGetConsumerStatusBody(client)
	if err != nil || len(s.MessageQueueTable) != 2 || s.MessageQueueTable[MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 1}] != 7 {
		t.Fatalf("client body: %+v %v", s, err)
	}
	agg := GetConsumerStatusBody{ConsumerTable: map[string]map[MessageQueue]int64{"c2": s.MessageQueueTable, "c1": {}}}
	out := agg.AppendFastjson(nil)
	want := `{"consumerTable":{"c1":{},"c2":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:3,{"brokerName":"broker-a","queueId":1,"topic":"T"}:7}},"messageQueueTable":{}}`
	if string(out) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", out, want)
	}
	back, err := DecodeGetConsumerStatusBody(out)
	if err != nil || len(back.ConsumerTable) != 2 || back.ConsumerTable["c2"][MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: 0}] != 3 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := DecodeGetConsumerStatusBody([]byte(`{"other":1}`)); err == nil {
		t.Fatal("a body without either table decoded")
	}
}
