package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// nativeSender sends with mqd's own remoting client instead of the official Go
// client: the same SEND_MESSAGE / SEND_BATCH_MESSAGE requests the clients send,
// without the client library's per-message work, so that a 2-core machine can
// load a broker harder than the Go client itself can run. Like the clients, it
// resolves the topic's route from the name server (falling back to TBW102 so
// auto-creation works) and sends round-robin over the writable queues of every
// master.
type nativeSender struct {
	clients []*remoting.Client
	queues  []nativeQueue
	next    atomic.Uint64
	group   string
	topic   string
	topics  []string // --topics > 1: the sends go round-robin over these
	tag     string
	timeout time.Duration
	idBase  string // UNIQ_KEY prefix: pid and start time
	seq     atomic.Uint64
}

type nativeQueue struct {
	addr    string
	queueID int32
}

func newNativeSender(ctx context.Context, o producerOptions) (*nativeSender, error) {
	s := &nativeSender{group: o.group, topic: o.topic, tag: o.tag, timeout: o.timeout}
	if o.topics > 1 {
		// Many topics the broker auto-creates on first send (RocketMQ's
		// defaultTopicQueueNums, 4 queues each); they share one route: the
		// first one's, or TBW102's while it does not exist.
		for i := range o.topics {
			s.topics = append(s.topics, fmt.Sprintf("%s-%05d", o.topic, i))
		}
		s.topic = s.topics[0]
	}
	for i := 0; i < o.producers; i++ {
		s.clients = append(s.clients, o.remotingClient())
	}
	route, err := s.route(ctx, splitAddrs(o.namesrv))
	if err != nil {
		s.close()
		return nil, err
	}
	masters := map[string]string{}
	for _, bd := range route.BrokerDatas {
		if a := bd.MasterAddr(); a != "" {
			masters[bd.BrokerName] = a
		}
	}
	for _, qd := range route.QueueDatas {
		addr, ok := masters[qd.BrokerName]
		if !ok || qd.Perm&body.PermWrite == 0 {
			continue
		}
		for q := int32(0); q < qd.WriteQueueNums; q++ {
			s.queues = append(s.queues, nativeQueue{addr: addr, queueID: q})
		}
	}
	if len(s.queues) == 0 {
		s.close()
		return nil, fmt.Errorf("topic %s has no writable queue on a master", o.topic)
	}
	var b [10]byte
	binary.BigEndian.PutUint32(b[0:], uint32(os.Getpid()))
	binary.BigEndian.PutUint32(b[4:], uint32(time.Now().Unix()))
	binary.BigEndian.PutUint16(b[8:], uint16(rand.Uint32()))
	s.idBase = strings.ToUpper(hex.EncodeToString(b[:]))
	return s, nil
}

// route asks the name servers for the topic's route, then for TBW102's (capped
// at 4 queues per broker, as the clients do) when the topic does not exist yet.
func (s *nativeSender) route(ctx context.Context, namesrvs []string) (*body.TopicRouteData, error) {
	return fetchRoute(ctx, s.clients[0], namesrvs, s.topic, "TBW102")
}

// fetchRoute returns the route of the first of topics a name server knows.
// TBW102's (the auto-creation template) is capped at 4 queues per broker, as
// the clients cap it.
func fetchRoute(ctx context.Context, c *remoting.Client, namesrvs []string, topics ...string) (*body.TopicRouteData, error) {
	var lastErr error
	for _, topic := range topics {
		for _, ns := range namesrvs {
			ns = strings.TrimPrefix(strings.TrimPrefix(ns, "http://"), "https://")
			cctx, cancel := context.WithTimeout(ctx, 6*time.Second)
			resp, err := c.Invoke(cctx, ns, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
			cancel()
			if err != nil {
				lastErr = fmt.Errorf("route of %s from %s: %w", topic, ns, err)
				continue
			}
			if resp.Code != remoting.Success {
				lastErr = fmt.Errorf("route of %s from %s: code %d %s", topic, ns, resp.Code, resp.Remark)
				continue
			}
			rd, err := body.DecodeTopicRouteData(resp.Body)
			if err != nil {
				return nil, fmt.Errorf("route of %s: %w", topic, err)
			}
			if topic == "TBW102" {
				for i := range rd.QueueDatas {
					rd.QueueDatas[i].WriteQueueNums = min(rd.QueueDatas[i].WriteQueueNums, 4)
				}
			}
			return rd, nil
		}
	}
	return nil, lastErr
}

// send sends n messages in one request (a batch when n > 1). brokerErr is set
// when the broker answered with an error code.
func (s *nativeSender) send(ctx context.Context, payload []byte, n int) (brokerErr bool, err error) {
	i := s.next.Add(1)
	topic, qi := s.topic, i
	if n := uint64(len(s.topics)); n > 0 {
		topic, qi = s.topics[i%n], i/n // every topic gets every queue in turn
	}
	q := s.queues[qi%uint64(len(s.queues))]
	c := s.clients[i%uint64(len(s.clients))]
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	qid := strconv.Itoa(int(q.queueID))
	var req *remoting.Command
	if n == 1 {
		props := "UNIQ_KEY\x01" + s.uniqKey() + "\x02"
		if s.tag != "" {
			props += "TAGS\x01" + s.tag + "\x02"
		}
		req = remoting.NewRequestFields(remoting.SendMessage, remoting.Fields{
			{Key: "producerGroup", Value: s.group}, {Key: "topic", Value: topic}, {Key: "defaultTopic", Value: "TBW102"},
			{Key: "defaultTopicQueueNums", Value: "4"}, {Key: "queueId", Value: qid}, {Key: "sysFlag", Value: "0"},
			{Key: "bornTimestamp", Value: now}, {Key: "flag", Value: "0"}, {Key: "properties", Value: props},
			{Key: "reconsumeTimes", Value: "0"}, {Key: "unitMode", Value: "false"}, {Key: "maxReconsumeTimes", Value: "0"},
			{Key: "batch", Value: "false"},
		}, payload)
	} else {
		req = remoting.NewRequestFields(remoting.SendBatchMessage, remoting.Fields{
			{Key: "a", Value: s.group}, {Key: "b", Value: topic}, {Key: "c", Value: "TBW102"}, {Key: "d", Value: "4"},
			{Key: "e", Value: qid}, {Key: "f", Value: "0"}, {Key: "g", Value: now}, {Key: "h", Value: "0"},
			{Key: "i", Value: ""}, {Key: "j", Value: "0"}, {Key: "k", Value: "false"}, {Key: "l", Value: "0"},
			{Key: "m", Value: "true"},
		}, s.batchBody(payload, n))
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := c.Invoke(cctx, q.addr, req)
	if err != nil {
		return false, err
	}
	switch resp.Code {
	case remoting.Success, remoting.FlushDiskTimeout, remoting.FlushSlaveTimeout, remoting.SlaveNotAvailable:
		return false, nil
	}
	return true, fmt.Errorf("CODE: %d DESC: %s", resp.Code, resp.Remark)
}

// batchBody encodes n copies of payload as SEND_BATCH_MESSAGE records.
func (s *nativeSender) batchBody(payload []byte, n int) []byte {
	props := ""
	if s.tag != "" {
		props = "TAGS\x01" + s.tag + "\x02"
	}
	one := 20 + len(payload) + 2 + len(props)
	buf := make([]byte, 0, n*one)
	for i := 0; i < n; i++ {
		buf = binary.BigEndian.AppendUint32(buf, uint32(one))
		buf = binary.BigEndian.AppendUint32(buf, 0) // magic
		buf = binary.BigEndian.AppendUint32(buf, 0) // body CRC, recomputed by the broker
		buf = binary.BigEndian.AppendUint32(buf, 0) // flag
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
		buf = append(buf, payload...)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(props)))
		buf = append(buf, props...)
	}
	return buf
}

// uniqKey makes a 32-hex-character message ID like the clients' UNIQ_KEY.
func (s *nativeSender) uniqKey() string {
	var b [6]byte
	seq := s.seq.Add(1)
	binary.BigEndian.PutUint16(b[0:], uint16(seq>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(seq))
	return s.idBase + hex.EncodeToString(b[:])
}

func (s *nativeSender) close() {
	for _, c := range s.clients {
		_ = c.Close()
	}
}
