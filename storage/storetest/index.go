package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

// KeyedMsg is Msg with business keys (the KEYS property, space-separated).
func KeyedMsg(topic string, qid int32, body, keys string) *message.Message {
	m := Msg(topic, qid, body, "")
	m.Properties = message.AppendProperty(m.Properties, message.PropertyKeys, keys)
	return m
}

// WaitQuery polls QueryMessages until it returns want offsets (the index is
// built in the background) and returns the last result.
func WaitQuery(t testing.TB, s storage.Store, topic, key string, maxNum int, begin, end int64, uniq bool, want int) storage.QueryResult {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := s.QueryMessages(topic, key, maxNum, begin, end, uniq)
		if err != nil {
			t.Fatalf("QueryMessages(%s, %s): %v", topic, key, err)
		}
		if len(r.Offsets) == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("QueryMessages(%s, %s): %d offsets, want %d", topic, key, len(r.Offsets), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bodyAt(t testing.TB, s storage.Store, off int64) string {
	t.Helper()
	rec, err := s.ReadMessage(off)
	if err != nil {
		t.Fatalf("ReadMessage(%d): %v", off, err)
	}
	return string(message.RecordBody(rec))
}

func testQueryByKey(t *testing.T, e Engine) {
	s := open(t, e, Options(t.TempDir()))
	far := time.Now().Add(time.Hour).UnixMilli()
	r1 := mustPut(t, s, KeyedMsg("IX", 0, "one", "k1 shared"))
	r2 := mustPut(t, s, KeyedMsg("IX", 1, "two", "shared  k2"))
	mustPut(t, s, KeyedMsg("IY", 0, "other", "k1"))
	mustPut(t, s, Msg("IX", 0, "nokeys", ""))

	r := WaitQuery(t, s, "IX", "shared", 10, 0, far, false, 2)
	// Newest first.
	if r.Offsets[0] != r2.CommitLogOffset || r.Offsets[1] != r1.CommitLogOffset {
		t.Fatalf("shared: offsets %v, want [%d %d]", r.Offsets, r2.CommitLogOffset, r1.CommitLogOffset)
	}
	if r.IndexLastUpdatePhyOffset < r2.CommitLogOffset || r.IndexLastUpdateTimestamp <= 0 {
		t.Fatalf("index progress %d/%d", r.IndexLastUpdatePhyOffset, r.IndexLastUpdateTimestamp)
	}
	r = WaitQuery(t, s, "IX", "k1", 10, 0, far, false, 1)
	if bodyAt(t, s, r.Offsets[0]) != "one" {
		t.Fatal("k1 of IX found the wrong message")
	}
	r = WaitQuery(t, s, "IY", "k1", 10, 0, far, false, 1)
	if bodyAt(t, s, r.Offsets[0]) != "other" {
		t.Fatal("k1 of IY found the wrong message")
	}
	WaitQuery(t, s, "IX", "k2", 10, 0, far, false, 1)
	// Unique key (Msg sets UNIQ_KEY U-<body>), as a unique-key and a key query.
	r = WaitQuery(t, s, "IX", "U-two", 10, 0, far, true, 1)
	if r.Offsets[0] != r2.CommitLogOffset {
		t.Fatal("unique key query found the wrong message")
	}
	WaitQuery(t, s, "IX", "U-nokeys", 10, 0, far, false, 1)
	// A KEYS token is not a unique key.
	if r, _ := s.QueryMessages("IX", "k2", 10, 0, far, true); len(r.Offsets) != 0 {
		t.Fatalf("unique-key query matched a KEYS token: %v", r.Offsets)
	}
	// maxNum, time range, unknown key and topic.
	if r, _ := s.QueryMessages("IX", "shared", 1, 0, far, false); len(r.Offsets) != 1 || r.Offsets[0] != r2.CommitLogOffset {
		t.Fatalf("maxNum 1: %v", r.Offsets)
	}
	if r, _ := s.QueryMessages("IX", "shared", 10, far, far+1000, false); len(r.Offsets) != 0 {
		t.Fatalf("future time range: %v", r.Offsets)
	}
	if r, _ := s.QueryMessages("IX", "shared", 10, 0, r1.StoreTimestamp-5000, false); len(r.Offsets) != 0 {
		t.Fatalf("past time range: %v", r.Offsets)
	}
	if r, _ := s.QueryMessages("IX", "nope", 10, 0, far, false); len(r.Offsets) != 0 {
		t.Fatalf("unknown key: %v", r.Offsets)
	}
	if r, _ := s.QueryMessages("IZ", "k1", 10, 0, far, false); len(r.Offsets) != 0 {
		t.Fatalf("unknown topic: %v", r.Offsets)
	}
}

// testQueryIndexRollAndReopen stores more keys than one index file holds
// (the suite's files hold 100 entries) and queries across files, before and
// after a clean reopen.
func testQueryIndexRollAndReopen(t *testing.T, e Engine) {
	opts := Options(t.TempDir())
	s := e.Open(t, opts)
	far := time.Now().Add(time.Hour).UnixMilli()
	var offs []int64
	for i := range 150 {
		r := mustPut(t, s, KeyedMsg("IR", int32(i%4), fmt.Sprintf("m%d", i), fmt.Sprintf("all k%d", i)))
		offs = append(offs, r.CommitLogOffset)
	}
	check := func(s storage.Store) {
		WaitQuery(t, s, "IR", "k149", 10, 0, far, false, 1)        // the index has caught up
		r := WaitQuery(t, s, "IR", "all", 1000, 0, far, false, 64) // capped by maxMsgsNumBatch
		if r.Offsets[0] != offs[149] {
			t.Fatalf("newest first: got %d, want %d", r.Offsets[0], offs[149])
		}
		for _, i := range []int{0, 42, 99, 100, 149} {
			r := WaitQuery(t, s, "IR", fmt.Sprintf("k%d", i), 10, 0, far, false, 1)
			if r.Offsets[0] != offs[i] {
				t.Fatalf("k%d: offset %d, want %d", i, r.Offsets[0], offs[i])
			}
		}
	}
	check(s)
	e.Close(t, s)
	s = open(t, e, opts)
	check(s)
	r := mustPut(t, s, KeyedMsg("IR", 0, "after", "k-after"))
	if got := WaitQuery(t, s, "IR", "k-after", 10, 0, far, false, 1); got.Offsets[0] != r.CommitLogOffset {
		t.Fatal("key stored after reopen not found")
	}
}
