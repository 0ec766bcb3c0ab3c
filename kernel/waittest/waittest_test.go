package waittest

import (
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	For(t, 10*time.Second, func() bool { n++; return n == 3 }, "third poll")
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
}
