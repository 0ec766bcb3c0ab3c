// Package fsutil owns the crash-safe file plumbing every module shares:
// replacing a file so a crash leaves the old or the new content, never a torn
// one, and making a directory's entries (created, renamed, removed files)
// durable. See docs/faults.md for the crash scenarios this serves.
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteFile replaces path with data atomically: the data goes to a temporary
// file in the same directory, which is given perm, fsynced and renamed over
// path; then the directory is fsynced so the rename survives a power failure.
// The temporary file is removed on every error.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory so the entries created, renamed or removed in it
// are durable. Filesystems that cannot sync a directory (EINVAL) are accepted:
// there is nothing more to do on them.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// SyncFS makes everything written to the file system holding dir durable,
// metadata included (syncfs): one call where fsyncing thousands of new
// directories one by one would take seconds.
func SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
