package tests

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/plugins/broker"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// adminCall sends one raw request to addr and fails the test on a transport error.
func adminCall(t *testing.T, cl *remoting.Client, addr string, code int16, ext map[string]string, data []byte) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, addr, remoting.NewRequest(code, ext, data))
	if err != nil {
		t.Fatalf("request %d to %s: %v", code, addr, err)
	}
	return resp
}

// TestResetOffsetMovesLiveConsumer consumes two batches with the official push
// consumer, then resets the group's offsets to the time between the batches
// with INVOKE_BROKER_TO_RESET_OFFSET (as mqadmin resetOffsetByTime does): the
// broker pushes RESET_CONSUMER_CLIENT_OFFSET to the live consumer, which
// consumes the second batch again and not the first. GET_CONSUME_STATS,
// GET_TOPIC_STATS_INFO, QUERY_TOPIC_CONSUME_BY_WHO, CLONE_GROUP_OFFSET and
// GET_CONSUMER_RUNNING_INFO are checked against what the broker holds on the way.
func TestResetOffsetMovesLiveConsumer(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{"flushConsumerOffsetInterval=1000"}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("Reset")
	const queues = 2
	adm.CreateTopic(c.BrokerAddr, topic, queues)
	st := c.Module("app.broker").(*broker.Broker).Store()
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()

	p := NewProducer(t, c.NameSrvAddr)
	first := SendN(t, p, topic, "", "first", 10)
	mid := time.Now()
	WaitFor(t, 5*time.Second, func() bool { return time.Since(mid) > 5*time.Millisecond }, "clock moves")
	second := SendN(t, p, topic, "", "second", 10)

	group := UniqueName("ResetG")
	pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{Group: group, FromFirst: true})
	WaitFor(t, consumeTimeout, func() bool { return pc.Received.Distinct() >= 20 }, "%d of 20 consumed", pc.Received.Distinct())

	// Consume stats: broker offsets are the store's, consumer offsets catch up.
	var cs *body.ConsumeStats
	WaitFor(t, 30*time.Second, func() bool {
		resp := adminCall(t, cl, c.BrokerAddr, remoting.GetConsumeStats, map[string]string{"consumerGroup": group, "topic": topic}, nil)
		if resp.Code != remoting.Success {
			t.Fatalf("GET_CONSUME_STATS: %d %s", resp.Code, resp.Remark)
		}
		var err error
		if cs, err = body.DecodeConsumeStats(resp.Body); err != nil {
			t.Fatalf("consume stats %s: %v", resp.Body, err)
		}
		for _, w := range cs.OffsetTable {
			if w.ConsumerOffset != w.BrokerOffset {
				return false
			}
		}
		return len(cs.OffsetTable) == queues
	}, "consumer offsets reach the broker offsets: %+v", cs)
	for mq, w := range cs.OffsetTable {
		if max := st.MaxOffset(topic, mq.QueueID); w.BrokerOffset != max || mq.Topic != topic || mq.BrokerName != "broker-a" {
			t.Errorf("queue %+v: brokerOffset %d, store max %d", mq, w.BrokerOffset, max)
		}
		if ts, _ := st.MessageStoreTime(topic, mq.QueueID, w.ConsumerOffset-1); w.LastTimestamp != ts || ts == 0 {
			t.Errorf("queue %+v: lastTimestamp %d, store time of the last consumed %d", mq, w.LastTimestamp, ts)
		}
	}
	// Without a topic: every topic the group has offsets on, %RETRY% included.
	resp := adminCall(t, cl, c.BrokerAddr, remoting.GetConsumeStats, map[string]string{"consumerGroup": group}, nil)
	all, err := body.DecodeConsumeStats(resp.Body)
	if err != nil || len(all.OffsetTable) < queues {
		t.Errorf("GET_CONSUME_STATS without topic: %v %s", err, resp.Body)
	}

	// Topic stats.
	resp = adminCall(t, cl, c.BrokerAddr, remoting.GetTopicStatsInfo, map[string]string{"topic": topic}, nil)
	ts, err := body.DecodeTopicStatsTable(resp.Body)
	if resp.Code != remoting.Success || err != nil || len(ts.OffsetTable) != queues {
		t.Fatalf("GET_TOPIC_STATS_INFO: %d %s %v", resp.Code, resp.Body, err)
	}
	for mq, o := range ts.OffsetTable {
		if o.MaxOffset != st.MaxOffset(topic, mq.QueueID) || o.MinOffset != st.MinOffset(topic, mq.QueueID) || o.LastUpdateTimestamp == 0 {
			t.Errorf("topic stats of %+v: %+v", mq, o)
		}
	}
	if resp := adminCall(t, cl, c.BrokerAddr, remoting.GetTopicStatsInfo, map[string]string{"topic": "NoSuchTopic"}, nil); resp.Code != remoting.TopicNotExist {
		t.Errorf("GET_TOPIC_STATS_INFO of an unknown topic: %d", resp.Code)
	}

	// Who consumes the topic.
	resp = adminCall(t, cl, c.BrokerAddr, remoting.QueryTopicConsumeByWho, map[string]string{"topic": topic}, nil)
	var gl body.GroupList
	if err := body.Unmarshal(resp.Body, &gl); err != nil || len(gl.GroupList) != 1 || gl.GroupList[0] != group {
		t.Errorf("QUERY_TOPIC_CONSUME_BY_WHO: %s %v", resp.Body, err)
	}

	// Running info relayed to the client.
	connResp := adminCall(t, cl, c.BrokerAddr, remoting.GetConsumerConnectionList, map[string]string{"consumerGroup": group}, nil)
	var cc body.ConsumerConnection
	if err := body.Unmarshal(connResp.Body, &cc); err != nil || len(cc.ConnectionSet) != 1 {
		t.Fatalf("consumer connections: %s %v", connResp.Body, err)
	}
	clientID := cc.ConnectionSet[0].ClientID
	resp = adminCall(t, cl, c.BrokerAddr, remoting.GetConsumerRunningInfo,
		map[string]string{"consumerGroup": group, "clientId": clientID, "jstackEnable": "false"}, nil)
	// The client answers itself; when its statistics hold NaN (no pull timed
	// yet) the Go client fails to encode the body and says so in the remark.
	switch {
	case resp.Code != remoting.Success:
		t.Errorf("GET_CONSUMER_RUNNING_INFO: %d %q", resp.Code, resp.Remark)
	case len(resp.Body) > 0:
		t.Logf("running info from %s: %d bytes", clientID, len(resp.Body))
	case !strings.Contains(resp.Remark, "json"):
		t.Errorf("GET_CONSUMER_RUNNING_INFO: empty body, remark %q", resp.Remark)
	default:
		t.Logf("running info relayed; the client could not encode it: %q", resp.Remark)
	}
	if resp := adminCall(t, cl, c.BrokerAddr, remoting.GetConsumerRunningInfo,
		map[string]string{"consumerGroup": group, "clientId": "nobody", "jstackEnable": "false"}, nil); resp.Code != remoting.SystemError {
		t.Errorf("GET_CONSUMER_RUNNING_INFO of an unknown client: %d", resp.Code)
	}

	// Clone the offsets to an offline group.
	clone := UniqueName("CloneG")
	resp = adminCall(t, cl, c.BrokerAddr, remoting.CloneGroupOffset,
		map[string]string{"srcGroup": group, "destGroup": clone, "topic": topic, "offline": "false"}, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("CLONE_GROUP_OFFSET: %d %s", resp.Code, resp.Remark)
	}
	resp = adminCall(t, cl, c.BrokerAddr, remoting.GetConsumeStats, map[string]string{"consumerGroup": clone, "topic": topic}, nil)
	cloned, _ := body.DecodeConsumeStats(resp.Body)
	for mq, w := range cloned.OffsetTable {
		if w.ConsumerOffset != cs.OffsetTable[mq].ConsumerOffset {
			t.Errorf("cloned offset of %+v: %d, want %d", mq, w.ConsumerOffset, cs.OffsetTable[mq].ConsumerOffset)
		}
	}
	// Resetting an offline group is refused so mqadmin falls back to its own way.
	resp = adminCall(t, cl, c.BrokerAddr, remoting.InvokeBrokerToResetOffset,
		map[string]string{"topic": topic, "group": clone, "timestamp": "0", "isForce": "true"}, nil)
	if resp.Code != remoting.ConsumerNotOnline {
		t.Errorf("reset of an offline group: %d %s", resp.Code, resp.Remark)
	}

	// Reset the live group to the time between the batches.
	resp = adminCall(t, cl, c.BrokerAddr, remoting.InvokeBrokerToResetOffset, map[string]string{
		"topic": topic, "group": group, "timestamp": strconv.FormatInt(mid.UnixMilli()+1, 10), "isForce": "true",
	}, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("INVOKE_BROKER_TO_RESET_OFFSET: %d %s", resp.Code, resp.Remark)
	}
	rb, err := body.DecodeResetOffsetBody(resp.Body)
	if err != nil || len(rb.OffsetTable) != queues {
		t.Fatalf("reset body %s: %v", resp.Body, err)
	}
	firstPerQueue := map[int]int64{}
	for _, r := range first {
		firstPerQueue[r.MessageQueue.QueueId]++
	}
	for mq, off := range rb.OffsetTable {
		if off != firstPerQueue[int(mq.QueueID)] {
			t.Errorf("reset offset of queue %d = %d, want %d (after the first batch)", mq.QueueID, off, firstPerQueue[int(mq.QueueID)])
		}
	}
	t.Logf("reset body %s", resp.Body)

	// The client applies the reset after its 10 s pause and consumes the
	// second batch again.
	WaitFor(t, 60*time.Second, func() bool {
		for _, r := range second {
			if pc.Received.Count(r.MsgID) < 2 {
				return false
			}
		}
		return true
	}, "second batch consumed again after the reset")
	for _, r := range first {
		if n := pc.Received.Count(r.MsgID); n != 1 {
			t.Errorf("first-batch message %s consumed %d times, want once", r.MsgID, n)
		}
	}
	// Skip to the end (timestamp -1, mqadmin skipAccumulatedMessage).
	resp = adminCall(t, cl, c.BrokerAddr, remoting.InvokeBrokerToResetOffset,
		map[string]string{"topic": topic, "group": group, "timestamp": "-1", "isForce": "true"}, nil)
	rb, _ = body.DecodeResetOffsetBody(resp.Body)
	for mq, off := range rb.OffsetTable {
		if off != st.MaxOffset(topic, mq.QueueID) {
			t.Errorf("skip: queue %d reset to %d, want max %d", mq.QueueID, off, st.MaxOffset(topic, mq.QueueID))
		}
	}
}

// newRawClient returns a remoting client closed with the test.
func newRawClient(t *testing.T) *remoting.Client {
	cl := remoting.NewClient(remoting.ClientConfig{})
	t.Cleanup(func() { cl.Close() })
	return cl
}
