package cluster

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/discovery/nats/natstest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/tests"
)

// TestNATSDiscovery: two name servers and a master and its slave all on
// discovery.mode=nats (an in-process NATS server with JetStream). The
// brokers do not know the name servers: the name servers learn of them from
// the bucket and both serve the same routes, through which the Go client
// sends and consumes; the slave finds its master the same way. With NATS
// killed the brokers keep serving; a topic created meanwhile is announced
// once NATS is back.
func TestNATSDiscovery(t *testing.T) {
	s := natstest.Start(t)
	url := "discovery.nats.url=" + s.ClientURL()
	c := Start(t, Options{Mode: "sync", Namesrvs: 2, Brokers: []string{"broker-a", "broker-a-s"},
		NamesrvExtra: []string{"discovery.mode=nats", url},
		Extra:        []string{"discovery.mode=nats", url}})
	waitLog(t, c.Master("a"), "HA: slave accepted", 1, 30*time.Second)
	topic := tests.UniqueName("NATS_DISC")
	c.CreateTopic(t, "a", topic, 4) // waits until both name servers route it
	r0, r1 := RouteAddrs(t, c.Namesrv[0].NameSrvAddr, topic, "broker-a"), RouteAddrs(t, c.Namesrv[1].NameSrvAddr, topic, "broker-a")
	if len(r0) != 2 || r0[0] != r1[0] || r0[1] != r1[1] {
		t.Fatalf("routes differ or lack the slave: %v vs %v", r0, r1)
	}
	p := tests.NewProducer(t, c.NS(), producer.WithRetry(0))
	want := map[string]bool{}
	for i := range 20 {
		body := "before-" + string(rune('a'+i))
		if st := sendStatus(t, p, topic, body); st != primitive.SendOK {
			t.Fatalf("send through NATS-discovered routes: %v", st)
		}
		want[body] = true
	}

	s.Shutdown()
	for i := range 20 {
		body := "nats-down-" + string(rune('a'+i))
		if st := sendStatus(t, p, topic, body); st != primitive.SendOK {
			t.Fatalf("send with NATS down: %v", st)
		}
		want[body] = true
	}
	late := tests.UniqueName("NATS_LATE")
	if _, err := newRemote(t).call(c.Master("a").BrokerAddr, remoting.UpdateAndCreateTopic, map[string]string{"topic": late,
		"readQueueNums": "2", "writeQueueNums": "2", "perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}); err != nil {
		t.Fatalf("create %s with NATS down: %v", late, err)
	}
	s.Restart(t)
	for _, ns := range c.NSList() {
		tests.WaitFor(t, 60*time.Second, func() bool { return RouteAddrs(t, ns, late, "broker-a")[0] != "" },
			"route of %s, created while NATS was down, at %s", late, ns)
	}
	consumeAll(t, c.NS(), topic, want, 60*time.Second)
}
