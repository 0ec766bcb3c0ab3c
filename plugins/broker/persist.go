package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/kernel/fsutil"

	"github.com/mqd/mqd/protocols/remoting/body"
)

// Metadata file names under <storePathRootDir>/config, as RocketMQ names them.
const (
	topicsFile            = "topics.json"
	subscriptionGroupFile = "subscriptionGroup.json"
	consumerOffsetFile    = "consumerOffset.json"
)

// writeFileSafe replaces path with data the way RocketMQ's MixAll.string2File
// does, made crash-safe: the new content goes to <path>.tmp and is fsynced, the
// previous content is kept in <path>.bak, then the tmp file is renamed over path
// and the directory fsynced. At every instant either path or <path>.bak holds a
// complete version.
func writeFileSafe(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeSync(tmp, data); err != nil {
		return err
	}
	if prev, err := os.ReadFile(path); err == nil && len(prev) > 0 {
		if err := writeSync(path+".bak", prev); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadMeta loads one metadata file with loadFileWithBak: a failure of both
// the file and its .bak is an error naming what, a fallback to the .bak a
// warning.
func (b *Broker) loadMeta(path, what string, decode func([]byte) error) (found bool, err error) {
	found, usedBak, err := loadFileWithBak(path, decode)
	if err != nil {
		return false, fmt.Errorf("load %s: %w", what, err)
	}
	if usedBak {
		b.log.Warn().Str("file", path).Msg(what + ": file unreadable, loaded its .bak")
	}
	return found, nil
}

// loadFileWithBak reads and decodes path, falling back to <path>.bak when path is
// missing, empty or does not decode (RocketMQ's ConfigManager.load). found is
// false when neither file has content. A decode failure of both files is an
// error: starting with empty metadata would lose it on the next persist.
func loadFileWithBak(path string, decode func([]byte) error) (found bool, usedBak bool, err error) {
	data, rerr := os.ReadFile(path)
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return false, false, rerr
	}
	var primaryErr error
	if len(bytes.TrimSpace(data)) > 0 {
		if primaryErr = decode(data); primaryErr == nil {
			return true, false, nil
		}
	}
	bak, berr := os.ReadFile(path + ".bak")
	if berr != nil && !errors.Is(berr, fs.ErrNotExist) {
		return false, false, berr
	}
	if len(bytes.TrimSpace(bak)) == 0 {
		if primaryErr != nil {
			return false, false, fmt.Errorf("%s: %w (and no usable %s.bak)", path, primaryErr, filepath.Base(path))
		}
		return false, false, nil
	}
	if err := decode(bak); err != nil {
		if primaryErr != nil {
			return false, false, fmt.Errorf("%s: %w; %s.bak: %v", path, primaryErr, filepath.Base(path), err)
		}
		return false, false, fmt.Errorf("%s.bak: %w", path, err)
	}
	return true, true, nil
}

// encodeTable encodes a metadata table: pretty (tabs, as RocketMQ's files are)
// for the files on disk, compact for the wire.
func encodeTable(v any, pretty bool) ([]byte, error) {
	if pretty {
		return json.MarshalIndent(v, "", "\t")
	}
	return body.Marshal(v)
}

// filePersister writes one table's file with group commit. Every persist
// call counts a change; a write covers every change counted before it took
// its snapshot, so the callers of a burst (a producer auto-creating thousands
// of topics from 64 threads) share writes instead of each rewriting and
// fsyncing the whole table in turn, which is quadratic in the table size
// (docs/store.md, "Broker metadata").
type filePersister struct {
	mu      sync.Mutex // one writer at a time; the file ends with the newest table
	changes atomic.Uint64
	written uint64 // changes covered by the file (mu)
}

// persist returns once the file holds the table as it was when persist was
// called: written by this call, or by one that snapshot the table after it.
func (p *filePersister) persist(path string, encode func(pretty bool) ([]byte, error)) error {
	mine := p.changes.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written >= mine {
		return nil
	}
	covers := p.changes.Load() // read before the snapshot, so it includes them
	data, err := encode(true)
	if err != nil {
		return err
	}
	if err := writeFileSafe(path, data); err != nil {
		return err
	}
	p.written = covers
	return nil
}
