package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/tlsconf/tlstest"
)

// slowMod is a module whose Start waits until released, to observe /readyz
// while a kernel is starting.
type slowMod struct{ release chan struct{} }

var slowRelease = make(chan struct{})

func (*slowMod) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: "admintest.slow", New: func() kernel.Module { return &slowMod{release: slowRelease} }}
}
func (m *slowMod) Start() error { <-m.release; return nil }

func init() { kernel.RegisterModule(new(slowMod)) }

// noProfile keeps the shipped profiles (which set app keys) out of these tests.
func noProfile(string) ([]byte, error) { return []byte("{}"), nil }

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func startKernel(t *testing.T, sets ...string) (*kernel.Kernel, *Module, chan error) {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Env: []string{}, ProfileSource: noProfile, Sets: append([]string{"admin.listen=127.0.0.1:0"}, sets...)})
	if err != nil {
		t.Fatal(err)
	}
	k := kernel.New(cfg, zerolog.Nop())
	if err := k.Load(context.Background(), ModuleID, "admintest.slow"); err != nil {
		t.Fatal(err)
	}
	var m *Module
	for _, mod := range k.Loaded() {
		if a, ok := mod.(*Module); ok {
			m = a
		}
	}
	started := make(chan error, 1)
	go func() { started <- k.Start() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = k.Stop(ctx)
	})
	return k, m, started
}

func waitAddr(t *testing.T, m *Module) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.Addr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("admin endpoint did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + m.Addr().String()
}

func TestHealthAndReadiness(t *testing.T) {
	slowRelease = make(chan struct{}) // a fresh gate for every run (-count)
	k, m, started := startKernel(t)
	base := waitAddr(t, m)
	if code, body := get(t, base+"/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz %d %s", code, body)
	}
	// The slow module has not started: not ready.
	if code, body := get(t, base+"/readyz", ""); code != 503 || !strings.Contains(body, `"ready": false`) {
		t.Fatalf("/readyz while starting: %d %s", code, body)
	}
	close(slowRelease)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz", ""); code != 200 {
		t.Fatalf("/readyz after start: %d %s", code, body)
	}
	// A failing health check makes it unready, with the reason.
	k.Admin().HealthCheck("store", func() error { return io.ErrUnexpectedEOF })
	if code, body := get(t, base+"/readyz", ""); code != 503 || !strings.Contains(body, "unexpected EOF") {
		t.Fatalf("/readyz with a failing check: %d %s", code, body)
	}
	k.Admin().HealthCheck("store", nil)

	var mods []kernel.ModuleStatus
	_, body := get(t, base+"/plugins", "")
	if err := json.Unmarshal([]byte(body), &mods); err != nil || len(mods) != 2 || mods[0].ID != ModuleID || !mods[1].Started {
		t.Fatalf("/plugins %s (%v)", body, err)
	}
	// Endpoints registered by other modules are served, with their methods.
	k.Admin().Handle(kernel.AdminHandler{Path: "/swap", Methods: []string{"POST"}, Doc: "test",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "swapped") })})
	if code, _ := get(t, base+"/swap", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /swap = %d, want 405", code)
	}
	resp, err := http.Post(base+"/swap", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(data) != "swapped" {
		t.Fatalf("POST /swap = %q", data)
	}
	if code, _ := get(t, base+"/nope", ""); code != 404 {
		t.Fatalf("/nope = %d", code)
	}
	if _, body := get(t, base+"/config", ""); !strings.Contains(body, `"admin.listen"`) {
		t.Fatalf("/config lacks admin.listen: %s", body)
	}
}

// startWithToken runs the endpoint requiring token; it returns the module
// and its base URL.
func startWithToken(t *testing.T, token string) (*Module, string) {
	t.Helper()
	slowRelease = make(chan struct{})
	close(slowRelease)
	_, m, started := startKernel(t, "admin.token="+token)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	return m, waitAddr(t, m)
}

func TestTokenRequired(t *testing.T) {
	const token = "0123456789abcdef-token"
	_, base := startWithToken(t, token)
	if code, _ := get(t, base+"/healthz", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := get(t, base+"/healthz", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	if code, _ := get(t, base+"/healthz", token); code != 200 {
		t.Fatalf("token: %d, want 200", code)
	}
	// Profiles are behind the token too.
	if code, _ := get(t, base+"/debug/pprof/goroutine?debug=1", ""); code != http.StatusUnauthorized {
		t.Fatalf("pprof without token: %d, want 401", code)
	}
	if code, body := get(t, base+"/debug/pprof/goroutine?debug=1", token); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("pprof goroutine profile: %d %.200s", code, body)
	}
	if _, body := get(t, base+"/config", token); strings.Contains(body, token) || !strings.Contains(body, "(redacted)") {
		t.Fatalf("/config shows the token: %s", body)
	}
}

func TestNonLoopbackNeedsSettingAndToken(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Listen: "0.0.0.0:0"}, "admin.allowRemote=true"},
		{Options{Listen: "192.0.2.1:9"}, "admin.allowRemote=true"},
		{Options{Listen: "0.0.0.0:0", AllowRemote: true}, "admin.token must be set"},
		{Options{Listen: "0.0.0.0:0", AllowRemote: true, Token: "short"}, "admin.token must be set"},
		{Options{Listen: "auto"}, "not resolved"},
		{Options{Listen: "127.0.0.1:0"}, ""},
		{Options{Listen: "[::1]:0"}, ""},
		{Options{Listen: "localhost:0"}, ""},
		{Options{Listen: ""}, ""},
		{Options{Listen: "0.0.0.0:0", AllowRemote: true, Token: "0123456789abcdef"}, "HTTPS only"},
		{Options{Listen: "0.0.0.0:0", AllowRemote: true, Token: "0123456789abcdef", CertPath: "c.pem", KeyPath: "k.pem"}, ""},
	} {
		err := ValidateListen(tc.o)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err %v, want %q", tc.o, err, tc.want)
		}
	}
	// The kernel refuses to load the module with such a setting.
	cfg, err := config.Load(config.LoadOptions{Env: []string{}, ProfileSource: noProfile, Sets: []string{"admin.listen=0.0.0.0:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := kernel.New(cfg, zerolog.Nop()).Load(context.Background(), ModuleID); err == nil || !strings.Contains(err.Error(), "allowRemote") {
		t.Fatalf("Load = %v, want a refusal", err)
	}
}

// TestDerivedPortTaken: an address derived from "auto" that is taken by the
// time the module starts costs only the endpoint; one an operator chose
// fails the start.
func TestDerivedPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	for _, auto := range []bool{true, false} {
		cfg, err := config.Load(config.LoadOptions{Env: []string{}, ProfileSource: noProfile})
		if err != nil {
			t.Fatal(err)
		}
		source := "test"
		if auto {
			source = SourceAuto
		}
		if err := cfg.Set("admin.listen", taken, source); err != nil {
			t.Fatal(err)
		}
		k := kernel.New(cfg, zerolog.Nop())
		if err := k.Load(context.Background(), ModuleID); err != nil {
			t.Fatal(err)
		}
		err = k.Start()
		if auto && err != nil {
			t.Fatalf("derived address taken: start failed: %v", err)
		}
		if !auto && err == nil {
			t.Fatal("chosen address taken: start succeeded")
		}
		_ = k.Stop(context.Background())
	}
}

// TestWrongTokensRateLimited: an address that sent five wrong tokens gets
// 429 for the rest of the minute, even with the right token (guessing costs
// a minute per five tries); the failures are logged once.
func TestWrongTokensRateLimited(t *testing.T) {
	const token = "0123456789abcdef-token"
	m, base := startWithToken(t, token)
	for i := range maxAuthFailures {
		if code, _ := get(t, base+"/healthz", fmt.Sprint("guess", i)); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	if code, _ := get(t, base+"/healthz", token); code != http.StatusTooManyRequests {
		t.Fatalf("right token after %d wrong ones: %d, want 429", maxAuthFailures, code)
	}
	// The window passes: the right token works again.
	m.failMu.Lock()
	for _, f := range m.fails {
		f.since = f.since.Add(-authWindow)
	}
	m.failMu.Unlock()
	if code, _ := get(t, base+"/healthz", token); code != http.StatusOK {
		t.Fatalf("after the window: %d, want 200", code)
	}
}

// TestRemoteEndpointServesHTTPSOnly (#16): off loopback the endpoint speaks
// HTTPS with the configured certificate (tls.server.* by default), plain
// HTTP gets nothing, and the token is still required.
func TestRemoteEndpointServesHTTPSOnly(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, t.TempDir(), "admin")
	const token = "0123456789abcdef-token"
	slowRelease = make(chan struct{})
	close(slowRelease)
	_, m, started := startKernel(t, "admin.listen=0.0.0.0:0", "admin.allowRemote=true", "admin.token="+token,
		"tls.server.certPath="+cert, "tls.server.keyPath="+key)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	port := m.Addr().(*net.TCPAddr).Port
	pem, _ := os.ReadFile(ca.CertPath)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("https: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(token); code != http.StatusOK {
		t.Fatalf("https with token: %d", code)
	}
	if code := call(""); code != http.StatusUnauthorized {
		t.Fatalf("https without token: %d", code)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served off loopback")
		}
	}
}
