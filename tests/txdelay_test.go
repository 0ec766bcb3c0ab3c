package tests

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestTransactionCommitDelayed: a transaction message carrying DELAY is held
// as a half message, and its commit is delayed like a normal send: it reaches
// the real topic through the schedule topic, not before the level's delay
// counted from the commit, once, with DELAY removed.
func TestTransactionCommitDelayed(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, ClusterOptions{Broker: append([]string{shortDelayLevels}, fastTxChecks...)})
	topic := UniqueName("TxDelay")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 2)
	tc := startTimedConsumer(t, c.NameSrvAddr, topic, UniqueName("TxDelayG"), nil)

	var committedAt atomic.Int64
	l := newTxListener(func(string) primitive.LocalTransactionState {
		committedAt.Store(time.Now().UnixMilli())
		return primitive.CommitMessageState
	}, func(string) primitive.LocalTransactionState { return primitive.CommitMessageState })
	p := newTxProducer(t, c.NameSrvAddr, UniqueName("TxDelayPG"), "", l)

	const level = 3 // 3 s
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte("delayed-commit")).WithDelayTimeLevel(level))
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send delayed message in transaction: %v %+v", err, res)
	}
	waitOps(t, c, 1)
	st := brokerStore(t, c)
	if n := st.MaxOffset("SCHEDULE_TOPIC_XXXX", level-1); n < 1 {
		t.Errorf("the committed message did not go through the schedule topic (level %d queue max %d)", level, n)
	}
	WaitFor(t, 60*time.Second, func() bool { return tc.distinct() >= 1 }, "the delayed committed message is consumed")
	id := res.MsgID
	got := tc.get(id)
	if len(got) != 1 {
		t.Fatalf("message %s delivered %d times (%d distinct)", id, len(got), tc.distinct())
	}
	m := got[0].msg
	if early := committedAt.Load() + level*1000; m.StoreTimestamp < early {
		t.Errorf("delivered %d ms before the delay after the commit ended", early-m.StoreTimestamp)
	}
	if m.Topic != topic || string(m.Body) != "delayed-commit" || m.GetProperty("DELAY") != "" || m.GetProperty("REAL_TOPIC") != topic {
		t.Errorf("delivered message: topic %s body %q props %v", m.Topic, m.Body, m.GetProperties())
	}
	if n := storedCount(t, c, topic, 2); n != 1 {
		t.Errorf("real topic holds %d messages, want 1", n)
	}
}
