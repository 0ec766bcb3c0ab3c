package namesrv

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func testGoClient(t *testing.T, addr string) {
	rlog.SetLogLevel("error")
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{addr})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	list, err := adm.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TopicList) != 1 || list.TopicList[0] != "TopicTest" {
		t.Fatalf("topic list %+v", list)
	}

	mqs, err := adm.FetchPublishMessageQueues(ctx, "TopicTest")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mq := range mqs {
		got = append(got, mq.BrokerName+":"+itoa(mq.QueueId))
	}
	sort.Strings(got)
	want := []string{"broker-a:0", "broker-a:1", "broker-a:2", "broker-a:3", "broker-b:0", "broker-b:1"}
	if len(got) != len(want) {
		t.Fatalf("publish queues %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("publish queues %v, want %v", got, want)
		}
	}

	clusters, err := adm.FetchClusterList("TopicTest")
	if err != nil || len(clusters) != 1 || clusters[0] != "DefaultCluster" {
		t.Fatalf("clusters %v %v", clusters, err)
	}
	if _, err := adm.FetchPublishMessageQueues(ctx, "NoSuchTopic"); err == nil {
		t.Fatal("route for a missing topic")
	}
}
