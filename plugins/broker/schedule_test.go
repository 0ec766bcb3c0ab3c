package broker

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
)

func TestParseDelayLevels(t *testing.T) {
	got, err := parseDelayLevels(defaultDelayLevels)
	if err != nil || len(got) != 18 || got[0] != time.Second || got[4] != time.Minute || got[17] != 2*time.Hour {
		t.Fatalf("default levels: %v %v", got, err)
	}
	got, err = parseDelayLevels(" 1s  2m 3h 1d 0s ")
	want := []time.Duration{time.Second, 2 * time.Minute, 3 * time.Hour, 24 * time.Hour, 0}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("levels %v %v, want %v", got, err, want)
	}
	for _, bad := range []string{"", "   ", "1", "1ms", "s", "1x", "-1s", "1.5s", "1s 2", "99999999d"} {
		if _, err := parseDelayLevels(bad); err == nil {
			t.Errorf("parseDelayLevels(%q) accepted", bad)
		} else if bad != "" && strings.TrimSpace(bad) != "" && !strings.Contains(err.Error(), "level") {
			t.Errorf("parseDelayLevels(%q): error %q does not name the level", bad, err)
		}
	}
}

func TestDelayOffsetFileForms(t *testing.T) {
	table := map[int]int64{1: 0, 2: 5, 3: 123456789012, 18: 7}
	enc := encodeDelayOffsets(table)
	if string(enc) != `{"offsetTable":{1:0,2:5,3:123456789012,18:7}}` {
		t.Fatalf("encoded %s", enc)
	}
	for _, form := range []string{
		string(enc),
		`{"offsetTable":{"1":0,"2":5,"3":123456789012,"18":7}}`,                         // quoted keys
		"{\n\t\"offsetTable\":{\n\t\t1:0,\n\t\t2:5,\n\t\t3:123456789012,18 : 7\n\t}\n}", // fastjson pretty
		`{"offsetTable":{1:0,2:5,3:123456789012,18:7},"dataVersion":{"counter":3,"timestamp":1700000000000}}`,
	} {
		got, err := decodeDelayOffsets([]byte(form))
		if err != nil || !reflect.DeepEqual(got, table) {
			t.Errorf("decode %q: %v %v", form, got, err)
		}
	}
	for _, bad := range []string{`{"offsetTable":{0:1}}`, `{"offsetTable":{1:-1}}`, `{"offsetTable":{x:1}}`, `{`} {
		if _, err := decodeDelayOffsets([]byte(bad)); err == nil {
			t.Errorf("decode %q accepted", bad)
		}
	}
	if got, err := decodeDelayOffsets([]byte(`{}`)); err != nil || len(got) != 0 {
		t.Errorf("empty table: %v %v", got, err)
	}
}

// TestDelayOffsetsPersistAndCorrect runs a broker, writes a delayOffset.json
// with a level beyond messageDelayLevel and an offset past its queue, and
// checks the load keeps the extra level, clamps the offset, and the file is
// rewritten in Java's form at shutdown.
func TestDelayOffsetsPersistAndCorrect(t *testing.T) {
	root := t.TempDir()
	cfgDir := filepath.Join(root, "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, delayOffsetFile), []byte(`{"offsetTable":{1:40,5:0,30:9}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startDataBroker(t, "store.storePathRootDir="+root, "broker.messageDelayLevel=1s 2s 3s 4s 5s")
	s := h.b.schedule
	if got := s.offsets[0].Load(); got != 0 {
		t.Errorf("level 1 offset %d past an empty queue not corrected to 0", got)
	}
	if s.extra[30] != 9 {
		t.Errorf("level 30 (beyond the 5 levels) not kept: %v", s.extra)
	}
	h.stop()
	data, err := os.ReadFile(filepath.Join(cfgDir, delayOffsetFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"offsetTable":{1:0,2:0,3:0,4:0,5:0,30:9}}` {
		t.Errorf("delayOffset.json after shutdown: %s", data)
	}
}

// TestDelayedSendOverTheWire sends DELAY=2 (1 s levels): the response's
// queueOffset is in the schedule queue, the message is in
// SCHEDULE_TOPIC_XXXX queue 1 with REAL_TOPIC/REAL_QID, and it reaches the
// real queue once due. A level above the maximum is clamped.
func TestDelayedSendOverTheWire(t *testing.T) {
	h := startDataBroker(t, "broker.messageDelayLevel=1s 1s")
	for i := range 2 {
		resp := h.invoke(remoting.SendMessage, sendExt("DelayWire", 1, propStr("UNIQ_KEY", "D"+strconv.Itoa(i), "DELAY", "7")), []byte("x"))
		if resp.Code != remoting.Success || resp.Ext("queueId") != "1" || extInt(t, resp, "queueOffset") != int64(i) {
			t.Fatalf("delayed send: %d %q %v", resp.Code, resp.Remark, resp.ExtFields)
		}
	}
	pr := h.pull(topicSchedule, 1, 0, 32, "*")
	sched := decodeRecords(t, pr.Body)
	if len(sched) != 2 || message.Property(sched[0].Properties, "REAL_TOPIC") != "DelayWire" ||
		message.Property(sched[0].Properties, "REAL_QID") != "1" || message.Property(sched[0].Properties, "DELAY") != "2" {
		t.Fatalf("schedule queue: %d records %+v", len(sched), sched)
	}
	waitFor(t, "delayed messages delivered", 20*time.Second, func() bool { return h.b.store.MaxOffset("DelayWire", 1) == 2 })
	msgs := decodeRecords(t, h.pull("DelayWire", 1, 0, 32, "*").Body)
	if len(msgs) != 2 || message.Property(msgs[0].Properties, "DELAY") != "" || msgs[0].StoreTimestamp < sched[0].StoreTimestamp+1000 {
		t.Fatalf("delivered: %+v", msgs)
	}
	if got := h.b.schedule.offsets[1].Load(); got != 2 {
		t.Errorf("level 2 offset %d, want 2", got)
	}
}

// TestSendToRetryTopicBeyondMaxGoesToDLQ is the client's fallback path: a
// SEND_MESSAGE to %RETRY%<group> whose reconsumeTimes reached
// maxReconsumeTimes is stored in %DLQ%<group> without delay.
func TestSendToRetryTopicBeyondMaxGoesToDLQ(t *testing.T) {
	h := startDataBroker(t)
	ext := sendExt("%RETRY%FallbackG", 0, propStr("UNIQ_KEY", "F1", "DELAY", "5"))
	ext["reconsumeTimes"], ext["maxReconsumeTimes"] = "3", "3"
	if resp := h.invoke(remoting.SendMessage, ext, []byte("dead")); resp.Code != remoting.Success {
		t.Fatalf("send: %d %q", resp.Code, resp.Remark)
	}
	tc, ok := h.b.topics.Get("%DLQ%FallbackG")
	if !ok || tc.ReadQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("DLQ topic %+v %v", tc, ok)
	}
	msgs := decodeRecords(t, h.pull("%DLQ%FallbackG", 0, 0, 32, "*").Body)
	if len(msgs) != 1 || string(msgs[0].Body) != "dead" || message.Property(msgs[0].Properties, "DELAY") != "" || msgs[0].ReconsumeTimes != 3 {
		t.Fatalf("DLQ: %+v", msgs)
	}
	// Below the maximum it goes to the retry topic through the schedule.
	ext["reconsumeTimes"] = "2"
	if resp := h.invoke(remoting.SendMessage, ext, []byte("again")); resp.Code != remoting.Success {
		t.Fatalf("send: %d %q", resp.Code, resp.Remark)
	}
	if h.b.store.MaxOffset(topicSchedule, 4) != 1 {
		t.Fatalf("retry send not scheduled at level 5")
	}
}

// TestConsumerSendMsgBack covers the broker side of CONSUMER_SEND_MSG_BACK:
// retry copy through level 3 + reconsume times, client-chosen level, DLQ at
// max or with a negative level, unknown offset.
func TestConsumerSendMsgBack(t *testing.T) {
	h := startDataBroker(t)
	resp := h.send("SendBack", 0, "TagB", "payload")
	_, phy, err := message.ParseOffsetMsgID(resp.Ext("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	back := func(offset int64, delay, max int) *remoting.Command {
		return h.invoke(remoting.ConsumerSendMsgBack, map[string]string{
			"group": "SBG", "offset": strconv.FormatInt(offset, 10), "delayLevel": strconv.Itoa(delay),
			"originMsgId": "ORIG", "originTopic": "SendBack", "unitMode": "false", "maxReconsumeTimes": strconv.Itoa(max), "bname": "broker-a",
		}, nil)
	}
	if r := back(phy, 0, 16); r.Code != remoting.Success {
		t.Fatalf("send back: %d %q", r.Code, r.Remark)
	}
	sched := decodeRecords(t, h.pull(topicSchedule, 2, 0, 32, "*").Body) // level 3
	if len(sched) != 1 {
		t.Fatalf("level 3 queue holds %d", len(sched))
	}
	m := sched[0]
	p := message.ParseProperties(m.Properties)
	if p["REAL_TOPIC"] != "%RETRY%SBG" || p["RETRY_TOPIC"] != "SendBack" || p["ORIGIN_MESSAGE_ID"] != "ORIG" ||
		p["TAGS"] != "TagB" || m.ReconsumeTimes != 1 || string(m.Body) != "payload" {
		t.Fatalf("retry copy: %+v props %v", m, p)
	}
	if _, ok := h.b.topics.Get("%RETRY%SBG"); !ok {
		t.Fatalf("retry topic not created")
	}
	// The copy's own send-back (reconsume 1) with the client's level 1.
	if r := back(m.CommitLogOffset, 1, 16); r.Code != remoting.Success {
		t.Fatalf("send back 2: %d %q", r.Code, r.Remark)
	}
	if h.b.store.MaxOffset(topicSchedule, 0) != 1 {
		t.Fatal("client-chosen level 1 not used")
	}
	again := decodeRecords(t, h.pull(topicSchedule, 0, 0, 32, "*").Body)[0]
	if again.ReconsumeTimes != 2 || message.Property(again.Properties, "ORIGIN_MESSAGE_ID") != "ORIG" {
		t.Fatalf("second copy: %+v", again)
	}
	// Reconsume times 2 >= max 2: dead letter. A negative level too.
	if r := back(again.CommitLogOffset, 0, 2); r.Code != remoting.Success {
		t.Fatalf("send back 3: %d %q", r.Code, r.Remark)
	}
	if r := back(phy, -1, 16); r.Code != remoting.Success {
		t.Fatalf("send back -1: %d %q", r.Code, r.Remark)
	}
	dlq := decodeRecords(t, h.pull("%DLQ%SBG", 0, 0, 32, "*").Body)
	if len(dlq) != 2 || dlq[0].ReconsumeTimes != 3 || dlq[1].ReconsumeTimes != 1 ||
		message.Property(dlq[0].Properties, "DELAY") != "" || message.Property(dlq[0].Properties, "REAL_TOPIC") != "%RETRY%SBG" {
		t.Fatalf("DLQ: %+v", dlq)
	}
	if r := back(phy+1, 0, 16); r.Code != remoting.SystemError || !strings.Contains(r.Remark, "look message by offset failed") {
		t.Fatalf("bad offset: %d %q", r.Code, r.Remark)
	}
	if r := h.invoke(remoting.ConsumerSendMsgBack, map[string]string{"group": "SBG"}, nil); r.Code != remoting.SystemError {
		t.Fatalf("missing offset: %d %q", r.Code, r.Remark)
	}
}

// TestTimerSendChecks covers the timer properties on the send path.
func TestTimerSendChecks(t *testing.T) {
	h := startDataBroker(t, "broker.timerMaxDelaySec=60")
	now := time.Now().UnixMilli()
	send := func(props string) *remoting.Command {
		return h.invoke(remoting.SendMessage, sendExt("TimerChk", 0, propStr("UNIQ_KEY", "T"+strconv.FormatInt(rand.Int64(), 10))+props), []byte("t"))
	}
	for _, c := range []struct {
		props string
		code  int16
		timer bool
	}{
		{propStr("TIMER_DELIVER_MS", strconv.FormatInt(now+30000, 10)), remoting.Success, true},
		{propStr("TIMER_DELAY_SEC", "30"), remoting.Success, true},
		{propStr("TIMER_DELAY_MS", "30000"), remoting.Success, true},
		{propStr("TIMER_DELIVER_MS", strconv.FormatInt(now-1000, 10)), remoting.Success, false}, // due: stored at once
		{propStr("TIMER_DELIVER_MS", strconv.FormatInt(now+120000, 10)), remoting.MessageIllegal, false},
		{propStr("TIMER_DELAY_SEC", "soon"), remoting.MessageIllegal, false},
		{propStr("TIMER_DELAY_SEC", "9223372036854775807"), remoting.MessageIllegal, false},
		{propStr("TIMER_DELIVER_MS", strconv.FormatInt(now+30000, 10), "DELAY", "1"), remoting.Success, false}, // DELAY wins
	} {
		before := h.b.store.MaxOffset(timerTopic, 0)
		r := send(c.props)
		if r.Code != c.code {
			t.Errorf("%q: code %d %q, want %d", c.props, r.Code, r.Remark, c.code)
		}
		if got := h.b.store.MaxOffset(timerTopic, 0) > before; got != c.timer {
			t.Errorf("%q: stored in the timer topic %v, want %v", c.props, got, c.timer)
		}
	}
	if r := h.invoke(remoting.SendMessage, sendExt(timerTopic, 0, ""), []byte("x")); r.Code != remoting.NoPermission {
		t.Errorf("send to %s: %d %q", timerTopic, r.Code, r.Remark)
	}
	off := h.b.timers
	waitFor(t, "timers enqueued", 10*time.Second, func() bool { return off.pending.Load() == 3 })
}

func TestTimerHeap(t *testing.T) {
	var h timerHeap
	r := rand.New(rand.NewPCG(1, 2))
	var want []int64
	for i := range 5000 {
		at := r.Int64N(1000)
		h.push(timerEntry{at: at, phy: int64(i)})
		want = append(want, at)
		if i%7 == 0 { // interleave pops
			e := h.pop()
			want = removeMin(t, want, e.at)
		}
	}
	last := int64(-1)
	for len(h) > 0 {
		e := h.pop()
		if e.at < last {
			t.Fatalf("heap out of order: %d after %d", e.at, last)
		}
		last = e.at
		want = removeMin(t, want, e.at)
	}
	if len(want) != 0 {
		t.Fatalf("%d entries lost", len(want))
	}
}

func removeMin(t *testing.T, s []int64, at int64) []int64 {
	t.Helper()
	mi := 0
	for i, v := range s {
		if v < s[mi] {
			mi = i
		}
	}
	if s[mi] != at {
		t.Fatalf("popped %d, minimum is %d", at, s[mi])
	}
	return append(s[:mi], s[mi+1:]...)
}

// BenchmarkTimerSchedule measures adding pending timers to the heap and
// taking them when due (the in-memory part of scheduling; the store's put is
// measured by the store benchmarks).
func BenchmarkTimerSchedule(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var h timerHeap
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.push(timerEntry{at: r.Int64N(3 * 24 * 3600 * 1000), phy: int64(i)})
		if len(h) > 1<<20 {
			h.pop()
		}
	}
}

// BenchmarkTimerScheduleMemory reports the heap bytes held per pending timer
// with one million timers pending.
func BenchmarkTimerScheduleMemory(b *testing.B) {
	const n = 1 << 20
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var h timerHeap
		for i := range n {
			h.push(timerEntry{at: r.Int64N(3 * 24 * 3600 * 1000), phy: int64(i)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/timer")
		runtime.KeepAlive(h)
	}
}

// BenchmarkTimerScheduleSend calls the send handler (no socket) with timer
// messages due in an hour: header decoding, the rewrite to the timer topic
// and the store's put; the timer goroutine reads them into its heap
// meanwhile, and the benchmark ends when all are pending there. Compare with
// BenchmarkSendMessageHandler for the cost of scheduling.
func BenchmarkTimerScheduleSend(b *testing.B) {
	h := startDataBroker(b)
	at := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	ext := sendExt("TimerBench", 0, propStr("UNIQ_KEY", "C0A8000100002A9F0000000000000001", "TAGS", "TagA", "KEYS", "k1", "TIMER_DELIVER_MS", at))
	h.send("TimerBench", 0, "", "create")
	body := make([]byte, 1024)
	req := remoting.NewRequest(remoting.SendMessage, ext, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if resp := h.b.handleSend(nil, req); resp.Code != remoting.Success {
			b.Fatalf("send: %d %q", resp.Code, resp.Remark)
		}
	}
	waitFor(b, "timers pending", time.Minute, func() bool { return h.b.timers.pending.Load() >= int64(b.N) })
}
