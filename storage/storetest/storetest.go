// Package storetest owns the conformance suite every storage engine runs: the
// behaviour of storage.Store that the broker relies on (offsets, statuses at the
// boundaries, filters, time lookups, reopen, concurrency, deletion, roll-over).
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// Engine tells the suite how to run a store.
type Engine struct {
	// Open opens (or reopens, with the same options) a store with
	// DeliveryTimer set before anything is dispatched. The suite sets
	// StorePathRootDir to a temporary directory and 64 KiB commit-log files
	// so roll-over is exercised; an engine's own settings (small files of
	// its own kinds) are its Open's business.
	Open func(t *testing.T, opts storage.Options) storage.Store
	// Close shuts a store down cleanly (flush, checkpoint, release files).
	Close func(t *testing.T, s storage.Store)
}

// Options returns the options the suite opens stores with.
func Options(dir string) storage.Options {
	o := storage.DefaultOptions()
	o.StorePathRootDir = filepath.Join(dir, "store")
	o.MappedFileSizeCommitLog = 64 * 1024
	return o
}

// Run runs the conformance suite.
func Run(t *testing.T, e Engine) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e Engine)
	}{
		{"RoundTrip", testRoundTrip},
		{"QueueOffsets", testQueueOffsets},
		{"Batch", testBatch},
		{"FilterByTagsCode", testFilter},
		{"Statuses", testStatuses},
		{"Transactions", testTransactions},
		{"OffsetByTime", testOffsetByTime},
		{"ReadMessage", testReadMessage},
		{"Reopen", testReopen},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ReaderDuringAppend", testReaderDuringAppend},
		{"DeleteTopics", testDeleteTopics},
		{"RollOver", testRollOver},
		{"ArrivalListener", testArrivalListener},
		{"Limits", testLimits},
		{"QueryByKey", testQueryByKey},
		{"QueryIndexRollAndReopen", testQueryIndexRollAndReopen},
		{"QueueEntriesAndDeliveryTimes", testQueueEntries},
		{"Replication", testReplication},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}

func open(t *testing.T, e Engine, opts storage.Options) storage.Store {
	t.Helper()
	s := e.Open(t, opts)
	t.Cleanup(func() { e.Close(t, s) })
	return s
}

// Msg builds a test message.
func Msg(topic string, qid int32, body, tag string) *message.Message {
	props := message.AppendProperty("", message.PropertyUniqKey, fmt.Sprintf("U-%s", body))
	if tag != "" {
		props = message.AppendProperty(props, message.PropertyTags, tag)
	}
	return &message.Message{
		Topic: topic, QueueID: qid, Flag: 1, Body: []byte(body), Properties: props,
		BornTimestamp: time.Now().UnixMilli(),
		BornHost:      netip.MustParseAddrPort("127.0.0.1:40000"),
		StoreHost:     netip.MustParseAddrPort("127.0.0.1:10911"),
		TagsCode:      message.TagsHashCode(tag),
	}
}

func mustPut(t testing.TB, s storage.Store, m *message.Message) storage.PutResult {
	t.Helper()
	r := s.Put(m)
	if r.Status != storage.PutOK {
		t.Fatalf("put %s/%d: %v %v", m.Topic, m.QueueID, r.Status, r.Err)
	}
	return r
}

// ReadAll pulls a queue from offset to its end and decodes every record.
func ReadAll(t testing.TB, s storage.Store, topic string, qid int32, from int64) []*message.Ext {
	t.Helper()
	var out []*message.Ext
	off := from
	for {
		r := s.GetMessages(topic, qid, off, 32, 0, nil)
		switch r.Status {
		case storage.GetFound:
		case storage.GetOffsetOverflowOne, storage.GetNoMessageInQueue:
			return out
		default:
			t.Fatalf("GetMessages(%s/%d@%d): status %d", topic, qid, off, r.Status)
		}
		for _, rec := range r.Records {
			e, err := message.Decode(rec)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			e.Body = append([]byte(nil), e.Body...)
			out = append(out, e)
		}
		r.Release()
		if r.NextBeginOffset <= off {
			t.Fatalf("no progress at %d", off)
		}
		off = r.NextBeginOffset
	}
}

func testRoundTrip(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	var results []storage.PutResult
	for i := 0; i < 20; i++ {
		m := Msg("T", 1, fmt.Sprintf("body-%d", i), "TagA")
		m.ReconsumeTimes = int32(i)
		results = append(results, mustPut(t, s, m))
	}
	got := ReadAll(t, s, "T", 1, 0)
	if len(got) != 20 {
		t.Fatalf("read %d messages, want 20", len(got))
	}
	for i, x := range got {
		r := results[i]
		if string(x.Body) != fmt.Sprintf("body-%d", i) || x.Topic != "T" || x.QueueID != 1 || x.ReconsumeTimes != int32(i) {
			t.Fatalf("message %d: %+v", i, x)
		}
		if x.QueueOffset != int64(i) || r.QueueOffset != int64(i) || x.CommitLogOffset != r.CommitLogOffset ||
			x.StoreTimestamp != r.StoreTimestamp || x.StoreSize != r.WroteBytes || r.MsgCount != 1 {
			t.Fatalf("message %d offsets: record %+v result %+v", i, x, r)
		}
		if message.Property(x.Properties, message.PropertyTags) != "TagA" || x.BodyCRC != message.BodyCRC(x.Body) {
			t.Fatalf("message %d props %q crc %d", i, x.Properties, x.BodyCRC)
		}
		if i > 0 && r.CommitLogOffset <= results[i-1].CommitLogOffset {
			t.Fatalf("commit log offsets not increasing")
		}
	}
	if s.MaxPhyOffset() < results[19].CommitLogOffset+int64(results[19].WroteBytes) {
		t.Fatalf("MaxPhyOffset %d", s.MaxPhyOffset())
	}
	if s.MinPhyOffset() != 0 {
		t.Fatalf("MinPhyOffset %d", s.MinPhyOffset())
	}
}

func testQueueOffsets(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	next := map[int32]int64{}
	for i := 0; i < 60; i++ {
		q := int32(i % 3)
		r := mustPut(t, s, Msg("Q", q, fmt.Sprint(i), ""))
		if r.QueueOffset != next[q] {
			t.Fatalf("queue %d offset %d, want %d", q, r.QueueOffset, next[q])
		}
		next[q]++
	}
	for q := int32(0); q < 3; q++ {
		if s.MinOffset("Q", q) != 0 || s.MaxOffset("Q", q) != 20 {
			t.Fatalf("queue %d min %d max %d", q, s.MinOffset("Q", q), s.MaxOffset("Q", q))
		}
	}
	if ids := s.QueueIDs("Q"); len(ids) != 3 || ids[0] != 0 || ids[2] != 2 {
		t.Fatalf("QueueIDs %v", ids)
	}
	mustPut(t, s, Msg("A", 0, "a", ""))
	if got := s.Topics(); !slices.Contains(got, "Q") || !slices.Contains(got, "A") || !slices.IsSorted(got) || slices.Contains(got, "nope") {
		t.Fatalf("Topics %v, want A and Q, sorted", got)
	}
	if s.MaxOffset("Q", 9) != 0 || s.MaxOffset("nope", 0) != 0 || len(s.QueueIDs("nope")) != 0 {
		t.Fatal("unknown queue not empty")
	}
}

func testBatch(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	mustPut(t, s, Msg("B", 0, "first", ""))
	var ms []message.Message
	for i := 0; i < 10; i++ {
		ms = append(ms, *Msg("B", 0, fmt.Sprintf("b%d", i), ""))
	}
	r := s.PutBatch(ms)
	if r.Status != storage.PutOK || r.QueueOffset != 1 || r.MsgCount != 10 || len(r.Offsets) != 10 || r.Offsets[0] != r.CommitLogOffset {
		t.Fatalf("batch result %+v", r)
	}
	got := ReadAll(t, s, "B", 0, 0)
	if len(got) != 11 {
		t.Fatalf("read %d", len(got))
	}
	total := int32(0)
	for i, x := range got[1:] {
		if string(x.Body) != fmt.Sprintf("b%d", i) || x.QueueOffset != int64(i+1) || x.CommitLogOffset != r.Offsets[i] || x.StoreTimestamp != r.StoreTimestamp {
			t.Fatalf("batch message %d: %+v", i, x)
		}
		if i > 0 && x.CommitLogOffset != got[i].CommitLogOffset+int64(got[i].StoreSize) {
			t.Fatalf("batch not contiguous at %d", i)
		}
		total += x.StoreSize
	}
	if total != r.WroteBytes {
		t.Fatalf("WroteBytes %d, records %d", r.WroteBytes, total)
	}
	mixed := []message.Message{*Msg("B", 0, "x", ""), *Msg("B", 1, "y", "")}
	if r := s.PutBatch(mixed); r.Status.Stored() {
		t.Fatalf("batch across queues stored: %v", r.Status)
	}
	if r := s.PutBatch(nil); r.Status.Stored() {
		t.Fatal("empty batch stored")
	}
}

type tagFilter struct{ code int64 }

func (f tagFilter) MatchTagsCode(c int64) bool { return c == f.code }
func (f tagFilter) MatchRecord(rec []byte) bool {
	return message.Property(message.RecordProperties(rec), "color") != "red"
}

func testFilter(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	for i := 0; i < 30; i++ {
		tag := "TagB"
		if i%3 == 0 {
			tag = "TagA"
		}
		m := Msg("F", 0, fmt.Sprint(i), tag)
		if i == 9 {
			m.Properties = message.AppendProperty(m.Properties, "color", "red")
		}
		mustPut(t, s, m)
	}
	f := tagFilter{message.TagsHashCode("TagA")}
	r := s.GetMessages("F", 0, 0, 32, 0, f)
	if r.Status != storage.GetFound || len(r.Records) != 9 || r.NextBeginOffset != 30 {
		t.Fatalf("filtered read: status %d records %d next %d", r.Status, len(r.Records), r.NextBeginOffset)
	}
	for _, rec := range r.Records {
		if message.Property(message.RecordProperties(rec), message.PropertyTags) != "TagA" || string(message.RecordBody(rec)) == "9" {
			t.Fatalf("filter let through %q", message.RecordProperties(rec))
		}
	}
	r.Release()
	// Offsets 28 and 29 carry TagB: scanned, none matched, next moves on.
	r = s.GetMessages("F", 0, 28, 32, 0, f)
	if r.Status != storage.GetNoMatchedMessage || r.NextBeginOffset != 30 || len(r.Records) != 0 {
		t.Fatalf("no match: status %d next %d", r.Status, r.NextBeginOffset)
	}
	r.Release()
	// Batch cap: 2 messages from 0 → next is after the second match.
	r = s.GetMessages("F", 0, 0, 2, 0, f)
	if len(r.Records) != 2 || r.NextBeginOffset != 4 {
		t.Fatalf("capped: records %d next %d", len(r.Records), r.NextBeginOffset)
	}
	r.Release()
}

func testStatuses(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	check := func(name string, r *storage.GetResult, st storage.GetStatus, next int64, n int) {
		t.Helper()
		defer r.Release()
		if r.Status != st || r.NextBeginOffset != next || len(r.Records) != n {
			t.Fatalf("%s: status %d next %d records %d; want %d %d %d", name, r.Status, r.NextBeginOffset, len(r.Records), st, next, n)
		}
	}
	check("unknown queue", s.GetMessages("S", 0, 0, 32, 0, nil), storage.GetNoMessageInQueue, 0, 0)
	check("unknown queue offset 5", s.GetMessages("S", 0, 5, 32, 0, nil), storage.GetNoMessageInQueue, 0, 0)
	for i := 0; i < 10; i++ {
		mustPut(t, s, Msg("S", 0, fmt.Sprint(i), ""))
	}
	check("offset == max", s.GetMessages("S", 0, 10, 32, 0, nil), storage.GetOffsetOverflowOne, 10, 0)
	check("offset > max", s.GetMessages("S", 0, 11, 32, 0, nil), storage.GetOffsetOverflowBadly, 10, 0)
	check("offset < min", s.GetMessages("S", 0, -1, 32, 0, nil), storage.GetOffsetTooSmall, 0, 0)
	check("maxMsgs 0", s.GetMessages("S", 0, 3, 0, 0, nil), storage.GetFound, 4, 1)
	check("maxMsgs 4", s.GetMessages("S", 0, 3, 4, 0, nil), storage.GetFound, 7, 4)
	check("tail", s.GetMessages("S", 0, 8, 32, 0, nil), storage.GetFound, 10, 2)
	r := s.GetMessages("S", 0, 0, 32, 0, nil)
	if r.MinOffset != 0 || r.MaxOffset != 10 {
		t.Fatalf("min/max in result %d %d", r.MinOffset, r.MaxOffset)
	}
	r.Release()
	// maxBytes caps the batch (at least one record is always returned).
	one := s.GetMessages("S", 0, 0, 32, 1, nil)
	check("maxBytes", one, storage.GetFound, 1, 1)
}

func testTransactions(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	mustPut(t, s, Msg("X", 0, "plain", ""))
	half := Msg("X", 0, "half", "")
	half.SysFlag = message.SysFlagTranPrepared
	hr := mustPut(t, s, half)
	if hr.QueueOffset != 0 || s.MaxOffset("X", 0) != 1 {
		t.Fatalf("prepared: queue offset %d, max %d", hr.QueueOffset, s.MaxOffset("X", 0))
	}
	rb := Msg("X", 0, "rollback", "")
	rb.SysFlag = message.SysFlagTranRollback
	mustPut(t, s, rb)
	commit := Msg("X", 0, "commit", "")
	commit.SysFlag = message.SysFlagTranCommit
	commit.PreparedTransactionOffset = hr.CommitLogOffset
	cr := mustPut(t, s, commit)
	if cr.QueueOffset != 1 || s.MaxOffset("X", 0) != 2 {
		t.Fatalf("commit: queue offset %d, max %d", cr.QueueOffset, s.MaxOffset("X", 0))
	}
	got := ReadAll(t, s, "X", 0, 0)
	if len(got) != 2 || string(got[1].Body) != "commit" || got[1].PreparedTransactionOffset != hr.CommitLogOffset {
		t.Fatalf("read %d messages", len(got))
	}
	rec, err := s.ReadMessage(hr.CommitLogOffset)
	if err != nil || string(message.RecordBody(rec)) != "half" || message.TranType(message.RecordSysFlag(rec)) != message.SysFlagTranPrepared {
		t.Fatalf("half message by offset: %v", err)
	}
}

func testOffsetByTime(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	var times []int64
	for i := 0; i < 6; i++ {
		r := mustPut(t, s, Msg("O", 0, fmt.Sprint(i), ""))
		times = append(times, r.StoreTimestamp)
		for time.Now().UnixMilli() <= r.StoreTimestamp { // next message in a later millisecond
			time.Sleep(100 * time.Microsecond)
		}
	}
	for i, ts := range times {
		if got := s.OffsetByTime("O", 0, ts); got != int64(i) {
			t.Fatalf("OffsetByTime(%d) = %d, want %d", ts, got, i)
		}
		if st, err := s.MessageStoreTime("O", 0, int64(i)); err != nil || st != ts {
			t.Fatalf("MessageStoreTime(%d) = %d %v", i, st, err)
		}
	}
	if got := s.OffsetByTime("O", 0, 0); got != 0 {
		t.Fatalf("before all: %d", got)
	}
	if got := s.OffsetByTime("O", 0, times[5]+1); got != 6 {
		t.Fatalf("after all: %d", got)
	}
	if et, err := s.EarliestMessageTime("O", 0); err != nil || et != times[0] {
		t.Fatalf("EarliestMessageTime %d %v", et, err)
	}
	if _, err := s.EarliestMessageTime("nope", 0); err == nil {
		t.Fatal("earliest time of an unknown queue")
	}
	if _, err := s.MessageStoreTime("O", 0, 6); err == nil {
		t.Fatal("store time past the end")
	}
}

func testReadMessage(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	r1 := mustPut(t, s, Msg("R", 0, "one", ""))
	r2 := mustPut(t, s, Msg("R", 0, "two", ""))
	rec, err := s.ReadMessage(r2.CommitLogOffset)
	if err != nil {
		t.Fatal(err)
	}
	x, err := message.Decode(rec)
	if err != nil || string(x.Body) != "two" || x.CommitLogOffset != r2.CommitLogOffset {
		t.Fatalf("ReadMessage: %v %+v", err, x)
	}
	for _, off := range []int64{-1, r1.CommitLogOffset + 1, r2.CommitLogOffset + 4, s.MaxPhyOffset(), s.MaxPhyOffset() + 1000, 1 << 50} {
		if _, err := s.ReadMessage(off); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ReadMessage(%d): %v, want ErrNotFound", off, err)
		}
	}
}

func testReopen(t *testing.T, e Engine) {
	opts := Options(t.TempDir())
	s := e.Open(t, opts)
	var want []string
	for i := 0; i < 300; i++ {
		q := int32(i % 4)
		body := fmt.Sprintf("reopen-%d-%s", i, bytes.Repeat([]byte("x"), i%200))
		mustPut(t, s, Msg("RO", q, body, "T"))
		want = append(want, body)
	}
	half := Msg("RO", 0, "half", "")
	half.SysFlag = message.SysFlagTranPrepared
	mustPut(t, s, half)
	maxPhy := s.MaxPhyOffset()
	e.Close(t, s)

	s = open(t, e, opts)
	if s.MaxPhyOffset() != maxPhy {
		t.Fatalf("MaxPhyOffset %d after reopen, want %d", s.MaxPhyOffset(), maxPhy)
	}
	if got := s.Topics(); !slices.Contains(got, "RO") {
		t.Fatalf("Topics after reopen: %v, want RO", got)
	}
	for q := int32(0); q < 4; q++ {
		if s.MaxOffset("RO", q) != 75 {
			t.Fatalf("queue %d max %d after reopen", q, s.MaxOffset("RO", q))
		}
		got := ReadAll(t, s, "RO", q, 0)
		if len(got) != 75 {
			t.Fatalf("queue %d: %d messages after reopen", q, len(got))
		}
		for j, x := range got {
			if string(x.Body) != want[j*4+int(q)] || x.QueueOffset != int64(j) {
				t.Fatalf("queue %d message %d: %q", q, j, x.Body)
			}
		}
	}
	r := mustPut(t, s, Msg("RO", 2, "after", ""))
	if r.QueueOffset != 75 || r.CommitLogOffset < maxPhy {
		t.Fatalf("put after reopen: %+v", r)
	}
}

func testConcurrentWriters(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	const writers, per = 8, 250
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				q := int32(i % 2)
				if r := s.Put(Msg("C", q, fmt.Sprintf("%d-%d", w, i), "")); r.Status != storage.PutOK {
					errs <- fmt.Errorf("put: %v %v", r.Status, r.Err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for q := int32(0); q < 2; q++ {
		got := ReadAll(t, s, "C", q, 0)
		if len(got) != writers*per/2 {
			t.Fatalf("queue %d: %d messages", q, len(got))
		}
		for j, x := range got {
			if x.QueueOffset != int64(j) {
				t.Fatalf("queue %d position %d has offset %d", q, j, x.QueueOffset)
			}
			if seen[string(x.Body)] {
				t.Fatalf("duplicate %s", x.Body)
			}
			seen[string(x.Body)] = true
		}
	}
	if len(seen) != writers*per {
		t.Fatalf("%d distinct messages", len(seen))
	}
}

func testReaderDuringAppend(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	const n = 2000
	var done atomic.Bool
	readErr := make(chan error, 1)
	go func() {
		var off int64
		deadline := time.Now().Add(20 * time.Second)
		for off < n {
			if time.Now().After(deadline) {
				readErr <- fmt.Errorf("reader stuck at %d", off)
				return
			}
			r := s.GetMessages("RD", 0, off, 16, 0, nil)
			switch r.Status {
			case storage.GetFound:
				for _, rec := range r.Records {
					if got, want := string(message.RecordBody(rec)), fmt.Sprint(off); got != want || message.RecordQueueOffset(rec) != off {
						r.Release()
						readErr <- fmt.Errorf("at %d read %q", off, got)
						return
					}
					off++
				}
				r.Release()
			case storage.GetOffsetOverflowOne, storage.GetNoMessageInQueue:
				if done.Load() && s.MaxOffset("RD", 0) == off {
					readErr <- fmt.Errorf("reader ended at %d", off)
					return
				}
				time.Sleep(50 * time.Microsecond)
			default:
				readErr <- fmt.Errorf("status %d at %d", r.Status, off)
				return
			}
		}
		readErr <- nil
	}()
	for i := 0; i < n; i++ {
		mustPut(t, s, Msg("RD", 0, fmt.Sprint(i), ""))
	}
	done.Store(true)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
}

func testDeleteTopics(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	for i := 0; i < 10; i++ {
		mustPut(t, s, Msg("D1", int32(i%2), fmt.Sprint(i), ""))
		mustPut(t, s, Msg("D2", 0, fmt.Sprint(i), ""))
	}
	held := s.GetMessages("D1", 0, 0, 32, 0, nil) // a reader holding records across the delete
	if err := s.DeleteTopics("D1"); err != nil {
		t.Fatal(err)
	}
	if len(held.Records) != 5 || string(message.RecordBody(held.Records[4])) != "8" {
		t.Fatal("held records changed under the reader")
	}
	held.Release()
	if s.MaxOffset("D1", 0) != 0 || len(s.QueueIDs("D1")) != 0 {
		t.Fatalf("D1 still has queues %v", s.QueueIDs("D1"))
	}
	if got := s.Topics(); slices.Contains(got, "D1") || !slices.Contains(got, "D2") {
		t.Fatalf("Topics after deleting D1: %v", got)
	}
	if r := s.GetMessages("D1", 0, 0, 32, 0, nil); r.Status != storage.GetNoMessageInQueue {
		t.Fatalf("deleted topic read status %d", r.Status)
	}
	if got := ReadAll(t, s, "D2", 0, 0); len(got) != 10 {
		t.Fatalf("D2 lost messages: %d", len(got))
	}
	for _, bad := range []string{"../evil", "a/b", ".."} {
		if err := s.DeleteTopics(bad); err == nil {
			t.Errorf("DeleteTopics(%q) accepted", bad)
		}
	}
	// A deleted topic starts over at offset 0.
	if r := mustPut(t, s, Msg("D1", 0, "again", "")); r.QueueOffset != 0 {
		t.Fatalf("re-created topic offset %d", r.QueueOffset)
	}
}

func testRollOver(t *testing.T, e Engine) {
	opts := Options(t.TempDir())
	s := e.Open(t, opts)
	var bodies []string
	total := 0
	for i := 0; total < 5*64*1024; i++ {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, 100+(i*397)%3000)
		bodies = append(bodies, string(b))
		r := mustPut(t, s, Msg("RL", int32(i%2), string(b), ""))
		if r.CommitLogOffset/(64*1024) != (r.CommitLogOffset+int64(r.WroteBytes)-1)/(64*1024) {
			t.Fatalf("record %d crosses a file boundary at %d", i, r.CommitLogOffset)
		}
		total += int(r.WroteBytes)
	}
	if s.MaxPhyOffset() <= 4*64*1024 {
		t.Fatalf("MaxPhyOffset %d: no roll-over", s.MaxPhyOffset())
	}
	// One big batch that cannot fit the rest of a file moves as a whole.
	var batch []message.Message
	for i := 0; i < 20; i++ {
		batch = append(batch, *Msg("RL", 0, string(bytes.Repeat([]byte("z"), 1000)), ""))
	}
	br := s.PutBatch(batch)
	if br.Status != storage.PutOK || br.CommitLogOffset/(64*1024) != (br.CommitLogOffset+int64(br.WroteBytes)-1)/(64*1024) {
		t.Fatalf("batch %v at %d+%d", br.Status, br.CommitLogOffset, br.WroteBytes)
	}
	verify := func(s storage.Store) {
		t.Helper()
		var all []string
		q0 := ReadAll(t, s, "RL", 0, 0)
		q1 := ReadAll(t, s, "RL", 1, 0)
		for i := range bodies {
			if i%2 == 0 {
				all = append(all, string(q0[i/2].Body))
			} else {
				all = append(all, string(q1[i/2].Body))
			}
		}
		for i := range bodies {
			if all[i] != bodies[i] {
				t.Fatalf("message %d differs", i)
			}
		}
		if len(q0) != (len(bodies)+1)/2+20 {
			t.Fatalf("queue 0 has %d", len(q0))
		}
	}
	verify(s)
	e.Close(t, s)
	s = open(t, e, opts)
	verify(s)
}

func testArrivalListener(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	var mu sync.Mutex
	var got []string
	s.SetArrivalListener(func(topic string, qid int32, maxOffset int64) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s/%d/%d", topic, qid, maxOffset))
		mu.Unlock()
	})
	mustPut(t, s, Msg("AL", 3, "x", ""))
	mustPut(t, s, Msg("AL", 3, "y", ""))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(got)
	if len(got) != 2 || got[0] != "AL/3/1" || got[1] != "AL/3/2" {
		t.Fatalf("arrivals %v", got)
	}
}

func testLimits(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	long := Msg(string(bytes.Repeat([]byte("t"), 128)), 0, "x", "")
	if r := s.Put(long); r.Status != storage.PutMessageIllegal {
		t.Fatalf("128-byte topic: %v", r.Status)
	}
	props := Msg("L", 0, "x", "")
	props.Properties = "K\x01" + string(bytes.Repeat([]byte("v"), 32767))
	if r := s.Put(props); r.Status != storage.PutPropertiesSizeExceeded && r.Status != storage.PutMessageIllegal {
		t.Fatalf("oversized properties: %v", r.Status)
	}
	huge := Msg("L", 0, string(make([]byte, 70*1024)), "")
	if r := s.Put(huge); r.Status.Stored() {
		t.Fatalf("record larger than a commit log file stored: %v", r.Status)
	}
	if s.MaxOffset("L", 0) != 0 {
		t.Fatal("refused messages took offsets")
	}
	mustPut(t, s, Msg("L", 0, "ok", ""))
}

// Topics of the suite's DeliveryTimer.
const (
	DelayTopic = "ST_DELAY" // due store time + 1 s x the DELAY property
	AtTopic    = "ST_AT"    // due at the TIMER_OUT_MS property
)

// DeliveryTimer is the rule engines are opened with in the suite (the
// broker has its own, with the same shape): entries of DelayTopic are due
// their store time plus DELAY seconds, those of AtTopic at TIMER_OUT_MS;
// every other topic keeps its tags hash.
func DeliveryTimer(topic string, props []byte, storeTs int64) (int64, bool) {
	switch topic {
	case DelayTopic:
		n, err := strconv.Atoi(string(message.PropertyBytes(props, message.PropertyDelayLevel)))
		if err != nil {
			return storeTs, true
		}
		return storeTs + int64(n)*1000, true
	case AtTopic:
		n, err := strconv.ParseInt(string(message.PropertyBytes(props, message.PropertyTimerOutMS)), 10, 64)
		if err != nil {
			return storeTs, true
		}
		return n, true
	}
	return 0, false
}

// testQueueEntries: ReadQueueEntries lists a queue's entries (offsets,
// commit-log offsets, sizes, tags codes) without the records, and the tags
// codes of the timer's topics are the delivery times its rule gives, on the
// put path and after a reopen.
func testQueueEntries(t *testing.T, e Engine) {
	opts := Options(t.TempDir())
	s := e.Open(t, opts)
	var puts []storage.PutResult
	for i := range 3 {
		m := Msg(DelayTopic, 1, fmt.Sprint("d", i), "")
		m.Properties = message.AppendProperty(m.Properties, message.PropertyDelayLevel, "5")
		puts = append(puts, mustPut(t, s, m))
		tm := Msg(AtTopic, 0, fmt.Sprint("t", i), "")
		tm.Properties = message.AppendProperty(tm.Properties, message.PropertyTimerOutMS, strconv.Itoa(1_000_000+i))
		mustPut(t, s, tm)
		mustPut(t, s, Msg("PLAIN", 0, fmt.Sprint("p", i), "TagA"))
	}
	check := func(s storage.Store, when string) {
		t.Helper()
		got, next := s.ReadQueueEntries(DelayTopic, 1, 0, 10, nil)
		if next != 3 || len(got) != 3 {
			t.Fatalf("%s: delay entries %+v next %d", when, got, next)
		}
		for i, e := range got {
			if e.Offset != int64(i) || e.CommitLogOffset != puts[i].CommitLogOffset || e.Size != puts[i].WroteBytes || e.TagsCode != puts[i].StoreTimestamp+5000 {
				t.Fatalf("%s: delay entry %d: %+v (put %+v)", when, i, e, puts[i])
			}
		}
		got, next = s.ReadQueueEntries(AtTopic, 0, 1, 1, got[:0])
		if next != 2 || len(got) != 1 || got[0].Offset != 1 || got[0].TagsCode != 1_000_001 {
			t.Fatalf("%s: timer entries from 1: %+v next %d", when, got, next)
		}
		if got, _ := s.ReadQueueEntries("PLAIN", 0, 0, 10, nil); len(got) != 3 || got[0].TagsCode != message.TagsHashCode("TagA") {
			t.Fatalf("%s: plain entries %+v", when, got)
		}
		if got, next := s.ReadQueueEntries(AtTopic, 0, 3, 10, nil); len(got) != 0 || next != 3 {
			t.Fatalf("%s: read at the end: %v %d", when, got, next)
		}
		if got, next := s.ReadQueueEntries("NoSuchTopic", 0, 0, 10, nil); len(got) != 0 || next != 0 {
			t.Fatalf("%s: unknown queue: %v %d", when, got, next)
		}
	}
	check(s, "after put")
	e.Close(t, s)
	check(open(t, e, opts), "after reopen")
}

// testReplication: an engine that offers storage.Replicable hands its raw
// log to another store of the same engine, which serves the same messages
// at the same offsets. Engines without it skip.
func testReplication(t *testing.T, e Engine) {
	master := open(t, e, Options(t.TempDir()))
	rm, ok := master.(storage.Replicable)
	if !ok {
		t.Skip("the engine does not replicate")
	}
	so := Options(t.TempDir())
	so.BrokerRole = storage.RoleSlave
	slave := open(t, e, so)
	rs := slave.(storage.Replicable)
	var want []string
	for i := range 40 {
		b := fmt.Sprintf("r%d-%s", i, bytes.Repeat([]byte("x"), i*37))
		mustPut(t, master, Msg("REPL", int32(i%2), b, ""))
		want = append(want, b)
	}
	for off := rs.MaxPhyOffset(); off < rm.MaxPhyOffset(); {
		data, release, err := rm.ReadRaw(off, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			t.Fatalf("no bytes at %d of %d", off, rm.MaxPhyOffset())
		}
		err = rs.AppendRaw(off, data)
		n := int64(len(data))
		release()
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	for q := int32(0); q < 2; q++ {
		got := ReadAll(t, slave, "REPL", q, 0)
		if len(got) != 20 {
			t.Fatalf("slave queue %d: %d messages", q, len(got))
		}
		for j, m := range got {
			if string(m.Body) != want[j*2+int(q)] {
				t.Fatalf("slave queue %d message %d differs", q, j)
			}
		}
	}
	if r := slave.Put(Msg("REPL", 0, "direct", "")); r.Status.Stored() {
		t.Fatalf("a slave store took a put: %v", r.Status)
	}
}
