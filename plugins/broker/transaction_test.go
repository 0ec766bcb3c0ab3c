package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
)

var txSeq atomic.Int64

// sendHalf sends a PREPARED message the way the Go transaction producer does
// and returns the half record's commit-log offset and queue offset.
func (h *dataHarness) sendHalf(topic string, queueID int, group, extraProps string) (clo, qo int64, uniq string) {
	h.t.Helper()
	uniq = fmt.Sprintf("TXID%020d", txSeq.Add(1))
	ext := sendExt(topic, queueID, propStr("UNIQ_KEY", uniq, "TAGS", "TagA", "TRAN_MSG", "true", "PGROUP", group)+extraProps)
	ext["producerGroup"] = group
	ext["sysFlag"] = strconv.Itoa(int(message.SysFlagTranPrepared))
	resp := h.invoke(remoting.SendMessage, ext, []byte("tx body "+uniq))
	if resp.Code != remoting.Success {
		h.t.Fatalf("half send: %d %q", resp.Code, resp.Remark)
	}
	_, clo, err := message.ParseOffsetMsgID(resp.Ext("msgId"))
	if err != nil {
		h.t.Fatalf("half send msgId %q: %v", resp.Ext("msgId"), err)
	}
	if q := extInt(h.t, resp, "queueId"); q != int64(queueID) {
		h.t.Fatalf("half send answered queueId %d, want the real queue %d", q, queueID)
	}
	return clo, extInt(h.t, resp, "queueOffset"), uniq
}

func endTxExt(group string, clo, qo int64, state int32) map[string]string {
	return map[string]string{
		"producerGroup": group, "tranStateTableOffset": strconv.FormatInt(qo, 10),
		"commitLogOffset": strconv.FormatInt(clo, 10), "commitOrRollback": strconv.Itoa(int(state)),
		"fromTransactionCheck": "false", "msgId": "x", "transactionId": "", "bname": "broker-a",
	}
}

// readQueue decodes every record of a queue.
func readQueue(t testing.TB, b *Broker, topic string, queueID int32) []*message.Ext {
	t.Helper()
	var out []*message.Ext
	for off := b.store.MinOffset(topic, queueID); off < b.store.MaxOffset(topic, queueID); {
		res := b.store.GetMessages(topic, queueID, off, 32, 1<<20, nil)
		for _, rec := range res.Records {
			m, err := message.Decode(append([]byte(nil), rec...))
			if err != nil {
				t.Fatalf("decode %s/%d: %v", topic, queueID, err)
			}
			out = append(out, m)
		}
		next := res.NextBeginOffset
		res.Release()
		if next <= off {
			break
		}
		off = next
	}
	return out
}

func TestTransactionCommitRollback(t *testing.T) {
	h := startDataBroker(t)
	const topic, group = "TxTopic", "TxPG"
	h.send(topic, 1, "", "create")
	before := h.b.store.MaxOffset(topic, 1)

	clo, qo, uniq := h.sendHalf(topic, 1, group, "")
	if got := h.b.store.MaxOffset(topic, 1); got != before {
		t.Fatalf("a half message reached the real queue: max offset %d -> %d", before, got)
	}
	halves := readQueue(t, h.b, topicTransHalf, 0)
	if len(halves) != 1 || halves[0].CommitLogOffset != clo || halves[0].QueueOffset != qo {
		t.Fatalf("half queue holds %d records, want the half message at %d/%d", len(halves), clo, qo)
	}
	hm := halves[0]
	if message.TranType(hm.SysFlag) != message.SysFlagTranNotType ||
		message.Property(hm.Properties, message.PropertyRealTopic) != topic ||
		message.Property(hm.Properties, message.PropertyRealQueueID) != "1" {
		t.Fatalf("half record: sysFlag %#x props %q", hm.SysFlag, hm.Properties)
	}
	if tc, ok := h.b.topics.Get(topicTransHalf); !ok || tc.ReadQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("half topic config %+v %v", tc, ok)
	}

	// Checked before anything is stored: group, queue offset, commit-log offset.
	for _, c := range []struct {
		ext    map[string]string
		remark string
	}{
		{endTxExt("OtherPG", clo, qo, tranCommit), "producer group wrong"},
		{endTxExt(group, clo, qo+5, tranCommit), "state table offset wrong"},
		{endTxExt(group, clo+1, qo, tranCommit), "Find prepared transaction message failed"},
		{endTxExt(group, clo, qo, 3), "illegal commitOrRollback"},
	} {
		if r := h.invoke(remoting.EndTransaction, c.ext, nil); r.Code != remoting.SystemError || !strings.Contains(r.Remark, c.remark) {
			t.Errorf("END_TRANSACTION %v: %d %q, want SYSTEM_ERROR %q", c.ext, r.Code, r.Remark, c.remark)
		}
	}
	// Unknown leaves it pending.
	if r := h.invoke(remoting.EndTransaction, endTxExt(group, clo, qo, tranNotType), nil); r.Code != remoting.Success {
		t.Fatalf("unknown: %d %q", r.Code, r.Remark)
	}
	if got := h.b.store.MaxOffset(topic, 1); got != before {
		t.Fatalf("unknown stored a message")
	}

	if r := h.invoke(remoting.EndTransaction, endTxExt(group, clo, qo, tranCommit), nil); r.Code != remoting.Success || r.Remark != "" {
		t.Fatalf("commit: %d %q", r.Code, r.Remark)
	}
	msgs := readQueue(t, h.b, topic, 1)
	committed := msgs[len(msgs)-1]
	if len(msgs) != int(before)+1 || string(committed.Body) != "tx body "+uniq {
		t.Fatalf("after commit the real queue holds %d messages, last %q", len(msgs), committed.Body)
	}
	if message.TranType(committed.SysFlag) != message.SysFlagTranCommit || committed.PreparedTransactionOffset != clo ||
		committed.BornTimestamp != hm.BornTimestamp || committed.QueueID != 1 {
		t.Fatalf("committed record: sysFlag %#x prepared %d born %d queue %d", committed.SysFlag, committed.PreparedTransactionOffset, committed.BornTimestamp, committed.QueueID)
	}
	p := message.ParseProperties(committed.Properties)
	if p["REAL_TOPIC"] != "" || p["REAL_QID"] != "" || p["TRAN_MSG"] != "" || p["UNIQ_KEY"] != uniq || p["PGROUP"] != group || p["TAGS"] != "TagA" {
		t.Fatalf("committed properties %v", p)
	}

	// A second commit (a late check-back answer) stores nothing.
	if r := h.invoke(remoting.EndTransaction, endTxExt(group, clo, qo, tranCommit), nil); r.Code != remoting.Success || !strings.Contains(r.Remark, "already ended") {
		t.Fatalf("second commit: %d %q", r.Code, r.Remark)
	}
	if got := h.b.store.MaxOffset(topic, 1); got != before+1 {
		t.Fatalf("second commit stored again: max offset %d", got)
	}

	// Rollback: no real message, an op record.
	clo2, qo2, _ := h.sendHalf(topic, 1, group, "")
	if r := h.invoke(remoting.EndTransaction, endTxExt(group, clo2, qo2, tranRollback), nil); r.Code != remoting.Success {
		t.Fatalf("rollback: %d %q", r.Code, r.Remark)
	}
	if r := h.invoke(remoting.EndTransaction, endTxExt(group, clo2, qo2, tranCommit), nil); !strings.Contains(r.Remark, "already ended") {
		t.Fatalf("commit after rollback: %d %q", r.Code, r.Remark)
	}
	if got := h.b.store.MaxOffset(topic, 1); got != before+1 {
		t.Fatalf("rollback stored a message: max offset %d", got)
	}
	ops := readQueue(t, h.b, topicTransOpHalf, 0)
	if len(ops) != 2 || string(ops[0].Body) != strconv.FormatInt(qo, 10) || string(ops[1].Body) != strconv.FormatInt(qo2, 10) ||
		message.Property(ops[0].Properties, message.PropertyTags) != "d" {
		t.Fatalf("op records: %d", len(ops))
	}

	// A batch cannot carry a transaction; a half message with a delivery time
	// its commit would refuse is refused.
	ext := sendExt(topic, 1, propStr("TRAN_MSG", "true", "PGROUP", group, "TIMER_DELAY_SEC", "-5x"))
	ext["sysFlag"] = "4"
	if r := h.invoke(remoting.SendMessage, ext, []byte("x")); r.Code != remoting.MessageIllegal {
		t.Fatalf("half message with a bad delivery time: %d %q", r.Code, r.Remark)
	}
	ext = sendExt(topic, 1, "")
	ext["sysFlag"] = "4"
	if r := h.invoke(remoting.SendBatchMessage, ext, message.AppendBatchMessage(nil, 0, []byte("a"), "")); r.Code != remoting.MessageIllegal {
		t.Fatalf("transactional batch: %d %q", r.Code, r.Remark)
	}
}

func TestTransactionRejected(t *testing.T) {
	h := startDataBroker(t, "broker.rejectTransactionMessage=true")
	ext := sendExt("TxRejected", 0, propStr("TRAN_MSG", "true", "PGROUP", "PG"))
	ext["sysFlag"] = "4"
	if r := h.invoke(remoting.SendMessage, ext, []byte("x")); r.Code != remoting.NoPermission {
		t.Fatalf("half message with rejectTransactionMessage: %d %q", r.Code, r.Remark)
	}
}

// TestTransactionStateSurvivesRestart ends transactions, restarts the broker
// on the same store and checks that ended ones stay ended and unresolved ones
// stay pending (with their check counts).
func TestTransactionStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sets := []string{"store.storePathRootDir=" + dir, "broker.checkTransactionMessageEnable=false"}
	h := startDataBroker(t, sets...)
	const topic, group = "TxRestart", "TxRestartPG"
	h.send(topic, 0, "", "create")
	cloA, qoA, _ := h.sendHalf(topic, 0, group, "")
	cloB, qoB, _ := h.sendHalf(topic, 0, group, "")
	cloC, qoC, _ := h.sendHalf(topic, 0, group, "")
	h.invoke(remoting.EndTransaction, endTxExt(group, cloA, qoA, tranCommit), nil)
	// Let the scan pass A..C before the restart, so both the pending list and
	// the op replay are exercised: D ends after the scan.
	WaitTx(t, h.b, func(tx *txService) bool { return tx.scan > qoC })
	h.b.tx.mu.Lock()
	h.b.tx.pending[qoC].checks = 3
	h.b.tx.changes++
	h.b.tx.mu.Unlock()
	cloD, qoD, _ := h.sendHalf(topic, 0, group, "")
	h.invoke(remoting.EndTransaction, endTxExt(group, cloB, qoB, tranRollback), nil)
	h.invoke(remoting.EndTransaction, endTxExt(group, cloD, qoD, tranCommit), nil)
	h.stop()

	h2 := startDataBroker(t, sets...)
	for _, c := range [][2]int64{{cloA, qoA}, {cloB, qoB}, {cloD, qoD}} {
		if r := h2.invoke(remoting.EndTransaction, endTxExt(group, c[0], c[1], tranCommit), nil); !strings.Contains(r.Remark, "already ended") {
			t.Errorf("half %d after restart: %d %q, want already ended", c[1], r.Code, r.Remark)
		}
	}
	h2.b.tx.mu.Lock()
	p := h2.b.tx.pending[qoC]
	npending := len(h2.b.tx.pending)
	h2.b.tx.mu.Unlock()
	if p == nil || p.checks != 3 || npending != 1 {
		t.Fatalf("after restart pending %d entries, C = %+v; want C with 3 checks", npending, p)
	}
	if got := h2.b.store.MaxOffset(topic, 0); got != 3 {
		t.Fatalf("real queue max offset %d, want 3 (create + A + D)", got)
	}
	if r := h2.invoke(remoting.EndTransaction, endTxExt(group, cloC, qoC, tranCommit), nil); r.Code != remoting.Success || r.Remark != "" {
		t.Fatalf("commit C after restart: %d %q", r.Code, r.Remark)
	}
	if got := h2.b.store.MaxOffset(topic, 0); got != 4 {
		t.Fatalf("real queue max offset %d after committing C, want 4", got)
	}
	if off, ok := h2.b.offsets.Query(transCheckGroup, topicTransHalf, 0); !ok || off > qoC {
		t.Fatalf("CID_RMQ_SYS_TRANS half progress %d %v", off, ok)
	}
}

// WaitTx polls the transaction service state until cond holds.
func WaitTx(t testing.TB, b *Broker, cond func(*txService) bool) {
	t.Helper()
	waitFor(t, "transaction state", 30*time.Second, func() bool {
		b.tx.mu.Lock()
		defer b.tx.mu.Unlock()
		return cond(b.tx)
	})
}

// TestTransactionStateReplaysAfterCrash puts back an older transactionCheck.json
// before restarting, as after a crash between two saves: replaying the op and
// half queues from the saved offsets must restore every ended transaction.
func TestTransactionStateReplaysAfterCrash(t *testing.T) {
	dir := t.TempDir()
	sets := []string{"store.storePathRootDir=" + dir, "broker.checkTransactionMessageEnable=false"}
	h := startDataBroker(t, sets...)
	const topic, group = "TxCrash", "TxCrashPG"
	h.send(topic, 0, "", "create")
	cloA, qoA, _ := h.sendHalf(topic, 0, group, "")
	cloB, qoB, _ := h.sendHalf(topic, 0, group, "")
	cloC, qoC, _ := h.sendHalf(topic, 0, group, "")
	h.invoke(remoting.EndTransaction, endTxExt(group, cloA, qoA, tranCommit), nil)
	WaitTx(t, h.b, func(tx *txService) bool { return tx.scan > qoC })
	if err := h.b.tx.persist(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config", transactionCheckFile)
	stale, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h.invoke(remoting.EndTransaction, endTxExt(group, cloC, qoC, tranCommit), nil)
	h.invoke(remoting.EndTransaction, endTxExt(group, cloB, qoB, tranRollback), nil)
	cloD, qoD, _ := h.sendHalf(topic, 0, group, "")
	h.invoke(remoting.EndTransaction, endTxExt(group, cloD, qoD, tranCommit), nil)
	cloE, qoE, _ := h.sendHalf(topic, 0, group, "")
	h.stop()
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}

	h2 := startDataBroker(t, sets...)
	for _, c := range [][2]int64{{cloA, qoA}, {cloB, qoB}, {cloC, qoC}, {cloD, qoD}} {
		if r := h2.invoke(remoting.EndTransaction, endTxExt(group, c[0], c[1], tranCommit), nil); !strings.Contains(r.Remark, "already ended") {
			t.Errorf("half %d after the crash: %d %q, want already ended", c[1], r.Code, r.Remark)
		}
	}
	WaitTx(t, h2.b, func(tx *txService) bool { return tx.scan > qoE })
	h2.b.tx.mu.Lock()
	_, ePending := h2.b.tx.pending[qoE]
	npending := len(h2.b.tx.pending)
	h2.b.tx.mu.Unlock()
	if !ePending || npending != 1 {
		t.Fatalf("pending after the crash: %d entries, E pending %v", npending, ePending)
	}
	if r := h2.invoke(remoting.EndTransaction, endTxExt(group, cloE, qoE, tranCommit), nil); r.Code != remoting.Success || r.Remark != "" {
		t.Fatalf("commit E: %d %q", r.Code, r.Remark)
	}
	if got := h2.b.store.MaxOffset(topic, 0); got != 5 {
		t.Fatalf("real queue max offset %d, want 5 (create + A, C, D, E)", got)
	}
}

// TestTransactionPendingBounded (#16): with transactionMaxPending reached,
// the half-queue scan waits instead of tracking more unresolved half
// messages; when some resolve, the rest are picked up, and none is lost.
func TestTransactionPendingBounded(t *testing.T) {
	h := startDataBroker(t, "broker.checkTransactionMessageEnable=false", "broker.transactionMaxPending=3")
	const topic, group = "TxBounded", "TxBoundedPG"
	h.send(topic, 0, "", "create")
	type half struct{ clo, qo int64 }
	var halves []half
	sendHalves := func(n int) {
		for range n {
			clo, qo, _ := h.sendHalf(topic, 0, group, "")
			halves = append(halves, half{clo, qo})
		}
	}
	sendHalves(3)
	WaitTx(t, h.b, func(tx *txService) bool { return len(tx.pending) == 3 && tx.scan > halves[2].qo })
	pauses := h.b.tx.scanPauses.Load()
	sendHalves(5)
	WaitTx(t, h.b, func(tx *txService) bool { return tx.scanPauses.Load() > pauses })
	h.b.tx.mu.Lock()
	tracked, scan := len(h.b.tx.pending), h.b.tx.scan
	h.b.tx.mu.Unlock()
	if tracked != 3 || scan != halves[2].qo+1 {
		t.Fatalf("at the bound: tracking %d half messages, scan at %d; want 3, stopped at %d", tracked, scan, halves[2].qo+1)
	}
	// Resolve every half, in order: the first three free room, the scan
	// moves on (the others already ended), and every commit lands in the
	// real queue.
	for _, x := range halves {
		if r := h.invoke(remoting.EndTransaction, endTxExt(group, x.clo, x.qo, tranCommit), nil); r.Code != remoting.Success {
			t.Fatalf("commit half %d: %d %q", x.qo, r.Code, r.Remark)
		}
	}
	WaitTx(t, h.b, func(tx *txService) bool { return tx.scan > halves[len(halves)-1].qo && len(tx.pending) == 0 })
	if got := h.b.store.MaxOffset(topic, 0); got != 9 {
		t.Fatalf("real queue max offset %d, want 9 (create + 8 commits)", got)
	}
}
