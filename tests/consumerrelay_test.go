package tests

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// TestConsumerStatusAndConsumeDirectly drives the requests the broker relays
// to a live push consumer of the official client: GET_CONSUMER_STATUS (223,
// relayed as 221 and aggregated per clientId) reports the client's consume
// offsets, and CONSUME_MESSAGE_DIRECTLY (309) has the client consume a stored
// message, found by its offsetMsgId, once more.
func TestConsumerStatusAndConsumeDirectly(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	topic := UniqueName("Relay")
	const queues = 2
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, queues)
	sent := SendN(t, NewProducer(t, c.NameSrvAddr), topic, "", "relay", 6)
	group := UniqueName("RelayG")
	pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= len(sent) }, "%d of %d consumed", pc.Received.Distinct(), len(sent))
	cl := newRawClient(t)

	connResp := adminCall(t, cl, c.BrokerAddr, remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": group}, nil)
	var cc body.ConsumerConnection
	if err := body.Unmarshal(connResp.Body, &cc); err != nil || len(cc.ConnectionSet) != 1 {
		t.Fatalf("consumer connections: %s %v", connResp.Body, err)
	}
	clientID := cc.ConnectionSet[0].ClientID

	// The client's offsets reach the end of every queue.
	st := brokerStore(t, c)
	var status *body.GetConsumerStatusBody
	WaitFor(t, 30*time.Second, func() bool {
		resp := adminCall(t, cl, c.BrokerAddr, remoting.InvokeBrokerToGetConsumerStatus,
			map[string]string{"topic": topic, "group": group}, nil)
		if resp.Code != remoting.Success {
			t.Fatalf("GET_CONSUMER_STATUS: %d %q", resp.Code, resp.Remark)
		}
		var err error
		if status, err = body.DecodeGetConsumerStatusBody(resp.Body); err != nil {
			t.Fatalf("consumer status %s: %v", resp.Body, err)
		}
		offs := status.ConsumerTable[clientID]
		if len(offs) != queues {
			return false
		}
		for mq, off := range offs {
			if mq.Topic != topic || off != st.MaxOffset(topic, int32(mq.QueueID)) {
				return false
			}
		}
		return true
	}, "the client's offsets reach the queue ends: %+v", status)
	// Only the named client; a client not online adds nothing.
	resp := adminCall(t, cl, c.BrokerAddr, remoting.InvokeBrokerToGetConsumerStatus,
		map[string]string{"topic": topic, "group": group, "clientAddr": "nobody@1"}, nil)
	if s, err := body.DecodeGetConsumerStatusBody(resp.Body); resp.Code != remoting.Success || err != nil || len(s.ConsumerTable) != 0 {
		t.Errorf("GET_CONSUMER_STATUS of another client: %d %s %v", resp.Code, resp.Body, err)
	}
	if resp := adminCall(t, cl, c.BrokerAddr, remoting.InvokeBrokerToGetConsumerStatus,
		map[string]string{"topic": topic, "group": "NoSuchGroup"}, nil); resp.Code != remoting.SystemError {
		t.Errorf("GET_CONSUMER_STATUS of an offline group: %d %q", resp.Code, resp.Remark)
	}

	// Consume one message again, directly.
	target := sent[2]
	before := pc.Received.Count(target.MsgID)
	resp = adminCall(t, cl, c.BrokerAddr, remoting.ConsumeMessageDirectly,
		map[string]string{"consumerGroup": group, "clientId": clientID, "msgId": target.OffsetMsgID}, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("CONSUME_MESSAGE_DIRECTLY: %d %q", resp.Code, resp.Remark)
	}
	var res struct {
		ConsumeResult int    `json:"consumeResult"`
		Remark        string `json:"remark"`
	}
	if err := json.Unmarshal(resp.Body, &res); err != nil || res.ConsumeResult != 0 {
		t.Errorf("consume result %s: %v", resp.Body, err)
	}
	if n := pc.Received.Count(target.MsgID); n != before+1 {
		t.Errorf("message %s consumed %d times after the direct consume, want %d", target.MsgID, n, before+1)
	}
	if m := pc.Received.Get(target.MsgID); m == nil || m.Topic != topic || string(m.Body) != "relay-2" {
		t.Errorf("directly consumed message: %+v", m)
	}
	for _, bad := range []map[string]string{
		{"consumerGroup": group, "clientId": clientID, "msgId": "not-an-id"},
		{"consumerGroup": group, "clientId": "nobody@1", "msgId": target.OffsetMsgID},
		{"consumerGroup": group, "clientId": clientID, "msgId": "7F0000010000000000000000FFFFFFFF"[:32]},
	} {
		if resp := adminCall(t, cl, c.BrokerAddr, remoting.ConsumeMessageDirectly, bad, nil); resp.Code != remoting.SystemError {
			t.Errorf("CONSUME_MESSAGE_DIRECTLY %v: %d %q", bad, resp.Code, resp.Remark)
		}
	}
}
