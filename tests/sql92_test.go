package tests

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// startSelectorConsumer starts a clustering push consumer from the first offset
// with any selector (StartPushConsumer takes tag expressions only).
func startSelectorConsumer(t *testing.T, namesrv, topic, group string, sel consumer.MessageSelector) *PushConsumer {
	t.Helper()
	SkipClientUnderRace(t)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{namesrv})),
		consumer.WithGroupName(group),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithInstance(instance("sql")),
	)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	pc := &PushConsumer{PushConsumer: c, Group: group, Received: NewReceived()}
	err = c.Subscribe(topic, sel, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		pc.Received.add(msgs...)
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start consumer with selector %+v: %v", sel, err)
	}
	t.Cleanup(pc.Shutdown)
	return pc
}

// TestSQL92Filter sends messages with properties a (a number) and b (a string)
// and consumes with the official client's SQL92 selector: only the messages
// the expression selects arrive, the rest are filtered on the broker (the Go
// client cannot filter SQL92 itself). A second group with an expression that
// does not compile receives nothing and its pulls fail with the parse error.
func TestSQL92Filter(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: []string{"enablePropertyFilter=true"}})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("SQL92")
	adm.CreateTopic(c.BrokerAddr, topic, 4)

	p := NewProducer(t, c.NameSrvAddr)
	const n = 60
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("sql-%d", i)))
		m.WithTag([]string{"TagA", "TagB"}[i%2])
		if i%5 != 0 { // every fifth message has no property a at all
			m.WithProperty("a", strconv.Itoa(i%10))
		}
		m.WithProperty("b", []string{"x", "y", "z"}[i%3])
		res, err := p.SendSync(context.Background(), m)
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		if i%5 != 0 && i%10 > 5 && []string{"x", "y", "z"}[i%3] == "x" {
			want[res.MsgID] = true
		}
	}

	good := startSelectorConsumer(t, c.NameSrvAddr, topic, UniqueName("SQLG"),
		consumer.MessageSelector{Type: consumer.SQL92, Expression: "a > 5 AND b = 'x'"})
	tags := startSelectorConsumer(t, c.NameSrvAddr, topic, UniqueName("SQLTags"),
		consumer.MessageSelector{Type: consumer.SQL92, Expression: "TAGS IN ('TagA') AND (a IS NULL OR a BETWEEN 0 AND 3)"})
	WaitFor(t, consumeTimeout, func() bool { return good.Received.Distinct() >= len(want) },
		"%d of %d selected messages consumed", good.Received.Distinct(), len(want))

	// The tags consumer's set: even i (TagA) with a missing or a in 0..3.
	wantTags := 0
	for i := 0; i < n; i += 2 {
		if i%5 == 0 || i%10 <= 3 {
			wantTags++
		}
	}
	WaitFor(t, consumeTimeout, func() bool { return tags.Received.Distinct() >= wantTags },
		"%d of %d tag-selected messages consumed", tags.Received.Distinct(), wantTags)

	// A later message that matches proves the earlier non-matching ones were
	// skipped, not merely still in flight.
	last := primitive.NewMessage(topic, []byte("last"))
	last.WithProperty("a", "9")
	last.WithProperty("b", "x")
	res, err := p.SendSync(context.Background(), last)
	if err != nil {
		t.Fatalf("send last: %v", err)
	}
	want[res.MsgID] = true
	WaitFor(t, consumeTimeout, func() bool { return good.Received.Count(res.MsgID) > 0 }, "last matching message consumed")
	for _, id := range good.Received.IDs() {
		if !want[id] {
			m := good.Received.Get(id)
			t.Errorf("message %s (a=%q b=%q) does not match but was delivered", id, m.GetProperty("a"), m.GetProperty("b"))
		}
	}
	if got := good.Received.Distinct(); got != len(want) {
		t.Errorf("consumed %d distinct messages, want %d", got, len(want))
	}
	for _, id := range tags.Received.IDs() {
		m := tags.Received.Get(id)
		if m.GetTags() != "TagA" {
			t.Errorf("tags consumer got %s with tag %s", id, m.GetTags())
		}
	}
	t.Logf("selected %d of %d (a > 5 AND b = 'x'), %d by tag expression", len(want), n+1, tags.Received.Distinct())

	// A bad expression: the Go client has no CHECK_CLIENT_CONFIG, so Start
	// succeeds; the broker keeps the subscription and answers the group's pulls
	// FILTER_DATA_NOT_EXIST with the parse error, which the client logs
	// ("pull message from broker error ... unknown Response Code: 27, remark:
	// The broker's consumer filter data is not exist!Your expression may be
	// wrong! invalid SQL92 expression ...") and retries every 3 s.
	badGroup := UniqueName("SQLBad")
	bad := startSelectorConsumer(t, c.NameSrvAddr, topic, badGroup,
		consumer.MessageSelector{Type: consumer.SQL92, Expression: "a > AND b = 'x'"})
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	var resp *remoting.Command
	WaitFor(t, 30*time.Second, func() bool {
		req := remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": badGroup, "topic": topic, "queueId": "0", "queueOffset": "0",
			"maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subVersion": "0", "expressionType": "TAG",
		}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err = cl.Invoke(ctx, c.BrokerAddr, req)
		return err == nil && resp.Code == remoting.FilterDataNotExist
	}, "pull of the bad group answers FILTER_DATA_NOT_EXIST (last %v %v)", resp, err)
	if !strings.Contains(resp.Remark, "invalid SQL92 expression") {
		t.Errorf("remark %q does not explain the parse error", resp.Remark)
	}
	t.Logf("bad expression pull: code %d remark %q", resp.Code, resp.Remark)
	if got := bad.Received.Total(); got != 0 {
		t.Errorf("bad-expression consumer received %d messages", got)
	}

	// CHECK_CLIENT_CONFIG (what Java clients send when subscribing) rejects it
	// with SUBSCRIPTION_PARSE_FAILED and accepts a good one.
	check := func(expr string) *remoting.Command {
		data, _ := body.Marshal(&body.CheckClientRequestBody{ClientID: "it", Group: badGroup,
			SubscriptionData: &body.SubscriptionData{Topic: topic, SubString: expr, ExpressionType: "SQL92",
				TagsSet: []string{}, CodeSet: body.CodeSet{}}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := cl.Invoke(ctx, c.BrokerAddr, remoting.NewRequest(remoting.CheckClientConfig, nil, data))
		if err != nil {
			t.Fatalf("check client config: %v", err)
		}
		return r
	}
	if r := check("a > AND b"); r.Code != remoting.SubscriptionParseFailed {
		t.Errorf("CHECK_CLIENT_CONFIG of a bad expression: code %d %q, want %d", r.Code, r.Remark, remoting.SubscriptionParseFailed)
	}
	if r := check("a > 5"); r.Code != remoting.Success {
		t.Errorf("CHECK_CLIENT_CONFIG of a good expression: code %d %q", r.Code, r.Remark)
	}
}

// TestSQL92Disabled: without enablePropertyFilter (the default, as in Java) an
// SQL92 consumer gets nothing and its pulls are refused with Java's remark.
func TestSQL92Disabled(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{})
	adm := NewAdmin(t, c.NameSrvAddr)
	topic := UniqueName("SQL92Off")
	adm.CreateTopic(c.BrokerAddr, topic, 1)
	group := UniqueName("SQLOff")
	startSelectorConsumer(t, c.NameSrvAddr, topic, group, consumer.MessageSelector{Type: consumer.SQL92, Expression: "a > 5"})
	cl := remoting.NewClient(remoting.ClientConfig{})
	defer cl.Close()
	var resp *remoting.Command
	var err error
	WaitFor(t, 30*time.Second, func() bool {
		req := remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": group, "topic": topic, "queueId": "0", "queueOffset": "0",
			"maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subVersion": "0", "expressionType": "TAG",
		}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err = cl.Invoke(ctx, c.BrokerAddr, req)
		return err == nil && resp.Code == remoting.SystemError
	}, "pull answers SYSTEM_ERROR (last %v %v)", resp, err)
	if !strings.Contains(resp.Remark, "does not support consumer to filter message by SQL92") {
		t.Errorf("remark %q", resp.Remark)
	}
}
