package broker

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// handleGetBrokerRuntimeInfo serves GET_BROKER_RUNTIME_INFO (28), which
// mqadmin clusterList and brokerStatus print and rocketmq-exporter scrapes: a
// KVTable of the keys RocketMQ's AdminBrokerProcessor.prepareRuntimeInfo emits.
func (b *Broker) handleGetBrokerRuntimeInfo(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	now := time.Now()
	st := &b.stats
	put, get := st.putNums.Load(), st.getNums.Load()
	st.mu.Lock()
	ymPut, ymGet, tmPut, tmGet := st.yesterdayMorningPut, st.yesterdayMorningGet, st.todayMorningPut, st.todayMorningGet
	st.mu.Unlock()

	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	t := map[string]string{
		"brokerVersionDesc":                     "V4_9_8",
		"brokerVersion":                         strconv.Itoa(int(remoting.Version)),
		"msgPutTotalYesterdayMorning":           i64(ymPut),
		"msgPutTotalTodayMorning":               i64(tmPut),
		"msgPutTotalTodayNow":                   i64(put),
		"msgGetTotalYesterdayMorning":           i64(ymGet),
		"msgGetTotalTodayMorning":               i64(tmGet),
		"msgGetTotalTodayNow":                   i64(get),
		"sendThreadPoolQueueSize":               "0",
		"sendThreadPoolQueueCapacity":           "10000",
		"pullThreadPoolQueueSize":               "0",
		"pullThreadPoolQueueCapacity":           "100000",
		"queryThreadPoolQueueSize":              "0",
		"queryThreadPoolQueueCapacity":          "20000",
		"EndTransactionQueueSize":               "0",
		"EndTransactionThreadPoolQueueCapacity": "100000",
		"sendThreadPoolQueueHeadWaitTimeMills":  "0",
		"pullThreadPoolQueueHeadWaitTimeMills":  "0",
		"queryThreadPoolQueueHeadWaitTimeMills": "0",
		"dispatchBehindBytes":                   "0",
		"pageCacheLockTimeMills":                "0",
		"putMessageEntireTimeMax":               i64(st.putTimeMaxNs.Load() / int64(time.Millisecond)),
		"putMessageTimesTotal":                  i64(put),
		"putMessageFailedTimes":                 i64(st.putFailed.Load()),
		"putMessageSizeTotal":                   i64(st.putSize.Load()),
		"putMessageAverageSize":                 strconv.FormatFloat(avg(st.putSize.Load(), put), 'f', 2, 64),
		"getMessageEntireTimeMax":               "0",
		"putTps":                                st.rates(func(s statsSample) int64 { return s.put }, put, now),
		"getTransferedTps":                      st.rates(func(s statsSample) int64 { return s.getTransferred }, get, now),
		"getFoundTps":                           st.rates(func(s statsSample) int64 { return s.found }, st.getFound.Load(), now),
		"getMissTps":                            st.rates(func(s statsSample) int64 { return s.miss }, st.getMiss.Load(), now),
		"getTotalTps":                           st.rates(func(s statsSample) int64 { return s.found + s.miss }, st.getFound.Load()+st.getMiss.Load(), now),
		"bootTimestamp":                         i64(b.bootTime.UnixMilli()),
		"runtime":                               runtimeString(now.Sub(b.bootTime)),
		"startAcceptSendRequestTimeStamp":       "0",
		"earliestMessageTimeStamp":              i64(b.earliestMessageTime()),
		"commitLogMinOffset":                    i64(b.store.MinPhyOffset()),
		"commitLogMaxOffset":                    i64(b.store.MaxPhyOffset()),
		"remainTransientStoreBufferNumbs":       "0",
		"remainHowManyDataToCommit":             "0",
		"remainHowManyDataToFlush":              "0",
	}
	b.scheduleRuntimeInfo(t)
	if total, free, ok := diskSpace(b.storeDir(true)); ok {
		t["commitLogDirCapacity"] = "Total : " + humanBytes(total) + ", Free : " + humanBytes(free) + "."
		t["commitLogDiskRatio"] = strconv.FormatFloat(1-float64(free)/float64(total), 'f', -1, 64)
	}
	if total, free, ok := diskSpace(b.storeDir(false)); ok {
		t["consumeQueueDiskRatio"] = strconv.FormatFloat(1-float64(free)/float64(total), 'f', -1, 64)
	}
	data, err := json.Marshal(body.KVTable{Table: t})
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = data
	return resp
}

// earliestMessageTime approximates RocketMQ's earliest store time: the store
// time of the oldest message in the commit log, read from its first record.
func (b *Broker) earliestMessageTime() int64 {
	min := b.store.MinPhyOffset()
	if min >= b.store.MaxPhyOffset() {
		return 0
	}
	rec, err := b.store.ReadMessage(min)
	if err != nil || len(rec) < 64 {
		return 0
	}
	return message.RecordStoreTimestamp(rec)
}

func avg(sum, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n)
}

func diskSpace(dir string) (total, free uint64, ok bool) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Blocks == 0 {
		return 0, 0, false
	}
	return fs.Blocks * uint64(fs.Bsize), fs.Bavail * uint64(fs.Bsize), true
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	exp := int(math.Log(float64(n)) / math.Log(unit))
	if exp > 6 {
		exp = 6
	}
	return strconv.FormatFloat(float64(n)/math.Pow(unit, float64(exp)), 'f', 2, 64) + " " + "KMGTPE"[exp-1:exp] + "iB"
}

// runtimeString formats an uptime as RocketMQ does: "[ d days, h hours, m minutes, s seconds ]".
func runtimeString(d time.Duration) string {
	s := int64(d.Seconds())
	return "[ " + strconv.FormatInt(s/86400, 10) + " days, " + strconv.FormatInt(s%86400/3600, 10) + " hours, " +
		strconv.FormatInt(s%3600/60, 10) + " minutes, " + strconv.FormatInt(s%60, 10) + " seconds ]"
}

// storeDir is the directory whose disk the runtime info reports: the
// engine's commit-log (log) or consume-queue directory where it has them
// (the native engine), else the store's root.
func (b *Broker) storeDir(log bool) string {
	if d, ok := b.store.(interface {
		CommitLogDir() string
		ConsumeQueueDir() string
	}); ok {
		if log {
			return d.CommitLogDir()
		}
		return d.ConsumeQueueDir()
	}
	return b.storeCfg.StorePathRootDir
}
