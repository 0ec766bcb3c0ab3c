package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/tlsconf/tlstest"
)

// echoServer accepts through srv.Listen and echoes one line per connection,
// reporting whether the connection was TLS.
func echoServer(t *testing.T, srv *Server) (addr string, isTLS chan bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = srv.Listen(ln)
	t.Cleanup(func() { ln.Close() })
	isTLS = make(chan bool, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				isTLS <- IsTLS(c)
				c.Write(buf)
			}()
		}
	}()
	return ln.Addr().String(), isTLS
}

func roundTrip(c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	_, err := io.ReadFull(c, buf)
	return err
}

func newServer(t *testing.T, mode Mode, clientAuth string) (*Server, *tlstest.CA, string) {
	t.Helper()
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	cert, key := ca.Issue(t, dir, "server")
	srv, err := NewServer(ServerOptions{Mode: mode, CertPath: cert, KeyPath: key, ClientAuth: clientAuth, TrustCertPath: ca.CertPath}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, ca, dir
}

func TestPermissiveServesBoth(t *testing.T) {
	srv, _, _ := newServer(t, Permissive, "")
	addr, isTLS := echoServer(t, srv)
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(plain); err != nil {
		t.Fatalf("plain client on a permissive port: %v", err)
	}
	if <-isTLS {
		t.Fatal("plain connection reported as TLS")
	}
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS client on a permissive port: %v", err)
	}
	if err := roundTrip(tc); err != nil {
		t.Fatal(err)
	}
	if !<-isTLS {
		t.Fatal("TLS connection reported as plain")
	}
}

func TestEnforcingRefusesPlain(t *testing.T) {
	srv, ca, _ := newServer(t, Enforcing, "")
	addr, _ := echoServer(t, srv)
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(plain); err == nil {
		t.Fatal("plain client served by an enforcing port")
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca.CertPath)
	pool.AppendCertsFromPEM(pem)
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("verified TLS client: %v", err)
	}
	if err := roundTrip(tc); err != nil {
		t.Fatal(err)
	}
}

func TestClientCertificateRequired(t *testing.T) {
	srv, ca, _ := newServer(t, Enforcing, "require")
	addr, _ := echoServer(t, srv)
	anon, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		err = roundTrip(anon)
	}
	if err == nil {
		t.Fatal("client without a certificate served")
	}
	cert, key := ca.Issue(t, t.TempDir(), "client")
	cfg, err := ClientConfig(ClientOptions{Enable: true, CertPath: cert, KeyPath: key})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	if err := roundTrip(tc); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateReloaded(t *testing.T) {
	srv, ca, dir := newServer(t, Enforcing, "")
	addr, _ := echoServer(t, srv)
	serial := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	ca.Issue(t, dir, "server") // rotate in place
	srv.Reload()
	if after := serial(); after == before {
		t.Fatalf("still serving certificate %s after rotation", before)
	}
	if srv.Reloads() != 1 {
		t.Fatalf("reloads %d, want 1", srv.Reloads())
	}
	// A broken file keeps the current certificate.
	os.WriteFile(dir+"/server.pem", []byte("garbage"), 0o600)
	srv.Reload()
	serial()
}

func TestBadSettingsRefused(t *testing.T) {
	if _, err := ParseMode("strict"); err == nil {
		t.Error("mode strict accepted")
	}
	if _, err := NewServer(ServerOptions{Mode: Enforcing}, zerolog.Nop()); err == nil {
		t.Error("enforcing without certificate accepted")
	}
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, t.TempDir(), "s")
	if _, err := NewServer(ServerOptions{Mode: Enforcing, CertPath: cert, KeyPath: key, ClientAuth: "require"}, zerolog.Nop()); err == nil {
		t.Error("client auth without a trust file accepted")
	}
	if _, err := NewServer(ServerOptions{Mode: Enforcing, CertPath: cert, KeyPath: cert}, zerolog.Nop()); err == nil {
		t.Error("certificate as key accepted")
	}
}

// TestSlowHandshakeClosed (RELIABILITY A7): a client that starts a TLS
// handshake and stalls is dropped after the handshake timeout, on a
// permissive and an enforcing port.
func TestSlowHandshakeClosed(t *testing.T) {
	for _, mode := range []Mode{Permissive, Enforcing} {
		ca := tlstest.NewCA(t)
		cert, key := ca.Issue(t, t.TempDir(), "server")
		srv, err := NewServer(ServerOptions{Mode: mode, CertPath: cert, KeyPath: key, HandshakeTimeout: 200 * time.Millisecond}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		addr, _ := echoServer(t, srv)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte{0x16, 0x03, 0x01}) // a record header, then nothing
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		began := time.Now()
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: stalled handshake still open after 5 s", mode)
		}
		if took := time.Since(began); took > 3*time.Second {
			t.Fatalf("%s: closed after %v", mode, took)
		}
	}
}
