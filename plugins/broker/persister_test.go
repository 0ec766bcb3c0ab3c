package broker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFilePersisterGroupCommit: when persist returns, the file holds the
// caller's change, even when another caller's write covered it.
func TestFilePersisterGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "table.json")
	var (
		mu     sync.Mutex
		table  = map[string]int{}
		p      filePersister
		writes atomic.Int64
	)
	encode := func(bool) ([]byte, error) {
		writes.Add(1)
		mu.Lock()
		defer mu.Unlock()
		return json.Marshal(table)
	}
	const callers = 64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("k", i)
			mu.Lock()
			table[key] = i
			mu.Unlock()
			if err := p.persist(path, encode); err != nil {
				errs <- err
				return
			}
			data, err := os.ReadFile(path)
			if err != nil {
				errs <- err
				return
			}
			var got map[string]int
			if err := json.Unmarshal(data, &got); err != nil {
				errs <- err
				return
			}
			if _, ok := got[key]; !ok {
				errs <- fmt.Errorf("persist returned for %s, but the file lacks it", key)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, _ := os.ReadFile(path)
	var got map[string]int
	_ = json.Unmarshal(data, &got)
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != callers {
		t.Fatalf("file holds %d keys, want %d", len(keys), callers)
	}
	t.Logf("%d callers, %d writes", callers, writes.Load())
}
