package badger

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

func engine() storetest.Engine {
	return storetest.Engine{
		Open: func(t *testing.T, opts storage.Options) storage.Store {
			t.Helper()
			s, err := Open(opts, DefaultOptions(), zerolog.Nop(), storetest.DeliveryTimer)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Close: func(t *testing.T, s storage.Store) {
			t.Helper()
			if err := s.(*Store).Close(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestConformance(t *testing.T) { storetest.Run(t, engine()) }

// TestRetentionByTTL: records and their queue units expire with their TTL
// (no tombstone per message); the queue's minimum then moves to the next
// offset, which later puts take, and reads ask for it.
func TestRetentionByTTL(t *testing.T) {
	opts := storetest.Options(t.TempDir())
	eng := DefaultOptions()
	eng.TTL = time.Second
	s, err := Open(opts, eng, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var first storage.PutResult
	for i := range 5 {
		r := s.Put(storetest.Msg("T", 0, fmt.Sprint(i), ""))
		if i == 0 {
			first = r
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.ReadMessage(first.CommitLogOffset); errors.Is(err, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("record did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.refreshBounds()
	if min, max := s.MinOffset("T", 0), s.MaxOffset("T", 0); min != 5 || max != 5 {
		t.Fatalf("queue bounds after expiry: %d..%d, want 5..5", min, max)
	}
	if r := s.GetMessages("T", 0, 0, 32, 0, nil); r.Status != storage.GetOffsetTooSmall && r.Status != storage.GetOffsetOverflowOne {
		t.Fatalf("read of expired offsets: status %d", r.Status)
	}
	if r := s.Put(storetest.Msg("T", 0, "later", "")); r.QueueOffset != 5 {
		t.Fatalf("put after expiry took offset %d, want 5", r.QueueOffset)
	}
}
