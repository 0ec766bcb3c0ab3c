// Package natstest runs a NATS server with JetStream inside the test
// process, for the tests of discovery.nats: nothing needs starting by hand.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an in-process NATS server.
type Server struct {
	*server.Server
	opts server.Options
}

// Start starts a JetStream-enabled server on a free loopback port with its
// store in a temporary directory; it shuts down at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{opts: server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	s.start(t)
	// The port it got is kept for a restart.
	s.opts.Port = s.Addr().(*net.TCPAddr).Port
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	s.Server = srv
	t.Cleanup(srv.Shutdown)
}

// Restart starts the server again on the same port with the same store,
// after Shutdown.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}
