package broker

import (
	"strconv"
	"testing"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
)

// TestSyncMasterWithoutSlaveAnswers: on a SYNC_MASTER with no slave, every
// put a client waits on goes through the replication wait, which answers
// SLAVE_NOT_AVAILABLE at once: a half message answers it as a send does,
// CONSUMER_SEND_MSG_BACK answers SYSTEM_ERROR (Java: only PUT_OK succeeds),
// and END_TRANSACTION still commits (Java answers SUCCESS for a stored message).
func TestSyncMasterWithoutSlaveAnswers(t *testing.T) {
	h := startDataBroker(t, "store.brokerRole=SYNC_MASTER")
	const topic, group = "SyncNoSlave", "SyncPG"
	if r := h.invoke(remoting.SendMessage, sendExt(topic, 0, propStr("UNIQ_KEY", "U1")), []byte("plain")); r.Code != remoting.SlaveNotAvailable {
		t.Fatalf("send: %d %q", r.Code, r.Remark)
	}
	ext := sendExt(topic, 0, propStr("UNIQ_KEY", "U2", "TRAN_MSG", "true", "PGROUP", group))
	ext["producerGroup"] = group
	ext["sysFlag"] = strconv.Itoa(int(message.SysFlagTranPrepared))
	r := h.invoke(remoting.SendMessage, ext, []byte("half"))
	if r.Code != remoting.SlaveNotAvailable {
		t.Fatalf("half message: %d %q", r.Code, r.Remark)
	}
	_, clo, err := message.ParseOffsetMsgID(r.Ext("msgId"))
	if err != nil {
		t.Fatalf("half msgId %q: %v", r.Ext("msgId"), err)
	}
	qo := extInt(t, r, "queueOffset")
	if r := h.invoke(remoting.EndTransaction, endTxExt(group, clo, qo, message.SysFlagTranCommit), nil); r.Code != remoting.Success {
		t.Fatalf("END_TRANSACTION: %d %q", r.Code, r.Remark)
	}
	if n := h.b.store.MaxOffset(topic, 0); n != 2 {
		t.Fatalf("real queue holds %d messages, want 2", n)
	}
	r = h.invoke(remoting.ConsumerSendMsgBack, map[string]string{
		"group": "SyncG", "offset": strconv.FormatInt(clo, 10), "delayLevel": "0", "originMsgId": "", "unitMode": "false",
	}, nil)
	if r.Code != remoting.SystemError || r.Remark != "SLAVE_NOT_AVAILABLE" {
		t.Fatalf("CONSUMER_SEND_MSG_BACK: %d %q", r.Code, r.Remark)
	}
}
