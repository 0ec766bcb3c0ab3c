package commitlog

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

func openT(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(opts, zerolog.Nop(), storetest.DeliveryTimer)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func closeT(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// testOptions are the suite's options (storetest.Options) with this
// engine's files small too: 100-entry consume-queue files, tiny index files.
func testOptions(dir string) Options {
	return withShared(storetest.Options(dir))
}

// withShared is this engine's test options around shared ones.
func withShared(so storage.Options) Options {
	o := DefaultOptions()
	o.Options = so
	o.MappedFileSizeConsumeQueue = 100 * 20
	o.MaxHashSlotNum = 64
	o.MaxIndexNum = 100
	return o
}

func engine() storetest.Engine {
	return storetest.Engine{
		Open:  func(t *testing.T, o storage.Options) storage.Store { return openT(t, withShared(o)) },
		Close: func(t *testing.T, s storage.Store) { closeT(t, s.(*Store)) },
	}
}

func TestConformanceAsync(t *testing.T) { storetest.Run(t, engine()) }

func TestConformanceSync(t *testing.T) {
	e := engine()
	open := e.Open
	e.Open = func(t *testing.T, o storage.Options) storage.Store {
		o.FlushDiskType = storage.SyncFlush
		return open(t, o)
	}
	storetest.Run(t, e)
}
