package cli

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
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/admin"
	"github.com/mqd/mqd/kernel/config"
)

// The admin endpoint (kernel/admin, module admin.http) and the subcommands
// that call it: mqd health, mqd plugins, mqd config print --live.

// Default admin ports when admin.listen is "auto". A broker's sits next to its
// port, which RocketMQ leaves free (10911: 10909 is the VIP channel, 10912 HA,
// so 10913). A name server's is 1000 above its port (9876: 10876): operators
// running several name servers on one host number them 9876, 9877, 9878, so
// "next to it" would take the next name server's port.
const (
	adminOffsetBroker  = 2
	adminOffsetNamesrv = 1000
)

// sourceAuto marks an admin address derived from "auto": if that port is taken
// the daemon runs without the endpoint (with a warning) instead of failing.
const sourceAuto = admin.SourceAuto

// resolveAdminListen replaces admin.listen "auto" with 127.0.0.1:<port>: the
// broker's listenPort+2 (embedded and broker modes) or the name server's
// listenPort+1000. A role port of 0 (any free port) disables the endpoint: its
// address could not be found without reading the log, and an ephemeral
// listener may take a port a test or a neighbour picked as free.
func resolveAdminListen(mode string, cfg *config.Config) error {
	if _, ok := config.Lookup("admin.listen"); !ok || cfg.String("admin.listen") != admin.Auto {
		return nil
	}
	addr := adminAddrFor(mode, cfg)
	return cfg.Set("admin.listen", addr, sourceAuto)
}

func adminAddrFor(mode string, cfg *config.Config) string {
	portKey, off := "broker.listenPort", adminOffsetBroker
	if mode == modeNamesrv || mode == modeController {
		portKey, off = "namesrv.listenPort", adminOffsetNamesrv
	}
	port := cfg.Int(portKey)
	if port == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port+off))
}

// daemonModules is what a daemon loads: the admin endpoint first (so /healthz
// answers and /readyz says "starting" while the apps start), then the apps.
func daemonModules(mode string, cfg *config.Config) []kernel.ModuleID {
	apps := appsOf(mode)
	if _, err := kernel.GetModule(admin.ModuleID); err != nil || cfg.String("admin.listen") == "" {
		return apps
	}
	return append([]kernel.ModuleID{admin.ModuleID}, apps...)
}

// adminFallback turns an "auto" admin address that is already taken into "no
// endpoint" with a warning; an address the operator chose must be free.
func adminFallback(cfg *config.Config, warn func(string)) error {
	addr := cfg.String("admin.listen")
	if addr == "" || cfg.Source("admin.listen") != sourceAuto {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		warn(fmt.Sprintf("admin endpoint disabled: %s is taken (%v); set admin.listen to choose another address", addr, err))
		return cfg.Set("admin.listen", "", sourceAuto)
	}
	return ln.Close()
}

// adminOptions are the flags of the subcommands that call the admin endpoint.
type adminOptions struct {
	addr  string
	token string
}

// addAdminFlags adds --admin and --token. --addr, the name health and plugins
// used, stays as a hidden alias so that existing scripts keep working.
func addAdminFlags(fs *pflag.FlagSet, a *adminOptions) {
	fs.StringVar(&a.addr, "admin", "", "admin endpoint `HOST:PORT` (default: where the daemon started with the same flags listens)")
	cmdline.DeprecatedAlias(fs, "admin", "addr")
	fs.StringVar(&a.token, "token", "", "admin token (default $MQD_ADMIN_TOKEN, then admin.token of the configuration)")
}

// adminCommand is a subcommand that calls the admin endpoint of the daemon
// that the configuration flags describe (or of --admin); call gets the
// positional arguments too.
func adminCommand(use, short string, call func(args []string, addr, token string) error, sys IO) *cobra.Command {
	var o options
	var a adminOptions
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cmdline.NoArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkRole(o.role); err != nil {
				return err
			}
			addr, token, err := adminTarget(&a, &o, sys)
			if err != nil {
				return err
			}
			return call(args, addr, token)
		},
	}
	addConfigFlags(c.Flags(), &o)
	addRoleFlag(c.Flags(), &o, "which daemon, for its admin address")
	addAdminFlags(c.Flags(), &a)
	return c
}

// adminTarget returns the admin address and token to use: the flags', else
// those of the daemon that the same configuration flags would start.
func adminTarget(a *adminOptions, o *options, sys IO) (addr, token string, err error) {
	addr, token = a.addr, a.token
	if token == "" {
		token = getenv(sys, "MQD_ADMIN_TOKEN")
	}
	if addr != "" {
		return addr, token, nil
	}
	cfg, err := loadConfig(o.role, o, sys)
	if err != nil {
		return "", "", err
	}
	addr = cfg.String("admin.listen")
	if token == "" {
		token = cfg.String("admin.token")
	}
	if addr == "" {
		return "", "", fmt.Errorf("the admin endpoint is disabled (admin.listen is empty); use --admin")
	}
	return addr, token, nil
}

func healthCommand(sys IO) *cobra.Command {
	return adminCommand("health", "readiness of the running daemon (exit 1 if not ready)",
		func(_ []string, addr, token string) error { return health(addr, token, sys) }, sys)
}

func pluginsCommand(sys IO) *cobra.Command {
	return adminCommand("plugins", "the running daemon's modules",
		func(_ []string, addr, token string) error { return adminPrint(addr, "/plugins", token, sys) }, sys)
}

// adminShow prints what the admin endpoint answers on path (config print --live).
func adminShow(a *adminOptions, o *options, path string, sys IO) error {
	addr, token, err := adminTarget(a, o, sys)
	if err != nil {
		return err
	}
	return adminPrint(addr, path, token, sys)
}

// adminPrint copies the admin endpoint's answer on path to stdout.
func adminPrint(addr, path, token string, sys IO) error {
	code, data, err := adminGet(addr, path, token)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("admin endpoint %s: %s answered %d: %s", addr, path, code, strings.TrimSpace(string(data)))
	}
	_, err = sys.Stdout.Write(data)
	return err
}

// health prints /readyz as a table and fails when the daemon is not ready.
func health(addr, token string, sys IO) error {
	const path = "/readyz"
	code, data, err := adminGet(addr, path, token)
	if err != nil {
		return err
	}
	var st struct {
		Ready   bool `json:"ready"`
		Modules []struct {
			ID      string `json:"id"`
			Started bool   `json:"started"`
		} `json:"modules"`
		Failing map[string]string `json:"failing"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("admin endpoint %s: %s %d: %s", addr, path, code, strings.TrimSpace(string(data)))
	}
	state := "ready"
	if !st.Ready {
		state = "not ready"
	}
	fmt.Fprintf(sys.Stdout, "%s: %s\n", addr, state)
	for _, m := range st.Modules {
		s := "started"
		if !m.Started {
			s = "starting"
		}
		fmt.Fprintf(sys.Stdout, "  %-22s %s\n", m.ID, s)
	}
	for name, why := range st.Failing {
		fmt.Fprintf(sys.Stdout, "  check %-16s FAILING: %s\n", name, why)
	}
	if !st.Ready {
		return fmt.Errorf("%s is not ready", addr)
	}
	return nil
}

func getenv(sys IO, key string) string {
	env := sys.Environ
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// adminEndpoint is the URL base and HTTP client for an admin address. The
// endpoint serves plain HTTP on loopback and HTTPS anywhere else
// (docs/security.md); an explicit http:// or https:// prefix wins. The
// server certificate is verified against $MQD_ADMIN_CACERT when set, else
// against the system roots.
func adminEndpoint(addr string) (string, *http.Client, error) {
	if strings.HasPrefix(addr, "http://") {
		return addr, http.DefaultClient, nil
	}
	if !strings.HasPrefix(addr, "https://") {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && !isLoopbackHost(host) {
			addr = "https://" + addr
		} else {
			return "http://" + addr, http.DefaultClient, nil
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := os.Getenv("MQD_ADMIN_CACERT"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return "", nil, fmt.Errorf("MQD_ADMIN_CACERT: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return "", nil, fmt.Errorf("MQD_ADMIN_CACERT %s: no PEM certificate", ca)
		}
	}
	return addr, &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminGet fetches path from the admin endpoint.
func adminGet(addr, path, token string) (int, []byte, error) {
	return adminCall(http.MethodGet, addr, path, token, 10*time.Second)
}

// adminCall sends method path to the admin endpoint (with the bearer token
// when set) and returns the status code and body.
func adminCall(method, addr, path, token string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	base, client, err := adminEndpoint(addr)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin endpoint %s: %v", addr, shortNetErr(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, data, err
}

func shortNetErr(err error) error {
	var oe *net.OpError
	for e := err; e != nil; {
		if o, ok := e.(*net.OpError); ok {
			oe = o
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if oe != nil {
		return fmt.Errorf("%s: %v", oe.Op, oe.Err)
	}
	return err
}
