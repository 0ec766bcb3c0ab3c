// Package porttest finds free TCP ports for tests that must know a port
// before the process or module that listens on it starts (a broker keeps its
// port across a restart; raft peers list each other's addresses).
package porttest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Ports come from below Linux's ephemeral range (32768-60999): a port the OS
// hands out for outgoing connections could be taken by any client socket
// between the check and the listener's start.
const (
	low  = 20000
	high = 32700
)

// Free returns a port p such that p .. p+n-1 can all be listened on, on every
// interface (servers listen on ":port"). A broker opens listenPort+1 (HA) and,
// with the admin endpoint on "auto", listenPort+2, so its callers ask for 3.
func Free(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 200; try++ {
		p := low + rand.IntN(high-low-n)
		if free(p, n) {
			return p
		}
	}
	t.Fatalf("no %d free ports found below %d", n, high)
	return 0
}

// Addr is 127.0.0.1 and a free port.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Free(t, 1)))
}

func free(p, n int) bool {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p+i))
		if err != nil {
			return false
		}
		lns = append(lns, ln)
	}
	return true
}
