package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage/message"
)

// Crash tests with real processes: producers using the official Go client
// send to an mqd broker process that is killed with SIGKILL at random
// moments and restarted on the same data. Afterwards every message that got
// SEND_OK must be stored once, at the queue offset its send result reported,
// with each producer's messages in send order within a queue, and nothing is
// stored twice. The store uses 4 MiB commit log files so the log rolls over
// during the run. MQD_CRASH_CYCLES raises the number of kill cycles (the
// default keeps the test around half a minute).

const crashBodyPad = 700 // bytes of padding per body: files roll every ~5000 messages

// ackedMsg is one SEND_OK.
type ackedMsg struct {
	body   string
	queue  int
	offset int64
}

func crashCycles(def int) int {
	if v, err := strconv.Atoi(os.Getenv("MQD_CRASH_CYCLES")); err == nil && v > 0 && !testing.Short() {
		return v
	}
	if testing.Short() {
		return min(def, 5)
	}
	return def
}

func crashBroker(t *testing.T, flushType string) (ns, br *Process) {
	t.Helper()
	dir := t.TempDir()
	ns = StartProcess(t, "namesrv",
		"--set", "namesrv.listenPort=0",
		"--set", "namesrv.kvConfigPath="+filepath.Join(dir, "kvConfig.json"))
	props := fmt.Sprintf(`brokerClusterName=DefaultCluster
brokerName=%s
brokerId=0
listenPort=%d
namesrvAddr=%s
brokerIP1=127.0.0.1
storePathRootDir=%s
flushDiskType=%s
mappedFileSizeCommitLog=4194304
mappedFileSizeConsumeQueue=60000
flushIntervalCommitLog=200
maxHashSlotNum=5000
maxIndexNum=20000
`, UniqueName("crash"), FreePort(t), ns.NameSrvAddr, filepath.Join(dir, "store"), flushType)
	file := filepath.Join(dir, "broker.properties")
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	br = StartProcess(t, "broker", "-c", file)
	return ns, br
}

func TestCrashSyncFlushKill(t *testing.T) {
	t.Parallel()
	lost := runCrashCycles(t, "SYNC_FLUSH", crashCycles(20))
	if lost > 0 {
		t.Errorf("SYNC_FLUSH: %d acknowledged messages lost across SIGKILLs", lost)
	}
}

func TestCrashAsyncFlushKill(t *testing.T) {
	t.Parallel()
	lost := runCrashCycles(t, "ASYNC_FLUSH", crashCycles(8))
	// A process crash keeps the page cache, so even ASYNC_FLUSH should lose
	// nothing here; only a power loss (see the store's power-loss tests) can.
	t.Logf("ASYNC_FLUSH: %d acknowledged messages lost across SIGKILLs", lost)
}

// runCrashCycles drives producers through cycles of run, SIGKILL, restart and
// verifies the store; it returns how many acknowledged messages are missing.
func runCrashCycles(t *testing.T, flushType string, cycles int) int {
	ns, br := crashBroker(t, flushType)
	adm := NewAdmin(t, ns.NameSrvAddr)
	topic := UniqueName("Crash")
	const queues = 4
	adm.CreateTopic(br.BrokerAddr, topic, queues)

	const producers = 4
	var (
		mu     sync.Mutex
		acked  []ackedMsg
		failed atomic.Int64
		stop   atomic.Bool
		wg     sync.WaitGroup
		pad    = strings.Repeat("x", crashBodyPad)
	)
	for g := range producers {
		p := NewProducer(t, ns.NameSrvAddr, producer.WithRetry(0), producer.WithSendMsgTimeout(time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; !stop.Load(); seq++ {
				body := fmt.Sprintf("p%d-%08d-", g, seq)
				m := primitive.NewMessage(topic, []byte(body+pad))
				m.WithKeys([]string{body})
				res, err := p.SendSync(context.Background(), m)
				if err != nil || res.Status != primitive.SendOK {
					// Not acknowledged (broker down, timeout): the outcome is
					// unknown and the body is never sent again.
					failed.Add(1)
					time.Sleep(20 * time.Millisecond) // back off while the broker restarts
					continue
				}
				mu.Lock()
				acked = append(acked, ackedMsg{body: body, queue: res.MessageQueue.QueueId, offset: res.QueueOffset})
				mu.Unlock()
			}
		}()
	}
	ackCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	began := time.Now()
	for c := range cycles {
		// Let some sends succeed, then kill at a random moment.
		before := ackCount()
		WaitFor(t, 30*time.Second, func() bool { return ackCount() > before+20 }, "cycle %d: no sends acknowledged after restart", c)
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond) // the random kill point
		br.Kill()
		t0 := time.Now()
		br.Restart()
		if c < 3 {
			t.Logf("cycle %d: restart took %v", c, time.Since(t0))
		}
	}
	// A last stretch after the final restart, then stop the producers.
	before := ackCount()
	WaitFor(t, 30*time.Second, func() bool { return ackCount() > before+20 }, "no sends acknowledged after the last restart")
	stop.Store(true)
	wg.Wait()
	t.Logf("%s: %d kill cycles in %v, %d messages acknowledged, %d sends failed or unknown",
		flushType, cycles, time.Since(began).Round(time.Millisecond), len(acked), failed.Load())

	stored := readQueuesRaw(t, br.BrokerAddr, topic, queues)
	// Nothing stored twice; each producer's messages in send order per queue.
	seen := map[string]int{}
	for q, recs := range stored {
		lastSeq := map[string]int{}
		for off, body := range recs {
			if body == "" {
				continue
			}
			seen[body]++
			prod, seqStr, _ := strings.Cut(strings.TrimSuffix(body, "-"), "-")
			seq, _ := strconv.Atoi(seqStr)
			if prev, ok := lastSeq[prod]; ok && seq <= prev {
				t.Errorf("queue %d offset %d: %s stored after seq %d of the same producer", q, off, body, prev)
			}
			lastSeq[prod] = seq
		}
	}
	for b, n := range seen {
		if n > 1 {
			t.Errorf("%s stored %d times", b, n)
		}
	}
	lost := 0
	for _, a := range acked {
		recs := stored[a.queue]
		if a.offset >= int64(len(recs)) || recs[a.offset] != a.body {
			lost++
			if lost <= 5 {
				got := "<beyond the queue end>"
				if a.offset < int64(len(recs)) {
					got = recs[a.offset]
				}
				t.Logf("acknowledged %s at queue %d offset %d: stored %q", a.body, a.queue, a.offset, got)
			}
		}
	}
	// The index survived the crashes (rebuilt where needed): acknowledged
	// messages are found by key with QUERY_MESSAGE.
	if len(acked) > 0 {
		for _, i := range []int{0, len(acked) / 2, len(acked) - 1} {
			a := acked[i]
			if lost == 0 {
				waitQueryByKey(t, br.BrokerAddr, topic, a.body)
			}
		}
	}
	return lost
}

// readQueuesRaw pulls every queue from its min to its max offset over a raw
// remoting client and returns, per queue, the body prefix (up to the padding)
// at each queue offset ("" where nothing was read).
func readQueuesRaw(t *testing.T, addr, topic string, queues int) map[int][]string {
	t.Helper()
	c := remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	offset := func(code int16, q int) int64 {
		resp, err := c.Invoke(ctx, addr, remoting.NewRequest(code, map[string]string{"topic": topic, "queueId": strconv.Itoa(q)}, nil))
		if err != nil || resp.Code != remoting.Success {
			t.Fatalf("offset request %d for queue %d: %v %+v", code, q, err, resp)
		}
		v, _ := strconv.ParseInt(resp.Ext("offset"), 10, 64)
		return v
	}
	out := map[int][]string{}
	group := UniqueName("CrashReader")
	resp, err := c.Invoke(ctx, addr, remoting.NewRequest(remoting.UpdateAndCreateSubscriptionGroup, nil,
		[]byte(`{"groupName":"`+group+`","consumeEnable":true}`)))
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("create group %s: %v %+v", group, err, resp)
	}
	for q := range queues {
		lo, hi := offset(remoting.GetMinOffset, q), offset(remoting.GetMaxOffset, q)
		recs := make([]string, hi)
		for off := lo; off < hi; {
			req := remoting.NewRequest(remoting.PullMessage, map[string]string{
				"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q),
				"queueOffset": strconv.FormatInt(off, 10), "maxMsgNums": "32", "sysFlag": "4", // FLAG_SUBSCRIPTION: no heartbeat needed
				"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0",
			}, nil)
			resp, err := c.Invoke(ctx, addr, req)
			if err != nil {
				t.Fatalf("pull queue %d at %d: %v", q, off, err)
			}
			if resp.Code != remoting.Success {
				t.Fatalf("pull queue %d at %d (max %d): code %d %s", q, off, hi, resp.Code, resp.Remark)
			}
			n := 0
			err = message.SplitRecords(resp.Body, func(rec []byte) error {
				if _, err := message.CheckRecord(rec, true); err != nil {
					return fmt.Errorf("record at queue offset %d: %w", message.RecordQueueOffset(rec), err)
				}
				qo := message.RecordQueueOffset(rec)
				if qo < off || qo >= hi {
					return fmt.Errorf("record with queue offset %d in a pull from %d (max %d)", qo, off, hi)
				}
				body := string(message.RecordBody(rec))
				if i := strings.IndexByte(body, 'x'); i > 0 {
					body = body[:i]
				}
				recs[qo] = body
				n++
				return nil
			})
			if err != nil {
				t.Fatalf("pull queue %d: %v", q, err)
			}
			next, _ := strconv.ParseInt(resp.Ext("nextBeginOffset"), 10, 64)
			if n == 0 || next <= off {
				t.Fatalf("pull queue %d at %d: no progress (next %d, max %d)", q, off, next, hi)
			}
			off = next
		}
		out[q] = recs
	}
	return out
}

// waitQueryByKey sends QUERY_MESSAGE until the key is found (the index is
// built in the background and rebuilt after a crash).
func waitQueryByKey(t *testing.T, addr, topic, key string) {
	t.Helper()
	c := remoting.NewClient(remoting.ClientConfig{Logger: zerolog.Nop()})
	defer c.Close()
	var last string
	WaitFor(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Invoke(ctx, addr, remoting.NewRequest(remoting.QueryMessage, map[string]string{
			"topic": topic, "key": key, "maxNum": "32", "beginTimestamp": "0",
			"endTimestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10),
		}, nil))
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("code %d %s", resp.Code, resp.Remark)
		found := false
		_ = message.SplitRecords(resp.Body, func(rec []byte) error {
			_, props, _, _, _, _, _ := message.RecordFields(rec)
			if string(message.PropertyBytes(props, message.PropertyKeys)) == key {
				found = true
			}
			return nil
		})
		return resp.Code == remoting.Success && found
	}, "QUERY_MESSAGE %s/%s: %s", topic, key, last)
}
