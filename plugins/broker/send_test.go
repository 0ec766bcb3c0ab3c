package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"

	_ "github.com/mqd/mqd/discovery/namesrv" // the default discovery mode
	_ "github.com/mqd/mqd/storage/commitlog" // the default store engine
)

// dataHarness runs app.broker in its own kernel on a free port, with its store
// in a temporary directory and no name server, and talks to it with a raw
// remoting client.
type dataHarness struct {
	t      testing.TB
	k      *kernel.Kernel
	b      *Broker
	client *remoting.Client
	addr   string
	stop   func()
}

func startDataBroker(t testing.TB, sets ...string) *dataHarness {
	t.Helper()
	all := append([]string{
		"broker.listenPort=0",
		"broker.brokerIP1=127.0.0.1",
		"broker.namesrvAddr=",
		"store.storePathRootDir=" + t.TempDir(),
	}, sets...)
	// Registered defaults only: the embedded profile also configures the name
	// server, whose keys this package does not register.
	emptyProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Env: []string{}, Sets: all, ProfileSource: emptyProfile})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	k := kernel.New(cfg, zerolog.New(io.Discard))
	if err := k.Load(context.Background(), "app.broker"); err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := k.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	h := &dataHarness{t: t, k: k, client: remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})}
	for _, m := range k.Loaded() {
		if b, ok := m.(*Broker); ok {
			h.b = b
		}
	}
	if h.b == nil {
		t.Fatal("app.broker not loaded")
	}
	h.addr = h.b.Addr()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := k.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		h.client.Close()
	}
	t.Cleanup(h.stop)
	return h
}

func contextWithTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (h *dataHarness) invoke(code int16, ext map[string]string, msgBody []byte) *remoting.Command {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.client.Invoke(ctx, h.addr, remoting.NewRequest(code, ext, msgBody))
	if err != nil {
		h.t.Fatalf("invoke %s: %v", remoting.RequestCodeName(code), err)
	}
	return resp
}

// sendExt is a SEND_MESSAGE header as the Go client writes it.
func sendExt(topic string, queueID int, props string) map[string]string {
	return map[string]string{
		"producerGroup": "PG", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(queueID), "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": "0", "properties": props, "reconsumeTimes": "0", "unitMode": "false", "maxReconsumeTimes": "0",
		"batch": "false", "bname": "broker-a",
	}
}

func propStr(kv ...string) string {
	var sb strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		sb.WriteString(kv[i] + "\x01" + kv[i+1] + "\x02")
	}
	return sb.String()
}

func (h *dataHarness) send(topic string, queueID int, tag string, msgBody string) *remoting.Command {
	h.t.Helper()
	p := propStr("UNIQ_KEY", fmt.Sprintf("ID%d", time.Now().UnixNano()))
	if tag != "" {
		p += propStr("TAGS", tag)
	}
	resp := h.invoke(remoting.SendMessage, sendExt(topic, queueID, p), []byte(msgBody))
	if resp.Code != remoting.Success {
		h.t.Fatalf("send to %s/%d: code %d %q", topic, queueID, resp.Code, resp.Remark)
	}
	return resp
}

func pullReqExt(group, topic string, queueID int, offset int64, maxMsgs int, sysFlag int, sub string, suspendMillis int) map[string]string {
	return map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queueID),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": strconv.Itoa(maxMsgs),
		"sysFlag": strconv.Itoa(sysFlag), "commitOffset": "0", "suspendTimeoutMillis": strconv.Itoa(suspendMillis),
		"subscription": sub, "subVersion": "0", "expressionType": "TAG", "bname": "broker-a",
	}
}

// pull issues a PULL_MESSAGE with the subscription in the request (sysFlag 4).
func (h *dataHarness) pull(topic string, queueID int, offset int64, maxMsgs int, sub string) *remoting.Command {
	h.t.Helper()
	return h.invoke(remoting.PullMessage, pullReqExt("CG", topic, queueID, offset, maxMsgs, 4, sub, 0), nil)
}

func decodeRecords(t testing.TB, b []byte) []*message.Ext {
	t.Helper()
	var out []*message.Ext
	if err := message.SplitRecords(b, func(rec []byte) error {
		e, err := message.Decode(rec)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("decode pull body: %v", err)
	}
	return out
}

func extInt(t testing.TB, c *remoting.Command, key string) int64 {
	t.Helper()
	v, ok := c.ExtInt64(key)
	if !ok {
		t.Fatalf("response ext %s missing or malformed: %q (ext %v)", key, c.Ext(key), c.ExtFields)
	}
	return v
}

func TestSendPullRoundTrip(t *testing.T) {
	h := startDataBroker(t)
	var ids []string
	for i := range 3 {
		resp := h.send("RoundTrip", 1, "TagA", "hello "+strconv.Itoa(i))
		if got := extInt(t, resp, "queueOffset"); got != int64(i) {
			t.Fatalf("send %d: queueOffset %d", i, got)
		}
		if resp.Ext("queueId") != "1" || resp.Ext("MSG_REGION") != "DefaultRegion" || resp.Ext("TRACE_ON") != "true" {
			t.Fatalf("send ext %v", resp.ExtFields)
		}
		ids = append(ids, resp.Ext("msgId"))
	}
	// Auto-created from TBW102 with the client's 4 queues.
	if tc, ok := h.b.topics.Get("RoundTrip"); !ok || tc.WriteQueueNums != 4 {
		t.Fatalf("auto-created topic: %+v %v", tc, ok)
	}

	resp := h.pull("RoundTrip", 1, 0, 32, "*")
	if resp.Code != remoting.Success {
		t.Fatalf("pull: code %d %q", resp.Code, resp.Remark)
	}
	if extInt(t, resp, "nextBeginOffset") != 3 || extInt(t, resp, "minOffset") != 0 || extInt(t, resp, "maxOffset") != 3 ||
		resp.Ext("suggestWhichBrokerId") != "0" {
		t.Fatalf("pull ext %v", resp.ExtFields)
	}
	msgs := decodeRecords(t, resp.Body)
	if len(msgs) != 3 {
		t.Fatalf("pulled %d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		if string(m.Body) != "hello "+strconv.Itoa(i) || m.QueueOffset != int64(i) || m.Topic != "RoundTrip" || m.QueueID != 1 {
			t.Fatalf("message %d: %+v", i, m)
		}
		if message.Property(m.Properties, "CLUSTER") != "DefaultCluster" || message.Property(m.Properties, "TAGS") != "TagA" {
			t.Fatalf("message %d properties %q", i, m.Properties)
		}
		host, off, err := message.ParseOffsetMsgID(ids[i])
		if err != nil || off != m.CommitLogOffset || host.String() != h.addr {
			t.Fatalf("msgId %s -> %v %d %v; record at %d", ids[i], host, off, err, m.CommitLogOffset)
		}
		if m.BornHost.Addr().String() != "127.0.0.1" {
			t.Fatalf("born host %v", m.BornHost)
		}
	}

	// maxMsgNums 0 still returns one message, as Java does.
	resp = h.pull("RoundTrip", 1, 1, 0, "*")
	if resp.Code != remoting.Success || len(decodeRecords(t, resp.Body)) != 1 || extInt(t, resp, "nextBeginOffset") != 2 {
		t.Fatalf("pull with maxMsgNums 0: code %d ext %v", resp.Code, resp.ExtFields)
	}

	// VIEW_MESSAGE_BY_ID reads the record at the commit-log offset.
	_, off, _ := message.ParseOffsetMsgID(ids[2])
	resp = h.invoke(remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("view by id: %d %q", resp.Code, resp.Remark)
	}
	if m, err := message.Decode(resp.Body); err != nil || string(m.Body) != "hello 2" {
		t.Fatalf("view by id: %v %v", m, err)
	}
	resp = h.invoke(remoting.ViewMessageByID, map[string]string{"offset": "999999999"}, nil)
	if resp.Code != remoting.SystemError {
		t.Fatalf("view by bad offset: %d", resp.Code)
	}
}

func TestSendBatch(t *testing.T) {
	h := startDataBroker(t)
	var batch []byte
	for i := range 4 {
		batch = message.AppendBatchMessage(batch, int32(i), []byte("batch "+strconv.Itoa(i)), propStr("TAGS", "T"+strconv.Itoa(i), "KEYS", "k"))
	}
	ext := map[string]string{"a": "PG", "b": "Batch", "c": "TBW102", "d": "4", "e": "0", "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "", "j": "0", "k": "false", "l": "0", "m": "true", "n": "broker-a"}
	h.send("Batch", 0, "", "first") // offset 0
	resp := h.invoke(remoting.SendBatchMessage, ext, batch)
	if resp.Code != remoting.Success {
		t.Fatalf("batch: code %d %q", resp.Code, resp.Remark)
	}
	ids := strings.Split(resp.Ext("msgId"), ",")
	if len(ids) != 4 || extInt(t, resp, "queueOffset") != 1 {
		t.Fatalf("batch ext %v", resp.ExtFields)
	}
	pr := h.pull("Batch", 0, 1, 32, "*")
	msgs := decodeRecords(t, pr.Body)
	if len(msgs) != 4 {
		t.Fatalf("pulled %d of the batch", len(msgs))
	}
	for i, m := range msgs {
		_, off, err := message.ParseOffsetMsgID(ids[i])
		if err != nil || off != m.CommitLogOffset || string(m.Body) != "batch "+strconv.Itoa(i) || m.Flag != int32(i) ||
			message.Property(m.Properties, "TAGS") != "T"+strconv.Itoa(i) || message.Property(m.Properties, "CLUSTER") != "DefaultCluster" {
			t.Fatalf("batch message %d: %+v (id %s)", i, m, ids[i])
		}
	}

	// Broken batches and refused ones lose nothing already stored and are reported.
	bad := h.invoke(remoting.SendBatchMessage, ext, batch[:len(batch)-3])
	if bad.Code != remoting.MessageIllegal || !strings.Contains(bad.Remark, "bad batch body") {
		t.Fatalf("truncated batch: %d %q", bad.Code, bad.Remark)
	}
	delayed := message.AppendBatchMessage(nil, 0, []byte("x"), propStr("DELAY", "3"))
	if r := h.invoke(remoting.SendBatchMessage, ext, delayed); r.Code != remoting.MessageIllegal {
		t.Fatalf("delayed batch: %d %q", r.Code, r.Remark)
	}
	retry := withExt(ext, "b", "%RETRY%CG")
	if r := h.invoke(remoting.SendBatchMessage, retry, batch); r.Code != remoting.MessageIllegal {
		t.Fatalf("retry batch: %d %q", r.Code, r.Remark)
	}
	if got := h.b.store.MaxOffset("Batch", 0); got != 5 {
		t.Fatalf("max offset after refused batches %d, want 5", got)
	}
}

func withExt(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestSendChecks(t *testing.T) {
	h := startDataBroker(t, "broker.maxMessageSize=1024")
	cases := []struct {
		name   string
		ext    map[string]string
		body   int
		code   int16
		remark string
	}{
		{"oversize body", sendExt("Checks", 0, ""), 2048, remoting.MessageIllegal, "MAX: 1024"},
		{"bad topic name", sendExt("bad topic!", 0, ""), 1, remoting.MessageIllegal, "illegal characters"},
		{"long topic", sendExt(strings.Repeat("t", 128), 0, ""), 1, remoting.MessageIllegal, "longer"},
		{"system topic", sendExt("SCHEDULE_TOPIC_XXXX", 0, ""), 1, remoting.NoPermission, "forbidden"},
		{"no default topic", withExt(sendExt("NoSuch", 0, ""), "defaultTopic", "NOPE"), 1, remoting.TopicNotExist, "topic[NoSuch] not exist, apply first please!"},
		{"queue out of range", sendExt("Checks", 8, ""), 1, remoting.SystemError, "queueId[8] is illegal"},
		{"missing topic", map[string]string{"producerGroup": "PG", "queueId": "0"}, 1, remoting.SystemError, "<topic>"},
		{"malformed queueId", withExt(sendExt("Checks", 0, ""), "queueId", "x"), 1, remoting.SystemError, "<queueId>"},
		{"big properties", sendExt("Checks", 0, propStr("K", strings.Repeat("v", 40000))), 1, remoting.MessageIllegal, "properties"},
	}
	h.send("Checks", 0, "", "create it") // 4 queues
	for _, c := range cases {
		resp := h.invoke(remoting.SendMessage, c.ext, make([]byte, c.body))
		if resp.Code != c.code || !strings.Contains(resp.Remark, c.remark) {
			t.Errorf("%s: code %d %q, want %d containing %q", c.name, resp.Code, resp.Remark, c.code, c.remark)
		}
	}
	// SEND_MESSAGE_V2 carries the same header with letter names.
	v2 := map[string]string{"a": "PG", "b": "Checks", "c": "TBW102", "d": "4", "e": "2", "f": "0",
		"g": "1700000000000", "h": "7", "i": propStr("TAGS", "V2"), "j": "0", "k": "false", "l": "0", "m": "false"}
	if r := h.invoke(remoting.SendMessageV2, v2, []byte("v2")); r.Code != remoting.Success || r.Ext("queueId") != "2" {
		t.Fatalf("SEND_MESSAGE_V2: %d %q %v", r.Code, r.Remark, r.ExtFields)
	}
	// A negative queue id picks a random writable queue.
	resp := h.invoke(remoting.SendMessage, sendExt("Checks", -1, ""), []byte("any"))
	if q := extInt(t, resp, "queueId"); resp.Code != remoting.Success || q < 0 || q >= 4 {
		t.Fatalf("queueId -1: %d %v", resp.Code, resp.ExtFields)
	}
	// END_TRANSACTION names a missing header field.
	if r := h.invoke(remoting.EndTransaction, map[string]string{}, nil); r.Code != remoting.SystemError {
		t.Fatalf("END_TRANSACTION: %d", r.Code)
	}
}

func TestSendWithoutWritePermission(t *testing.T) {
	h := startDataBroker(t, "broker.brokerPermission=4")
	resp := h.invoke(remoting.SendMessage, sendExt("T", 0, ""), []byte("x"))
	if resp.Code != remoting.NoPermission {
		t.Fatalf("send to a read-only broker: %d %q", resp.Code, resp.Remark)
	}
}

func TestWithCluster(t *testing.T) {
	b := &Broker{}
	b.cfg.BrokerClusterName = "C1"
	for in, want := range map[string]string{
		"":                            "CLUSTER\x01C1",
		"A\x01b\x02":                  "A\x01b\x02CLUSTER\x01C1",
		"A\x01b":                      "A\x01b\x02CLUSTER\x01C1",
		"CLUSTER\x01C1\x02A\x01b\x02": "CLUSTER\x01C1\x02A\x01b\x02",
		"CLUSTER\x01Other\x02A\x01b":  "A\x01b\x02CLUSTER\x01C1",
	} {
		if got := b.withCluster(in); got != want {
			t.Errorf("withCluster(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSendReplyPushesToRequester(t *testing.T) {
	h := startDataBroker(t)
	// The requester: a producer client that heartbeats, then waits for 326.
	got := make(chan *remoting.Command, 1)
	h.client.Handle(remoting.PushReplyMessageToClient, func(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
		got <- req
		return remoting.NewResponse(remoting.Success, "")
	})
	hb, _ := json.Marshal(body.HeartbeatData{ClientID: "requester@1", ProducerDataSet: []body.ProducerData{{GroupName: "PG"}}})
	if r := h.invoke(remoting.HeartBeat, nil, hb); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %d %q", r.Code, r.Remark)
	}
	h.send("DefaultCluster_REPLY_TOPIC", 0, "", "warm up")
	p := propStr("CORRELATION_ID", "c-1", "REPLY_TO_CLIENT", "requester@1", "TTL", "3", "MSG_TYPE", "reply")
	resp := h.invoke(remoting.SendReplyMessage, sendExt("DefaultCluster_REPLY_TOPIC", 0, p), []byte("the reply"))
	if resp.Code != remoting.Success {
		t.Fatalf("reply: %d %q", resp.Code, resp.Remark)
	}
	select {
	case req := <-got:
		if string(req.Body) != "the reply" || message.Property(req.Ext("properties"), "CORRELATION_ID") != "c-1" ||
			message.Property(req.Ext("properties"), "PUSH_REPLY_TIME") == "" || req.Ext("storeHost") != h.addr {
			t.Fatalf("pushed reply %+v", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reply not pushed")
	}
	// Unknown requester: the replier learns the reply went nowhere.
	p = propStr("CORRELATION_ID", "c-2", "REPLY_TO_CLIENT", "gone@1")
	resp = h.invoke(remoting.SendReplyMessage, sendExt("DefaultCluster_REPLY_TOPIC", 0, p), []byte("lost"))
	if resp.Code != remoting.SystemError || !strings.Contains(resp.Remark, "gone@1") {
		t.Fatalf("reply to unknown client: %d %q", resp.Code, resp.Remark)
	}
}
