package commitlog

import (
	"os"
	"strconv"
	"testing"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
	"github.com/mqd/mqd/storage/storetest"
)

// TestQueueEntriesDeliveryTimes checks that the delivery rule the broker
// gives (storage.DeliveryTimer) also indexes the records dispatched again
// when the consume queues are rebuilt from the commit log after a crash
// (storetest covers the put path and a clean reopen on every engine).
func TestQueueEntriesDeliveryTimes(t *testing.T) {
	opts := testOptions(t.TempDir())
	s := openT(t, opts)
	// The suite's delivery rule (set before recovery by openT): DELAY
	// seconds after the store time, or TIMER_OUT_MS.
	var storeTs []int64
	for i := range 3 {
		m := storetest.Msg(storetest.DelayTopic, 1, "d"+strconv.Itoa(i), "")
		m.Properties = message.AppendProperty(m.Properties, message.PropertyDelayLevel, "5")
		r := s.Put(m)
		if r.Status != storage.PutOK {
			t.Fatal(r.Status)
		}
		storeTs = append(storeTs, r.StoreTimestamp)
		tm := storetest.Msg(storetest.AtTopic, 0, "t"+strconv.Itoa(i), "")
		tm.Properties = message.AppendProperty(tm.Properties, message.PropertyTimerOutMS, strconv.Itoa(1_000_000+i))
		if r := s.Put(tm); r.Status != storage.PutOK {
			t.Fatal(r.Status)
		}
	}
	check := func(when string) {
		t.Helper()
		got, next := s.ReadQueueEntries(storetest.DelayTopic, 1, 0, 10, nil)
		if next != 3 || len(got) != 3 {
			t.Fatalf("%s: schedule entries %v next %d", when, got, next)
		}
		for i, e := range got {
			if e.Offset != int64(i) || e.TagsCode != storeTs[i]+5000 || e.Size <= 0 {
				t.Fatalf("%s: schedule entry %d: %+v (store time %d)", when, i, e, storeTs[i])
			}
		}
		got, next = s.ReadQueueEntries(storetest.AtTopic, 0, 1, 1, got[:0])
		if next != 2 || len(got) != 1 || got[0].Offset != 1 || got[0].TagsCode != 1_000_001 {
			t.Fatalf("%s: timer entries from 1: %+v next %d", when, got, next)
		}
		if got, next := s.ReadQueueEntries(storetest.AtTopic, 0, 3, 10, nil); len(got) != 0 || next != 3 {
			t.Fatalf("%s: read at the end: %v %d", when, got, next)
		}
		if got, next := s.ReadQueueEntries("NoSuchTopic", 0, 0, 10, nil); len(got) != 0 || next != 0 {
			t.Fatalf("%s: unknown queue: %v %d", when, got, next)
		}
	}
	check("after put")
	crash(t, s)
	if err := os.RemoveAll(opts.ConsumeQueueDir()); err != nil {
		t.Fatal(err)
	}
	s = openT(t, opts)
	defer closeT(t, s)
	check("after rebuild")
}
