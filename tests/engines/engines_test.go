// Package engines runs the official-client suite (package tests) once more
// with every broker on the Badger store engine (store.engine=badger), so
// that `go test ./...` proves both engines against the Go client. Tests of
// replication skip themselves there: Badger does not replicate.
package engines

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/tests"
)

func TestGoClientSuiteOnBadger(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the suite on Badger takes a minute")
	}
	if tests.RaceEnabled() {
		t.Skip("-race: the suite it runs would be built without -race, a repeat of the plain pass")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout", "14m", "github.com/mqd/mqd/tests")
	cmd.Env = append(os.Environ(), tests.EngineEnv+"=badger")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the Go-client suite on Badger failed: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}
