// Package admin is mqd's operator HTTP endpoint, module "admin.http": health
// (/healthz), readiness (/readyz), the merged configuration with each value's
// source (/config), the loaded modules (/plugins), and whatever other modules
// register in the kernel's admin registry (/metrics, /ha and /swap from the
// broker, /reload from the launcher). It listens on loopback by
// default; any other address needs admin.allowRemote=true, a token
// (admin.token, sent as "Authorization: Bearer <token>") and a certificate
// (served over HTTPS only), and the module refuses to start otherwise. It knows nothing of RocketMQ.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/kernel/tlsconf"
)

// ModuleID is the admin endpoint's module.
const ModuleID kernel.ModuleID = "admin.http"

// Auto is admin.listen's default: the launcher (cmd/mqd) replaces it with an
// address derived from the role's port (broker: listenPort+2, name server:
// listenPort+1000, on 127.0.0.1; docs/architecture.md, Admin registry).
const Auto = "auto"

func init() {
	kernel.RegisterModule(new(Module))
	config.Register(
		config.Key{Path: "admin.listen", Default: Auto, Doc: `operator HTTP endpoint address ("" disables; "auto": 127.0.0.1 on the broker port + 2 (10913) or the name server port + 1000 (10876), none when that port is 0)`},
		config.Key{Path: "admin.allowRemote", Default: false, Doc: "allow a non-loopback admin.listen (requires admin.token)"},
		config.Key{Path: "admin.token", Default: "", Doc: "bearer token the admin endpoint requires (always, when set)"},
		config.Key{Path: "admin.certPath", Default: "", Doc: "PEM certificate of a non-loopback admin endpoint, which is served over HTTPS only (default: tls.server.certPath)"},
		config.Key{Path: "admin.keyPath", Default: "", Doc: "PEM private key of admin.certPath (default: tls.server.keyPath)"},
	)
}

// Options are the admin.* keys.
type Options struct {
	Listen      string `koanf:"listen"`
	AllowRemote bool   `koanf:"allowRemote"`
	Token       string `koanf:"token"`
	CertPath    string `koanf:"certPath"`
	KeyPath     string `koanf:"keyPath"`
}

// Module serves the admin endpoint.
type Module struct {
	opts Options
	cfg  *config.Config
	k    *kernel.Kernel
	reg  *kernel.AdminRegistry
	log  zerolog.Logger
	auto bool // the address was derived, not chosen (SourceAuto)

	addr atomic.Pointer[net.Addr] // set once listening; read from other goroutines
	srv  *http.Server
	tls  *tlsconf.Server // off loopback: the certificate, reloaded on change

	failMu sync.Mutex
	fails  map[string]*authFailures // by remote IP
}

// authFailures counts an address's wrong tokens in the current window.
type authFailures struct {
	n     int
	since time.Time
}

// Failed token attempts: an address that sends maxAuthFailures wrong tokens
// within authWindow is answered 429 for the rest of the window, without the
// token being compared, so guessing costs a window per few tries.
const (
	maxAuthFailures = 5
	authWindow      = time.Minute
)

// authBlocked reports whether ip is over its failure budget.
func (m *Module) authBlocked(ip string, now time.Time) bool {
	m.failMu.Lock()
	defer m.failMu.Unlock()
	f := m.fails[ip]
	return f != nil && now.Sub(f.since) < authWindow && f.n >= maxAuthFailures
}

// authFailed records a wrong token from ip.
func (m *Module) authFailed(ip string, now time.Time) {
	m.failMu.Lock()
	defer m.failMu.Unlock()
	if m.fails == nil {
		m.fails = map[string]*authFailures{}
	}
	f := m.fails[ip]
	if f == nil || now.Sub(f.since) >= authWindow {
		if len(m.fails) >= 10000 { // bounded: forget the oldest windows
			for k, v := range m.fails {
				if now.Sub(v.since) >= authWindow {
					delete(m.fails, k)
				}
			}
		}
		f = &authFailures{since: now}
		m.fails[ip] = f
	}
	f.n++
	if f.n == maxAuthFailures {
		m.log.Warn().Str("remote", ip).Int("failures", f.n).Dur("window", authWindow).Msg("admin endpoint: too many wrong tokens; refusing this address for the rest of the window")
	}
}

// MQDModule implements kernel.Module.
func (*Module) MQDModule() kernel.ModuleInfo {
	return kernel.ModuleInfo{ID: ModuleID, New: func() kernel.Module { return new(Module) }}
}

// SourceAuto is the configuration source of an admin address the launcher
// derived from "auto" (the role's port plus an offset), not one an operator
// chose: if that port is taken at start, the daemon runs without the
// endpoint instead of failing.
const SourceAuto = "auto (role port + offset)"

// Provision reads admin.*.
func (m *Module) Provision(ctx kernel.Context) error {
	if err := ctx.Config.Unmarshal("admin", &m.opts); err != nil {
		return fmt.Errorf("admin config: %w", err)
	}
	m.auto = ctx.Config.Source("admin.listen") == SourceAuto
	if m.opts.CertPath == "" && m.opts.KeyPath == "" {
		m.opts.CertPath, m.opts.KeyPath = ctx.Config.String(tlsconf.ServerCertPathKey), ctx.Config.String(tlsconf.ServerKeyPathKey)
	}
	m.cfg, m.k, m.reg, m.log = ctx.Config, ctx.Kernel(), ctx.Admin(), ctx.Logger
	return nil
}

// Validate enforces the loopback rule.
func (m *Module) Validate() error { return ValidateListen(m.opts) }

// ValidateListen checks an admin address: loopback, or explicitly allowed
// with a token.
func ValidateListen(o Options) error {
	if o.Listen == "" {
		return nil
	}
	if o.Listen == Auto {
		return errors.New(`admin.listen "auto" was not resolved by the launcher; set an address or ""`)
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %q: %w", o.Listen, err)
	}
	if isLoopback(host) {
		return nil
	}
	if !o.AllowRemote {
		return fmt.Errorf("admin.listen %q is not a loopback address: set admin.allowRemote=true and admin.token to expose the admin endpoint", o.Listen)
	}
	if len(o.Token) < 16 {
		return fmt.Errorf("admin.listen %q is not a loopback address: admin.token must be set (at least 16 characters)", o.Listen)
	}
	if o.CertPath == "" || o.KeyPath == "" {
		return fmt.Errorf("admin.listen %q is not a loopback address: the endpoint is served over HTTPS only there; set admin.certPath and admin.keyPath (or tls.server.certPath and tls.server.keyPath)", o.Listen)
	}
	return nil
}

// remote reports an address off loopback: served over TLS.
func remote(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	return err == nil && !isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start listens and serves.
func (m *Module) Start() error {
	if m.opts.Listen == "" {
		m.log.Info().Msg("admin endpoint disabled (admin.listen is empty)")
		return nil
	}
	ln, err := net.Listen("tcp", m.opts.Listen)
	if err != nil {
		if m.auto {
			// The launcher found the derived port free, but something took
			// it since: an address nobody chose costs only the endpoint.
			m.log.Warn().Err(err).Str("addr", m.opts.Listen).
				Msg("admin endpoint disabled: its derived port was taken; set admin.listen to choose an address")
			return nil
		}
		return fmt.Errorf("admin endpoint: %w", err)
	}
	if remote(m.opts.Listen) {
		ts, err := tlsconf.NewServer(tlsconf.ServerOptions{Mode: tlsconf.Enforcing, CertPath: m.opts.CertPath, KeyPath: m.opts.KeyPath}, m.log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin endpoint: %w", err)
		}
		m.tls = ts
		ln = ts.Listen(ln)
	}
	a := ln.Addr()
	m.addr.Store(&a)
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error().Err(err).Msg("admin endpoint stopped")
		}
	}()
	m.log.Info().Str("addr", ln.Addr().String()).Msg("admin endpoint listening")
	return nil
}

// Addr returns the listening address (nil when disabled).
func (m *Module) Addr() net.Addr {
	if a := m.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Stop closes the listener and drains requests.
func (m *Module) Stop(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	err := m.srv.Shutdown(ctx)
	if m.tls != nil {
		m.tls.Close()
	}
	return err
}

// ServeHTTP authenticates, then routes to the built-in endpoints or the registry.
func (m *Module) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.opts.Token != "" {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		now := time.Now()
		if m.authBlocked(ip, now) {
			w.Header().Set("Retry-After", strconv.Itoa(int(authWindow/time.Second)))
			http.Error(w, "admin endpoint: too many wrong tokens from this address; try again later", http.StatusTooManyRequests)
			return
		}
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(m.opts.Token)) != 1 {
			m.authFailed(ip, now)
			w.Header().Set("WWW-Authenticate", `Bearer realm="mqd"`)
			http.Error(w, "admin endpoint: missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
	}
	if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
		servePprof(w, r)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		kernel.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case "/readyz":
		m.readyz(w)
		return
	case "/config":
		m.config(w)
		return
	case "/plugins":
		kernel.WriteJSON(w, http.StatusOK, m.k.Status())
		return
	case "/plugins/external":
		kernel.WriteJSON(w, http.StatusOK, pluginhost.Loaded())
		return
	case "/":
		m.index(w)
		return
	}
	h, ok := m.reg.Lookup(r.URL.Path)
	if !ok {
		http.Error(w, "admin endpoint: no such path "+r.URL.Path+" (GET / lists them)", http.StatusNotFound)
		return
	}
	if len(h.Methods) > 0 && !contains(h.Methods, r.Method) {
		w.Header().Set("Allow", strings.Join(h.Methods, ", "))
		http.Error(w, "admin endpoint: "+r.URL.Path+" accepts "+strings.Join(h.Methods, ", "), http.StatusMethodNotAllowed)
		return
	}
	h.Handler.ServeHTTP(w, r)
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func (m *Module) readyz(w http.ResponseWriter) {
	type status struct {
		Ready   bool                  `json:"ready"`
		Modules []kernel.ModuleStatus `json:"modules"`
		Failing map[string]string     `json:"failing,omitempty"`
	}
	st := status{Ready: m.k.Ready(), Modules: m.k.Status()}
	for name, err := range m.reg.Check() {
		if st.Failing == nil {
			st.Failing = map[string]string{}
		}
		st.Failing[name] = err.Error()
		st.Ready = false
	}
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	kernel.WriteJSON(w, code, st)
}

// secretKeys are never shown by /config.
var secretKeys = map[string]bool{"admin.token": true, "acl.secretKey": true, "discovery.nats.password": true, "discovery.nats.token": true}

func (m *Module) config(w http.ResponseWriter) {
	type entry struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	// The kernel's current configuration: a reload replaces it.
	cfg := m.k.Config()
	out := map[string]entry{}
	for path := range cfg.All() {
		v := cfg.Get(path)
		if secretKeys[path] {
			v = "(redacted)"
		}
		out[path] = entry{Value: v, Source: cfg.Source(path)}
	}
	kernel.WriteJSON(w, http.StatusOK, out)
}

func (m *Module) index(w http.ResponseWriter) {
	type ep struct {
		Path    string   `json:"path"`
		Methods []string `json:"methods,omitempty"`
		Doc     string   `json:"doc"`
	}
	eps := []ep{
		{"/healthz", []string{"GET"}, "the process is up"},
		{"/readyz", []string{"GET"}, "every module started and every health check passes"},
		{"/config", []string{"GET"}, "merged configuration with each value's source"},
		{"/plugins", []string{"GET"}, "loaded modules and whether they started"},
		{"/plugins/external", []string{"GET"}, "out-of-process plugins this daemon runs: state, pid, crashes, restarts, last error"},
		{"/debug/pprof/", []string{"GET"}, "Go runtime profiles (go tool pprof http://<admin>/debug/pprof/profile)"},
	}
	for _, h := range m.reg.Endpoints() {
		eps = append(eps, ep{h.Path, h.Methods, h.Doc})
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Path < eps[j].Path })
	kernel.WriteJSON(w, http.StatusOK, eps)
}

// servePprof serves the Go runtime's profiles: operators profile a broker
// under load with go tool pprof, behind the same loopback default and token
// as every other endpoint.
func servePprof(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r) // the index and the named profiles (heap, goroutine, ...)
	}
}
