// Package waittest owns the one way tests wait for a condition: poll it until
// it holds or a deadline passes, never a bare sleep standing in for it.
package waittest

import (
	"testing"
	"time"
)

// Interval is how often For polls.
const Interval = 5 * time.Millisecond

// For polls cond every Interval until it holds, or fails the test after
// timeout with the message.
func For(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(Interval)
	}
}
