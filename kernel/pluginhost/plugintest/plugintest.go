// Package plugintest builds and installs the example plugins of this
// repository for tests of the plugin host and of the modules that stand for
// plugins (docs/plugins.md).
package plugintest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Build builds the main package pkg (relative to the repository root, e.g.
// "./plugins/quorum") into dir and returns its path (Go's build cache makes
// a second build of the same package a link only).
func Build(t testing.TB, pkg, dir string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}
