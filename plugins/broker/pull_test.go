package broker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/kernel/waittest"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waittest.For(t, d, cond, "%s", what)
}

func TestPullStatusBoundaries(t *testing.T) {
	h := startDataBroker(t)
	h.send("Bounds", 0, "", "create") // creates the topic; queue 0 holds 1 message
	cases := []struct {
		name   string
		queue  int
		offset int64
		sub    string
		code   int16
		next   int64
	}{
		{"empty queue at 0", 2, 0, "*", remoting.PullNotFound, 0},
		{"empty queue beyond 0", 2, 5, "*", remoting.PullOffsetMoved, 0},
		{"at max offset", 0, 1, "*", remoting.PullNotFound, 1},
		{"beyond max offset", 0, 7, "*", remoting.PullOffsetMoved, 1},
		{"nothing matches", 0, 0, "NoSuchTag", remoting.PullRetryImmediately, 1},
		{"found", 0, 0, "*", remoting.Success, 1},
	}
	for _, c := range cases {
		resp := h.pull("Bounds", c.queue, c.offset, 32, c.sub)
		if resp.Code != c.code {
			t.Errorf("%s: code %d (%s), want %d", c.name, resp.Code, resp.Remark, c.code)
			continue
		}
		if got := extInt(t, resp, "nextBeginOffset"); got != c.next {
			t.Errorf("%s: nextBeginOffset %d, want %d", c.name, got, c.next)
		}
		for _, k := range []string{"minOffset", "maxOffset", "suggestWhichBrokerId"} {
			if !resp.ExtFields.Has(k) {
				t.Errorf("%s: ext %s missing", c.name, k)
			}
		}
	}
}

func TestPullChecks(t *testing.T) {
	h := startDataBroker(t)
	h.send("PullChecks", 0, "", "x")
	cases := []struct {
		name   string
		ext    map[string]string
		code   int16
		remark string
	}{
		{"unknown topic", pullReqExt("CG", "NoTopic", 0, 0, 1, 4, "*", 0), remoting.TopicNotExist, "topic[NoTopic] not exist"},
		{"queue out of range", pullReqExt("CG", "PullChecks", 4, 0, 1, 4, "*", 0), remoting.SystemError, "queueId[4] is illegal"},
		{"negative queue", pullReqExt("CG", "PullChecks", -1, 0, 1, 4, "*", 0), remoting.SystemError, "is illegal"},
		{"no heartbeat subscription", pullReqExt("CG", "PullChecks", 0, 0, 1, 0, "", 0), remoting.SubscriptionNotExist, "not exist"},
		{"sql92", withExt(pullReqExt("CG", "PullChecks", 0, 0, 1, 4, "a > 1", 0), "expressionType", "SQL92"), remoting.SystemError, "SQL92"},
		{"missing offset", withExt(pullReqExt("CG", "PullChecks", 0, 0, 1, 4, "*", 0), "queueOffset", ""), remoting.SystemError, "<queueOffset>"},
	}
	for _, c := range cases {
		resp := h.invoke(remoting.PullMessage, c.ext, nil)
		if resp.Code != c.code || !strings.Contains(resp.Remark, c.remark) {
			t.Errorf("%s: code %d %q, want %d containing %q", c.name, resp.Code, resp.Remark, c.code, c.remark)
		}
	}
}

func TestPullTagFilter(t *testing.T) {
	h := startDataBroker(t)
	for _, tag := range []string{"A", "B", "", "A", "C"} {
		h.send("Tags", 0, tag, "tag "+tag)
	}
	for sub, want := range map[string]string{
		"A":            "A,A",
		"A || C":       "A,A,C",
		" B ||  C || ": "B,C",
		"*":            "A,B,,A,C",
	} {
		resp := h.pull("Tags", 0, 0, 32, sub)
		if resp.Code != remoting.Success {
			t.Fatalf("sub %q: code %d", sub, resp.Code)
		}
		var tags []string
		for _, m := range decodeRecords(t, resp.Body) {
			tags = append(tags, message.Property(m.Properties, "TAGS"))
		}
		if got := strings.Join(tags, ","); got != want || extInt(t, resp, "nextBeginOffset") != 5 {
			t.Errorf("sub %q: tags %q next %s, want %q next 5", sub, got, resp.Ext("nextBeginOffset"), want)
		}
	}
}

// heartbeat registers consumer group CG with a subscription to topic.
func (h *dataHarness) heartbeat(group, topic, sub, model string) {
	h.t.Helper()
	hb := body.HeartbeatData{ClientID: "consumer@1", ConsumerDataSet: []body.ConsumerData{{
		GroupName: group, ConsumeType: body.ConsumePassively, MessageModel: model,
		ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
		SubscriptionDataSet: []body.SubscriptionData{{Topic: topic, SubString: sub,
			TagsSet: strings.Split(sub, " || "), ExpressionType: "TAG"}},
	}}}
	data, _ := json.Marshal(hb)
	if r := h.invoke(remoting.HeartBeat, nil, data); r.Code != remoting.Success {
		h.t.Fatalf("heartbeat: %d %q", r.Code, r.Remark)
	}
}

func TestPullWithHeartbeatSubscription(t *testing.T) {
	h := startDataBroker(t)
	for _, tag := range []string{"A", "B", "A"} {
		h.send("HB", 0, tag, "m")
	}
	h.heartbeat("CG", "HB", "B", body.Clustering)
	// Push consumers send no subscription (sysFlag without 4) and may commit
	// their offset on the side (sysFlag 1).
	ext := pullReqExt("CG", "HB", 0, 0, 32, 1, "", 0)
	ext["commitOffset"] = "2"
	resp := h.invoke(remoting.PullMessage, ext, nil)
	if resp.Code != remoting.Success {
		t.Fatalf("pull: %d %q", resp.Code, resp.Remark)
	}
	msgs := decodeRecords(t, resp.Body)
	if len(msgs) != 1 || message.Property(msgs[0].Properties, "TAGS") != "B" {
		t.Fatalf("heartbeat filter returned %d messages", len(msgs))
	}
	if off, ok := h.b.offsets.Query("CG", "HB", 0); !ok || off != 2 {
		t.Fatalf("side-channel commit: %d %v", off, ok)
	}

	h.heartbeat("BG", "HB", "*", body.Broadcasting)
	if err := h.b.subGroups.Update(func() body.SubscriptionGroupConfig {
		c, _ := h.b.subGroups.FindOrCreate("BG")
		c.ConsumeBroadcastEnable = false
		return c
	}()); err != nil {
		t.Fatal(err)
	}
	resp = h.invoke(remoting.PullMessage, pullReqExt("BG", "HB", 0, 0, 32, 0, "", 0), nil)
	if resp.Code != remoting.NoPermission {
		t.Fatalf("broadcast pull with consumeBroadcastEnable=false: %d %q", resp.Code, resp.Remark)
	}
}

// parkedPull starts a suspended pull and returns its response channel once the
// broker has parked it.
func (h *dataHarness) parkedPull(topic string, queue int, offset int64, suspendMillis int) <-chan *remoting.Command {
	h.t.Helper()
	before := h.b.pullHold.Parked()
	done := make(chan *remoting.Command, 1)
	ctx := contextWithTimeout(h.t, 40*time.Second)
	go func() {
		resp, err := h.client.Invoke(ctx, h.addr,
			remoting.NewRequest(remoting.PullMessage, pullReqExt("CG", topic, queue, offset, 32, 2|4, "*", suspendMillis), nil))
		if err != nil {
			h.t.Errorf("parked pull: %v", err)
			resp = nil
		}
		done <- resp
	}()
	waitFor(h.t, "the pull to be parked", 10*time.Second, func() bool { return h.b.pullHold.Parked() > before })
	return done
}

func TestLongPollWakesOnArrival(t *testing.T) {
	h := startDataBroker(t)
	h.send("LP", 0, "", "first")
	const suspend = 20000
	start := time.Now()
	done := h.parkedPull("LP", 0, 1, suspend)
	select {
	case r := <-done:
		t.Fatalf("pull answered before any message: %+v", r)
	default:
	}
	h.send("LP", 0, "", "second")
	resp := <-done
	elapsed := time.Since(start)
	if resp == nil || resp.Code != remoting.Success {
		t.Fatalf("woken pull: %+v", resp)
	}
	msgs := decodeRecords(t, resp.Body)
	if len(msgs) != 1 || string(msgs[0].Body) != "second" || extInt(t, resp, "nextBeginOffset") != 2 {
		t.Fatalf("woken pull returned %d messages, ext %v", len(msgs), resp.ExtFields)
	}
	if elapsed > suspend*time.Millisecond/4 {
		t.Fatalf("woken pull took %v", elapsed)
	}
	if n := h.b.pullHold.Parked(); n != 0 {
		t.Fatalf("%d pulls still parked", n)
	}
}

func TestLongPollExpires(t *testing.T) {
	h := startDataBroker(t)
	h.send("LPX", 0, "", "only")
	start := time.Now()
	resp := <-h.parkedPull("LPX", 0, 1, 300)
	if resp == nil || resp.Code != remoting.PullNotFound || extInt(t, resp, "nextBeginOffset") != 1 || extInt(t, resp, "maxOffset") != 1 {
		t.Fatalf("expired pull: %+v", resp)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("expired after %v, before its suspend time", d)
	}
}

func TestShutdownAnswersParkedPulls(t *testing.T) {
	h := startDataBroker(t)
	h.send("SD", 0, "", "only")
	var dones []<-chan *remoting.Command
	for q := 0; q < 3; q++ {
		off := int64(0)
		if q == 0 {
			off = 1
		}
		dones = append(dones, h.parkedPull("SD", q, off, 20000))
	}
	start := time.Now()
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	for i, d := range dones {
		resp := <-d
		if resp == nil || resp.Code != remoting.PullNotFound {
			t.Fatalf("pull %d at shutdown: %+v", i, resp)
		}
		if !resp.ExtFields.Has("nextBeginOffset") {
			t.Fatalf("pull %d at shutdown: no nextBeginOffset", i)
		}
	}
	<-stopped
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown with parked pulls took %v", d)
	}
}

func TestNotifyArrivalWithoutWaitersDoesNotAllocate(t *testing.T) {
	s := newPullHoldService(&Broker{})
	if n := testing.AllocsPerRun(1000, func() { s.NotifyArrival("T", 1, 10) }); n != 0 {
		t.Fatalf("NotifyArrival allocates %v times per call", n)
	}
}

func TestNewTagFilter(t *testing.T) {
	code := func(s string) int64 { return message.TagsHashCode(s) }
	cases := []struct {
		expr  string
		match []string
		miss  []string
	}{
		{"*", []string{"A", ""}, nil},
		{"", []string{"A"}, nil},
		{"A", []string{"A"}, []string{"B", ""}},
		{"A||B", []string{"A", "B"}, []string{"C"}},
		{" A || B ||C ", []string{"A", "B", "C"}, []string{"D"}},
		{"||", nil, []string{"A", ""}},
	}
	for _, c := range cases {
		f := newTagFilter(c.expr)
		for _, tag := range c.match {
			if !f.MatchTagsCode(code(tag)) {
				t.Errorf("%q should match %q", c.expr, tag)
			}
		}
		for _, tag := range c.miss {
			if f.MatchTagsCode(code(tag)) {
				t.Errorf("%q should not match %q", c.expr, tag)
			}
		}
	}
	// Codes compare as Java ints even if a store keeps them unsigned.
	neg := code("中文标签")
	if !newTagFilter("中文标签").MatchTagsCode(int64(uint32(neg))) {
		t.Error("tag code compared beyond 32 bits")
	}
}

func TestShortPollingIgnoresArrivals(t *testing.T) {
	h := startDataBroker(t, "broker.longPollingEnable=false", "broker.shortPollingTimeMills=300")
	h.send("SP", 0, "", "first")
	start := time.Now()
	done := h.parkedPull("SP", 0, 1, 20000)
	h.send("SP", 0, "", "second")
	resp := <-done
	// Without long polling the pull waits shortPollingTimeMills, then reads once.
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Fatalf("short poll answered after %v", d)
	}
	if resp == nil || resp.Code != remoting.Success || len(decodeRecords(t, resp.Body)) != 1 {
		t.Fatalf("short poll: %+v", resp)
	}
}
