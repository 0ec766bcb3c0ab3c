package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// Pull requests of the native consumer: what the clients' Pull() sends
// (commit-offset, long-poll and subscription bits), with the batch the push
// consumer asks for.
const (
	nativePullBatch   = 32
	nativePullSysFlag = 1 | 2 | 4 // commit offset, suspend, subscription present
	nativePullSuspend = 20 * time.Second
)

// startNativeConsumer pulls every readable queue of the topic on every master
// with mqd's own remoting client, one long-polling loop per queue, as the
// clients' pull loops do but without their per-message work (no decoding
// beyond the two timestamps, no process queue, no callback pool), so that a
// 2-core machine measures the broker rather than the client. The group's
// committed offset is where a queue starts (--from when it has none), and
// each pull commits the offset consumed so far, as a clustering consumer's
// pulls do. It returns the number of pull loops.
func startNativeConsumer(ctx context.Context, o consumerOptions, rec *consumeRecorder) (stop func(), loops int, err error) {
	c := o.remotingClient()
	route, err := fetchRoute(ctx, c, splitAddrs(o.namesrv), o.topic)
	if err != nil {
		_ = c.Close()
		return nil, 0, err
	}
	masters := map[string]string{}
	for _, bd := range route.BrokerDatas {
		if a := bd.MasterAddr(); a != "" {
			masters[bd.BrokerName] = a
		}
	}
	type queue struct {
		broker, addr string
		id           int32
	}
	var queues []queue
	for _, qd := range route.QueueDatas {
		addr, ok := masters[qd.BrokerName]
		if !ok || qd.Perm&body.PermRead == 0 {
			continue
		}
		for q := int32(0); q < qd.ReadQueueNums; q++ {
			queues = append(queues, queue{qd.BrokerName, addr, q})
		}
	}
	if len(queues) == 0 {
		_ = c.Close()
		return nil, 0, fmt.Errorf("topic %s has no readable queue on a master", o.topic)
	}
	pullCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, q := range queues {
		start, err := startOffset(ctx, c, o, q.addr, q.id)
		if err != nil {
			cancel()
			wg.Wait()
			_ = c.Close()
			return nil, 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pullLoop(pullCtx, c, o, q.broker, q.addr, q.id, start, rec)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		_ = c.Close()
	}, len(queues), nil
}

// startOffset is the group's committed offset of the queue, or its first or
// next offset (--from) when the group has none.
func startOffset(ctx context.Context, c *remoting.Client, o consumerOptions, addr string, queueID int32) (int64, error) {
	qid := strconv.Itoa(int(queueID))
	ask := func(code int16, ext map[string]string) (*remoting.Command, error) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return c.Invoke(cctx, addr, remoting.NewRequest(code, ext, nil))
	}
	resp, err := ask(remoting.QueryConsumerOffset, map[string]string{"consumerGroup": o.group, "topic": o.topic, "queueId": qid})
	if err != nil {
		return 0, fmt.Errorf("consumer offset of %s/%d: %w", o.topic, queueID, err)
	}
	if resp.Code == remoting.Success {
		return strconv.ParseInt(resp.Ext("offset"), 10, 64)
	}
	code := remoting.GetMaxOffset
	if o.from == "first" {
		code = remoting.GetMinOffset
	}
	if resp, err = ask(code, map[string]string{"topic": o.topic, "queueId": qid}); err != nil {
		return 0, fmt.Errorf("offsets of %s/%d: %w", o.topic, queueID, err)
	}
	if resp.Code != remoting.Success {
		return 0, fmt.Errorf("offsets of %s/%d: code %d %s", o.topic, queueID, resp.Code, resp.Remark)
	}
	return strconv.ParseInt(resp.Ext("offset"), 10, 64)
}

// pullLoop long-polls one queue until ctx ends. A failed pull is retried
// after a second, as the clients do after an error.
func pullLoop(ctx context.Context, c *remoting.Client, o consumerOptions, broker, addr string, queueID int32, offset int64, rec *consumeRecorder) {
	qid := strconv.Itoa(int(queueID))
	var stamps [][2]int64
	for ctx.Err() == nil {
		off := strconv.FormatInt(offset, 10)
		req := remoting.NewRequestFields(remoting.PullMessage, remoting.Fields{
			{Key: "consumerGroup", Value: o.group}, {Key: "topic", Value: o.topic}, {Key: "queueId", Value: qid},
			{Key: "queueOffset", Value: off}, {Key: "maxMsgNums", Value: strconv.Itoa(nativePullBatch)},
			{Key: "sysFlag", Value: strconv.Itoa(nativePullSysFlag)}, {Key: "commitOffset", Value: off},
			{Key: "suspendTimeoutMillis", Value: strconv.FormatInt(nativePullSuspend.Milliseconds(), 10)},
			{Key: "subscription", Value: o.filter}, {Key: "subVersion", Value: "0"}, {Key: "expressionType", Value: "TAG"},
			{Key: "bname", Value: broker},
		}, nil)
		cctx, cancel := context.WithTimeout(ctx, nativePullSuspend+10*time.Second)
		resp, err := c.Invoke(cctx, addr, req)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		now := time.Now()
		next, nerr := strconv.ParseInt(resp.Ext("nextBeginOffset"), 10, 64)
		switch resp.Code {
		case remoting.Success:
			stamps = stamps[:0]
			if err := recordStamps(resp.Body, func(born, store int64) { stamps = append(stamps, [2]int64{born, store}) }); err != nil {
				sleepCtx(ctx, time.Second)
				continue
			}
			rec.record(now, len(stamps), func(i int) (int64, int64) { return stamps[i][0], stamps[i][1] })
		case remoting.PullNotFound, remoting.PullRetryImmediately, remoting.PullOffsetMoved:
		default:
			sleepCtx(ctx, time.Second)
			continue
		}
		if nerr == nil {
			offset = next
		}
	}
}

// recordStamps walks the stored-format records of a pull body and passes
// each one's born and store timestamps (ms) to fn.
func recordStamps(b []byte, fn func(born, store int64)) error {
	for len(b) > 0 {
		size, err := message.CheckRecord(b, false)
		if err != nil {
			return fmt.Errorf("record in a pull body: %w", err)
		}
		fn(message.RecordBornTimestamp(b), message.RecordStoreTimestamp(b))
		b = b[size:]
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
