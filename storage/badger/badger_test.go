package badger

import (
	"errors"
	"fmt"
	"sync"
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

// TestDeleteTopicsUnderLoad: deleting topics while other topics take puts
// fails none of those puts (Badger blocks writes during a prefix drop).
func TestDeleteTopicsUnderLoad(t *testing.T) {
	s, err := Open(storetest.Options(t.TempDir()), DefaultOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r := s.Put(storetest.Msg("KEEP", int32(g), fmt.Sprint(i), "")); r.Status != storage.PutOK {
					errs <- fmt.Errorf("put during deletes: %v %v", r.Status, r.Err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		topic := fmt.Sprint("GONE", i)
		s.Put(storetest.Msg(topic, 0, "x", ""))
		if err := s.DeleteTopics(topic); err != nil {
			t.Fatal(err)
		}
		if len(s.QueueIDs(topic)) != 0 {
			t.Fatalf("%s still has queues", topic)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
