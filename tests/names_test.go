package tests

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// TestHostileNamesRefused (#16): topic and group names with "../", a NUL
// byte, a slash or 10,000 characters are refused by every request that
// would put them into a file name, a table or a map, and nothing appears
// outside the store. (A send's producer group goes into none: it is only a
// property of a transactional message, as in RocketMQ.)
func TestHostileNamesRefused(t *testing.T) {
	c := StartCluster(t, ClusterOptions{})
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	topic := UniqueName("NAMES")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 1)
	call := func(code int16, ext map[string]string, b []byte) *remoting.Command {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := cli.Invoke(ctx, c.BrokerAddr, remoting.NewRequest(code, ext, b))
		if err != nil {
			t.Fatalf("request %d: %v", code, err)
		}
		return resp
	}
	for _, bad := range []string{"../evil", "a\x00b", "a/b", strings.Repeat("g", 10000)} {
		show := bad
		if len(show) > 20 {
			show = show[:20] + "..."
		}
		subGroup, _ := body.Marshal(map[string]any{"groupName": bad, "consumeEnable": true})
		for _, r := range []struct {
			what string
			code int16
			ext  map[string]string
			body []byte
		}{
			{"send to topic", remoting.SendMessage, rawSendExt(bad, "PG", 0, ""), []byte("x")},
			{"create topic", remoting.UpdateAndCreateTopic, map[string]string{"topic": bad, "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil},
			{"commit offset of group", remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": bad, "topic": topic, "queueId": "0", "commitOffset": "1"}, nil},
			{"commit offset of topic", remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "CG_OK", "topic": bad, "queueId": "0", "commitOffset": "1"}, nil},
			{"create subscription group", remoting.UpdateAndCreateSubscriptionGroup, nil, subGroup},
			{"pull as group", remoting.PullMessage, map[string]string{"consumerGroup": bad, "topic": topic, "queueId": "0", "queueOffset": "0",
				"maxMsgNums": "1", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0"}, nil},
		} {
			if resp := call(r.code, r.ext, r.body); resp.Code == remoting.Success {
				t.Errorf("%s %q: accepted", r.what, show)
			}
		}
	}
	// Nothing named after them anywhere under the store, and the store
	// root is the only place the broker wrote.
	_ = filepath.WalkDir(c.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), "evil") || len(d.Name()) > 255) {
			t.Errorf("store holds %s", p)
		}
		return nil
	})
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(c.DataDir), "evil*")); len(matches) > 0 {
		t.Errorf("files outside the store: %v", matches)
	}
}
