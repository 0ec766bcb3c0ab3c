package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
	"github.com/mqd/mqd/tests"
)

// remote is a remoting client for requests a test sends by hand.
type remote struct {
	t *testing.T
	c *remoting.Client
}

func newRemote(t *testing.T) *remote {
	c := remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	t.Cleanup(func() { _ = c.Close() })
	return &remote{t, c}
}

// call sends a request; a transport error or a non-success answer is an error.
func (r *remote) call(addr string, code int16, ext map[string]string) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.c.Invoke(ctx, addr, remoting.NewRequest(code, ext, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return resp, fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
	}
	return resp, nil
}

// offset answers a request whose reply carries ext "offset" (-1 on any error).
func (r *remote) offset(addr string, code int16, ext map[string]string) int64 {
	resp, err := r.call(addr, code, ext)
	if err != nil {
		return -1
	}
	off, err := strconv.ParseInt(resp.Ext("offset"), 10, 64)
	if err != nil {
		r.t.Fatalf("offset %q: %v", resp.Ext("offset"), err)
	}
	return off
}

func (r *remote) maxOffset(addr, topic string, q int) int64 {
	return r.offset(addr, remoting.GetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(q)})
}

func (r *remote) committed(addr, group, topic string, q int) int64 {
	return r.offset(addr, remoting.QueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q)})
}

// consumeLikeJavaClient reads every queue of topic from addr (a slave) the way
// the Java client does while its master is gone: QUERY_CONSUMER_OFFSET, pulls
// from there, then UPDATE_CONSUMER_OFFSET (oneway) at the same broker
// (RemoteBrokerOffsetStore picks any broker of the group, findBrokerAddressInAdmin).
// The official Go client cannot do this part: it reads and commits offsets at
// a master only (FindBrokerAddrByName). It returns the bodies read and the
// committed offsets.
func (r *remote) consumeLikeJavaClient(addr, group, topic string, queues int) (map[string]int, map[int]int64) {
	t := r.t
	bodies := map[string]int{}
	next := map[int]int64{}
	for q := range queues {
		off := r.committed(addr, group, topic, q)
		if off < 0 {
			t.Fatalf("QUERY_CONSUMER_OFFSET of queue %d at the slave failed", q)
		}
		hi := r.maxOffset(addr, topic, q)
		for off < hi {
			resp, err := r.call(addr, remoting.PullMessage, map[string]string{
				"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q),
				"queueOffset": strconv.FormatInt(off, 10), "maxMsgNums": "32",
				"sysFlag":      "4", // FLAG_SUBSCRIPTION, no commit flag: a client commits at a slave separately
				"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0",
				"expressionType": "TAG",
			})
			if err != nil {
				t.Fatalf("pull queue %d at %d from the slave: %v", q, off, err)
			}
			err = message.SplitRecords(resp.Body, func(rec []byte) error {
				bodies[string(message.RecordBody(rec))]++
				return nil
			})
			if err != nil {
				t.Fatalf("pull queue %d: %v", q, err)
			}
			n, _ := strconv.ParseInt(resp.Ext("nextBeginOffset"), 10, 64)
			if n <= off {
				t.Fatalf("pull queue %d at %d: no progress (next %d, max %d)", q, off, n, hi)
			}
			off = n
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.c.InvokeOneway(ctx, addr, remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{
			"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q), "commitOffset": strconv.FormatInt(off, 10),
		}, nil))
		cancel()
		if err != nil {
			t.Fatalf("UPDATE_CONSUMER_OFFSET of queue %d at the slave: %v", q, err)
		}
		next[q] = off
	}
	return bodies, next
}

// TestSlaveOffsetsGivenBack: while broker-a's master is down (SIGKILL), a
// consumer group reads all N messages from the slave and commits its offsets
// there. When the master returns, the slave gives those offsets back to it, so
// a consumer of the same group (the official Go client, which talks offsets
// with the master only) receives exactly the M messages sent after failback
// and none of the N again.
func TestSlaveOffsetsGivenBack(t *testing.T) {
	const queues, n, more = 4, 40, 20
	c := Start(t, Options{Mode: "async", Brokers: []string{"broker-a", "broker-a-s"}, Namesrvs: 1})
	m, s := c.Master("a"), c.Slave("a")
	waitLog(t, m, "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("HA_FAILBACK")
	group := tests.UniqueName("CG_FAILBACK")
	c.CreateTopic(t, "a", topic, queues)

	p := tests.NewProducer(t, c.NS(), producer.WithRetry(2))
	sent := map[string]bool{}
	for i := range n {
		b := "old-" + strconv.Itoa(i)
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b)))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, res, err)
		}
		sent[b] = true
	}
	r := newRemote(t)
	tests.WaitFor(t, 30*time.Second, func() bool {
		total := int64(0)
		for q := range queues {
			total += r.maxOffset(s.BrokerAddr, topic, q)
		}
		return total == n
	}, "the slave's queues hold the %d messages", n)

	m.Kill()
	bodies, committed := r.consumeLikeJavaClient(s.BrokerAddr, group, topic, queues)
	if len(bodies) != n {
		t.Fatalf("read %d distinct bodies from the slave, want %d", len(bodies), n)
	}
	for b := range sent {
		if bodies[b] != 1 {
			t.Fatalf("body %s read %d times from the slave", b, bodies[b])
		}
	}
	// The slave keeps them while its master is away (its sync rounds fail).
	for q, off := range committed {
		tests.WaitFor(t, 10*time.Second, func() bool { return r.committed(s.BrokerAddr, group, topic, q) == off },
			"slave's committed offset of queue %d = %d", q, off)
	}

	m.Restart()
	for q, off := range committed {
		tests.WaitFor(t, 30*time.Second, func() bool { return r.committed(m.BrokerAddr, group, topic, q) == off },
			"the master learns queue %d's offset %d from the slave", q, off)
	}
	waitLog(t, s, "given back to the master", 1, 10*time.Second)
	if strings.Contains(s.Logs(), "the master rejected") {
		t.Fatal("the master rejected offsets given back")
	}
	for q, off := range committed {
		if got := r.committed(s.BrokerAddr, group, topic, q); got != off {
			t.Fatalf("slave's queue %d offset %d after failback, want %d", q, got, off)
		}
	}

	// Fresh clients: the producer created before the kill would keep its old
	// routes for up to 30 s.
	tests.WaitFor(t, 30*time.Second, func() bool {
		return RouteAddrs(t, c.NS(), topic, "broker-a")[0] == m.BrokerAddr
	}, "route of %s through the returned master", topic)
	cons := tests.StartPushConsumer(t, c.NS(), topic, tests.ConsumerOptions{Group: group})
	p2 := tests.NewProducer(t, c.NS(), producer.WithRetry(2))
	want := map[string]bool{}
	for i := range more {
		b := "new-" + strconv.Itoa(i)
		res, err := p2.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b)))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d after failback: %v %v", i, res, err)
		}
		want[b] = true
	}
	waitConsumed(t, cons, want, 60*time.Second)
	// Once the group's committed offsets reach the end of every queue, the
	// consumer has handled everything it was going to read.
	tests.WaitFor(t, 30*time.Second, func() bool {
		for q := range queues {
			if r.committed(m.BrokerAddr, group, topic, q) != r.maxOffset(m.BrokerAddr, topic, q) {
				return false
			}
		}
		return true
	}, "the consumer's offsets reach the end of every queue")
	var again []string
	for _, id := range cons.Received.IDs() {
		if msg := cons.Received.Get(id); msg != nil && !want[string(msg.Body)] {
			again = append(again, string(msg.Body))
		}
	}
	if len(again) > 0 || cons.Received.Total() != more {
		t.Fatalf("after failback the consumer received %d messages (want the %d new ones), of which %d not new: %v",
			cons.Received.Total(), more, len(again), again)
	}
}
