package namesrv

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// BenchmarkRouteByTopic measures GET_ROUTEINFO_BY_TOPIC's handler for a topic
// on two broker groups (a master and a slave each): table lookup and route JSON.
func BenchmarkRouteByTopic(b *testing.B) {
	n := new(Namesrv)
	cfg := DefaultConfig()
	cfg.KVConfigPath = filepath.Join(b.TempDir(), "kvConfig.json")
	if err := n.provision(cfg, zerolog.Nop()); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i, name := range []string{"broker-a", "broker-b"} {
		for id := int64(0); id < 2; id++ {
			addr := "10.0.0." + itoa(i*2+int(id)+1) + ":10911"
			n.routes.Register(reg("DefaultCluster", name, addr, id, &fakeChannel{}, topicTable(1, body.NewTopicConfig("TopicTest", 8, 8, 6))), now)
		}
	}
	req := routeRequest("TopicTest")
	if resp := n.getRouteInfoByTopic(nil, req); resp.Code != remoting.Success {
		b.Fatal(resp.Remark)
	}
	b.ReportAllocs()
	for b.Loop() {
		n.getRouteInfoByTopic(nil, req)
	}
}

// BenchmarkRouteByTopicTCP is the same lookup as a client sees it, one request
// at a time over a real connection.
func BenchmarkRouteByTopicTCP(b *testing.B) {
	n := startNamesrv(b, "", nil)
	c := newClient(b)
	addr := n.Addr()
	for i, name := range []string{"broker-a", "broker-b"} {
		mustSucceed(b, call(b, c, addr, registerRequest(b, "DefaultCluster", name, "10.0.0."+itoa(i+1)+":10911", 0, 1, body.NewTopicConfig("TopicTest", 8, 8, 6))))
	}
	b.ReportAllocs()
	for b.Loop() {
		if resp := call(b, c, addr, routeRequest("TopicTest")); resp.Code != remoting.Success {
			b.Fatal(resp.Remark)
		}
	}
}
