package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// Prometheus metrics with rocketmq-exporter's names and labels, so that its
// Grafana dashboard (10477) and alert rules work against mqd without running
// the exporter. Everything is computed at scrape time from the counters the
// broker keeps anyway (a custom Collector): scraping adds nothing to the send
// or pull path. They are served on broker.metricsAddr (default 127.0.0.1:5557,
// the exporter's port) and at /metrics of the admin endpoint.

func init() {
	config.Register(config.Key{Path: "broker.metricsAddr", Default: "127.0.0.1:5557",
		Doc: `Prometheus /metrics listener ("" disables; the admin endpoint serves /metrics as well)`})
}

// brokerCollector implements prometheus.Collector over a Broker.
type brokerCollector struct {
	b *Broker
}

var (
	brokerLabels  = []string{"cluster", "brokerIP", "broker"}
	topicLabels   = []string{"cluster", "broker", "topic"}
	groupLabels   = []string{"cluster", "broker", "topic", "group"}
	diffLabels    = []string{"group", "topic", "countOfOnlineConsumers", "msgModel"}
	runtimeLabels = []string{"cluster", "brokerIP", "brokerHost", "des", "boottime", "broker_version"}

	descBrokerTPS      = prometheus.NewDesc("rocketmq_broker_tps", "BrokerPutNums", brokerLabels, nil)
	descBrokerQPS      = prometheus.NewDesc("rocketmq_broker_qps", "BrokerGetNums", brokerLabels, nil)
	descProducerTPS    = prometheus.NewDesc("rocketmq_producer_tps", "TopicPutNums", topicLabels, nil)
	descProducerSize   = prometheus.NewDesc("rocketmq_producer_message_size", "TopicPutMessageSize", topicLabels, nil)
	descProducerOffset = prometheus.NewDesc("rocketmq_producer_offset", "TopicOffset", topicLabels, nil)
	descConsumerTPS    = prometheus.NewDesc("rocketmq_consumer_tps", "GroupGetNums", groupLabels, nil)
	descConsumerSize   = prometheus.NewDesc("rocketmq_consumer_message_size", "GroupGetMessageSize", groupLabels, nil)
	descConsumerOffset = prometheus.NewDesc("rocketmq_consumer_offset", "GroupOffset", groupLabels, nil)
	descGroupDiff      = prometheus.NewDesc("rocketmq_group_diff", "GroupDiff", diffLabels, nil)
	descGroupRetryDiff = prometheus.NewDesc("rocketmq_group_retrydiff", "GroupRetryDiff", diffLabels, nil)
	descGroupDLQDiff   = prometheus.NewDesc("rocketmq_group_dlqdiff", "GroupDLQDiff", diffLabels, nil)
	descGroupCount     = prometheus.NewDesc("rocketmq_group_count", "GroupCount", []string{"caddr", "localaddr", "group"}, nil)
	descProducerCount  = prometheus.NewDesc("rocketmq_producer_count", "ProducerCount", []string{"cluster", "broker", "group"}, nil)
	descStoreMaxOffset = prometheus.NewDesc("mqd_store_commitlog_max_offset_bytes", "Commit log max physical offset", []string{"broker"}, nil)
	descStorePutFailed = prometheus.NewDesc("mqd_store_put_failed_total", "Puts the store refused", []string{"broker"}, nil)
	descBrokerUp       = prometheus.NewDesc("mqd_broker_up", "1 while the broker app is serving", []string{"cluster", "broker", "brokerId"}, nil)
	descMessagesIn     = prometheus.NewDesc("mqd_messages_in_total", "Messages stored", []string{"broker", "topic"}, nil)
	descMessagesOut    = prometheus.NewDesc("mqd_messages_out_total", "Messages delivered to consumers", []string{"broker", "topic", "group"}, nil)
	// Controller mode (replicas.go).
	descMasterEpoch  = prometheus.NewDesc("mqd_broker_master_epoch", "Controller mode: the master epoch this replica follows", []string{"broker", "brokerId"}, nil)
	descSyncSetSize  = prometheus.NewDesc("mqd_broker_syncstateset_size", "Controller mode: replicas in the SyncStateSet, master included", []string{"broker", "brokerId"}, nil)
	descMasterFenced = prometheus.NewDesc("mqd_broker_fenced", "Controller mode: 1 while this master refuses writes (lease not confirmed, or replaced)", []string{"broker", "brokerId"}, nil)
	descRoleChanges  = prometheus.NewDesc("mqd_broker_role_changes_total", "Controller mode: role changes of this process", []string{"broker", "brokerId"}, nil)
	runtimeDescs     = map[string]*prometheus.Desc{}
)

// runtimeGauges maps GET_BROKER_RUNTIME_INFO keys to the exporter's
// rocketmq_brokeruntime_* names (for "a b c" rates, one name per field).
var runtimeGauges = []struct {
	key   string
	names []string
}{
	{"commitLogDiskRatio", []string{"commitlog_disk_ratio"}},
	{"consumeQueueDiskRatio", []string{"consumequeue_disk_ratio"}},
	{"commitLogMaxOffset", []string{"commitlog_maxoffset"}},
	{"commitLogMinOffset", []string{"commitlog_minoffset"}},
	{"dispatchBehindBytes", []string{"dispatch_behind_bytes"}},
	{"dispatchMaxBuffer", []string{"dispatch_maxbuffer"}},
	{"earliestMessageTimeStamp", []string{"earliest_message_timestamp"}},
	{"pageCacheLockTimeMills", []string{"pagecache_lock_time_mills"}},
	{"putTps", []string{"put_tps10", "put_tps60", "put_tps600"}},
	{"getFoundTps", []string{"getfound_tps10", "getfound_tps60", "getfound_tps600"}},
	{"getMissTps", []string{"getmiss_tps10", "getmiss_tps60", "getmiss_tps600"}},
	{"getTotalTps", []string{"gettotal_tps10", "gettotal_tps60", "gettotal_tps600"}},
	{"getTransferedTps", []string{"gettransfered_tps10", "gettransfered_tps60", "gettransfered_tps600"}},
	{"putLatency99", []string{"put_latency_99"}},
	{"putLatency999", []string{"put_latency_999"}},
	{"putMessageEntireTimeMax", []string{"putmessage_entire_time_max"}},
	{"getMessageEntireTimeMax", []string{"getmessage_entire_time_max"}},
	{"putMessageTimesTotal", []string{"putmessage_times_total"}},
	{"putMessageSizeTotal", []string{"put_message_size_total"}},
	{"putMessageAverageSize", []string{"put_message_average_size"}},
	{"msgPutTotalTodayMorning", []string{"msg_puttotal_todaymorning"}},
	{"msgPutTotalYesterdayMorning", []string{"msg_puttotal_yesterdaymorning"}},
	{"msgPutTotalTodayNow", []string{"msg_put_total_today_now"}},
	{"msgGetTotalTodayMorning", []string{"msg_gettotal_todaymorning"}},
	{"msgGetTotalYesterdayMorning", []string{"msg_gettotal_yesterdaymorning"}},
	{"msgGetTotalTodayNow", []string{"msg_gettotal_today_now"}},
	{"sendThreadPoolQueueSize", []string{"send_threadpool_queue_size"}},
	{"sendThreadPoolQueueCapacity", []string{"send_threadpool_queue_capacity"}},
	{"sendThreadPoolQueueHeadWaitTimeMills", []string{"send_threadpool_queue_headwait_timemills"}},
	{"pullThreadPoolQueueSize", []string{"pull_threadpool_queue_size"}},
	{"pullThreadPoolQueueCapacity", []string{"pull_threadpool_queue_capacity"}},
	{"pullThreadPoolQueueHeadWaitTimeMills", []string{"pull_threadpool_queue_headwait_timemills"}},
	{"queryThreadPoolQueueSize", []string{"query_threadpool_queue_size"}},
	{"queryThreadPoolQueueCapacity", []string{"query_threadpool_queue_capacity"}},
	{"queryThreadPoolQueueHeadWaitTimeMills", []string{"query_threadpool_queue_headwait_timemills"}},
	{"remainTransientStoreBufferNumbs", []string{"remain_transientstore_buffer_numbs"}},
	{"remainHowManyDataToFlush", []string{"remain_howmanydata_toflush"}},
	{"startAcceptSendRequestTimeStamp", []string{"start_accept_sendrequest_time"}},
}

func init() {
	for _, g := range runtimeGauges {
		for _, n := range g.names {
			runtimeDescs[n] = prometheus.NewDesc("rocketmq_brokeruntime_"+n, g.key, runtimeLabels, nil)
		}
	}
	for _, n := range []string{"commitlogdir_capacity_total", "commitlogdir_capacity_free"} {
		runtimeDescs[n] = prometheus.NewDesc("rocketmq_brokeruntime_"+n, "commitLogDirCapacity", runtimeLabels, nil)
	}
}

// Describe sends the fixed descriptors (the collector is "checked").
func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBrokerTPS, descBrokerQPS, descProducerTPS, descProducerSize, descProducerOffset,
		descConsumerTPS, descConsumerSize, descConsumerOffset, descGroupDiff, descGroupRetryDiff, descGroupDLQDiff,
		descGroupCount, descProducerCount, descStoreMaxOffset, descStorePutFailed, descBrokerUp, descMessagesIn, descMessagesOut,
		descMasterEpoch, descSyncSetSize, descMasterFenced, descRoleChanges} {
		ch <- d
	}
	for _, d := range runtimeDescs {
		ch <- d
	}
}

// Collect computes every metric from the broker's state.
func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	now := time.Now().UnixMilli()
	cluster, name := b.cfg.BrokerClusterName, b.cfg.BrokerName
	ip := b.addr
	if h, _, err := net.SplitHostPort(b.addr); err == nil {
		ip = h
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	k := &b.stats.keyed
	m, _, _ := k.brokerPut.Snapshots(now)
	gauge(descBrokerTPS, m.Tps, cluster, ip, name)
	m, _, _ = k.brokerGet.Snapshots(now)
	gauge(descBrokerQPS, m.Tps, cluster, ip, name)
	gauge(descBrokerUp, 1, cluster, name, strconv.FormatInt(b.cfg.BrokerID, 10))
	counter(descStoreMaxOffset, float64(b.store.MaxPhyOffset()), name)
	counter(descStorePutFailed, float64(b.stats.putFailed.Load()), name)
	if rm := b.controlled; rm != nil {
		st := rm.Status()
		id := strconv.FormatInt(st.BrokerID, 10)
		gauge(descMasterEpoch, float64(st.MasterEpoch), name, id)
		gauge(descSyncSetSize, float64(len(st.SyncStateSet)), name, id)
		fenced := 0.0
		if st.Fenced {
			fenced = 1
		}
		gauge(descMasterFenced, fenced, name, id)
		counter(descRoleChanges, float64(st.RoleChanges), name, id)
	}

	k.topics.Range(func(topic string, ts *topicStats) {
		m, _, _ := ts.putNums.Snapshots(now)
		gauge(descProducerTPS, m.Tps, cluster, name, topic)
		s, _, _ := ts.putSize.Snapshots(now)
		gauge(descProducerSize, s.Tps, cluster, name, topic)
		counter(descMessagesIn, float64(ts.putNums.value.Load()), name, topic)
		ts.groups.Range(func(group string, gs *groupStats) {
			m, _, _ := gs.getNums.Snapshots(now)
			gauge(descConsumerTPS, m.Tps, cluster, name, topic, group)
			s, _, _ := gs.getSize.Snapshots(now)
			gauge(descConsumerSize, s.Tps, cluster, name, topic, group)
			counter(descMessagesOut, float64(gs.getNums.value.Load()), name, topic, group)
		})
	})

	// Offsets: the topic's summed max offsets, each group's summed committed
	// offsets and its lag.
	topics, _ := b.topics.Snapshot()
	maxOf := func(topic string) (int64, map[int32]int64) {
		tc, ok := topics[topic]
		if !ok {
			return 0, nil
		}
		per := make(map[int32]int64, tc.ReadQueueNums)
		var sum int64
		for q := int32(0); q < tc.ReadQueueNums; q++ {
			mo := b.store.MaxOffset(topic, q)
			per[q] = mo
			sum += mo
		}
		return sum, per
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)
	maxes := make(map[string]map[int32]int64, len(names))
	for _, t := range names {
		sum, per := maxOf(t)
		maxes[t] = per
		counter(descProducerOffset, float64(sum), cluster, name, t)
	}
	for key, queues := range b.offsets.Table().OffsetTable {
		i := strings.LastIndexByte(key, '@')
		if i < 0 {
			continue
		}
		topic, group := key[:i], key[i+1:]
		var committed, diff int64
		for q, off := range queues {
			committed += off
			if mo, ok := maxes[topic][q]; ok && mo > off {
				diff += mo - off
			}
		}
		counter(descConsumerOffset, float64(committed), cluster, name, topic, group)
		online, model := "0", ""
		if cg, ok := b.clients.ConsumerGroup(group); ok {
			online, model = strconv.Itoa(len(cg.ClientIDs)), cg.MessageModel
		}
		switch {
		case strings.HasPrefix(topic, "%RETRY%"):
			gauge(descGroupRetryDiff, float64(diff), group, topic, online, model)
		case strings.HasPrefix(topic, "%DLQ%"):
			gauge(descGroupDLQDiff, float64(diff), group, topic, online, model)
		default:
			gauge(descGroupDiff, float64(diff), group, topic, online, model)
		}
	}
	local := b.addr
	for _, group := range b.clients.ConsumerGroups() {
		cg, ok := b.clients.ConsumerGroup(group)
		if !ok {
			continue
		}
		for _, chn := range cg.Channels {
			gauge(descGroupCount, 1, connAddrString(chn.Conn), local, group)
		}
	}
	c.collectRuntime(ch, cluster, ip)
}

// collectRuntime exports GET_BROKER_RUNTIME_INFO as rocketmq_brokeruntime_*.
func (c brokerCollector) collectRuntime(ch chan<- prometheus.Metric, cluster, ip string) {
	resp := c.b.handleGetBrokerRuntimeInfo(nil, nil)
	var kv body.KVTable
	if resp == nil || json.Unmarshal(resp.Body, &kv) != nil {
		return
	}
	t := kv.Table
	labels := []string{cluster, ip, c.b.addr, c.b.cfg.BrokerName, t["bootTimestamp"], t["brokerVersionDesc"]}
	for _, g := range runtimeGauges {
		v, ok := t[g.key]
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		for i, n := range g.names {
			if i >= len(fields) {
				break
			}
			f, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			ch <- prometheus.MustNewConstMetric(runtimeDescs[n], prometheus.GaugeValue, f, labels...)
		}
	}
	if total, free, ok := diskSpace(c.b.storeDir(true)); ok {
		ch <- prometheus.MustNewConstMetric(runtimeDescs["commitlogdir_capacity_total"], prometheus.GaugeValue, float64(total), labels...)
		ch <- prometheus.MustNewConstMetric(runtimeDescs["commitlogdir_capacity_free"], prometheus.GaugeValue, float64(free), labels...)
	}
}

// metricsServer is the broker's Prometheus endpoint.
type metricsServer struct {
	reg    *prometheus.Registry
	srv    *http.Server
	ln     net.Listener
	admin  *kernel.AdminRegistry
	addr   string // broker.metricsAddr
	source string // where the address came from
}

// provisionOps keeps what the operator endpoints need from the kernel context.
func (b *Broker) provisionOps(ctx kernel.Context) {
	b.metrics.admin = ctx.Admin()
	b.metrics.addr = ctx.Config.String("broker.metricsAddr")
	b.metrics.source = ctx.Config.Source("broker.metricsAddr")
}

// MetricsHandler returns the broker's /metrics handler (for tests and tools
// in-process).
func (b *Broker) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{})
}

// MetricsAddr returns the /metrics listener's address (nil when disabled).
func (b *Broker) MetricsAddr() net.Addr {
	if b.metrics.ln == nil {
		return nil
	}
	return b.metrics.ln.Addr()
}

// startMetrics registers the collectors and starts the listener. A default
// address that is already taken (another broker or an exporter on this host)
// only costs the standalone listener, with a warning; an address the operator
// chose must be free.
func (b *Broker) startMetrics() error {
	ms := &b.metrics
	ms.reg = prometheus.NewRegistry()
	ms.reg.MustRegister(brokerCollector{b}, pluginhost.Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := b.MetricsHandler()
	if ms.admin != nil {
		ms.admin.Handle(kernel.AdminHandler{Path: "/metrics", Handler: h, Methods: []string{"GET"},
			Doc: "Prometheus metrics (rocketmq-exporter names)"})
		ms.admin.HealthCheck("broker", func() error {
			if b.server == nil {
				return errors.New("broker not serving")
			}
			return nil
		})
	}
	if ms.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", ms.addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) && ms.source == "default" {
			b.log.Warn().Str("addr", ms.addr).Msg("Prometheus port in use: /metrics only on the admin endpoint (set broker.metricsAddr to choose another)")
			return nil
		}
		return fmt.Errorf("broker.metricsAddr: %w", err)
	}
	ms.ln = ln
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	ms.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ms.srv.Serve(ln) }()
	b.log.Info().Str("addr", ln.Addr().String()).Msg("Prometheus metrics listening")
	return nil
}

func (b *Broker) stopMetrics(ctx context.Context) {
	ms := &b.metrics
	if ms.admin != nil {
		ms.admin.Remove("/metrics")
		ms.admin.HealthCheck("broker", nil)
	}
	if ms.srv != nil {
		_ = ms.srv.Shutdown(ctx)
	}
}
