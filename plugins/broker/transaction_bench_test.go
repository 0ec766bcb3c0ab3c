package broker

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
)

// BenchmarkTransactionSendCommit measures the broker side of a committed
// transaction: the half message send, then END_TRANSACTION (commit: real
// message and op record), from 64 goroutines (GOMAXPROCS x 64/GOMAXPROCS),
// calling the handlers directly. One op is one whole transaction.
func BenchmarkTransactionSendCommit(b *testing.B) {
	h := startDataBroker(b)
	const topic, group = "BenchTx", "BenchTxPG"
	h.send(topic, 0, "", "create")
	body := make([]byte, 1024)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ext := sendExt(topic, 0, propStr("UNIQ_KEY", "C0A8000100002A9F0000000000000001", "TAGS", "TagA",
			"TRAN_MSG", "true", "PGROUP", group))
		ext["producerGroup"] = group
		ext["sysFlag"] = strconv.Itoa(int(message.SysFlagTranPrepared))
		req := remoting.NewRequest(remoting.SendMessage, ext, body)
		for pb.Next() {
			resp := h.b.handleSend(nil, req)
			if resp.Code != remoting.Success {
				b.Errorf("half send: %d %q", resp.Code, resp.Remark)
				return
			}
			_, clo, err := message.ParseOffsetMsgID(resp.Ext("msgId"))
			if err != nil {
				b.Errorf("msgId: %v", err)
				return
			}
			qo, _ := resp.ExtInt64("queueOffset")
			end := remoting.NewRequest(remoting.EndTransaction, endTxExt(group, clo, qo, tranCommit), nil)
			if r := h.b.handleEndTransaction(nil, end); r.Code != remoting.Success || r.Remark != "" {
				b.Errorf("commit: %d %q", r.Code, r.Remark)
				return
			}
		}
	})
	b.StopTimer()
	if got := h.b.store.MaxOffset(topic, 0); got != int64(b.N)+1 {
		b.Fatalf("real queue holds %d messages after %d commits", got-1, b.N)
	}
}
