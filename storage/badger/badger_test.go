package badger

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

func engine() storetest.Engine {
	return storetest.Engine{
		Open: func(t *testing.T, opts storage.Options) storage.Store {
			t.Helper()
			s, err := Open(opts, DefaultOptions(), zerolog.Nop())
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
