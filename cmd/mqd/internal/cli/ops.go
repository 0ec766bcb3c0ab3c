package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

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
const sourceAuto = "auto (role port + offset)"

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
	if mode == modeNamesrv {
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

// opsOptions are the flags of the admin-calling subcommands.
type opsOptions struct {
	addr  string
	token string
	mode  string
}

// runOps runs mqd health | plugins | ready | config print --live.
func runOps(cmd string, args []string, sys IO) error {
	var o opsOptions
	var so options
	fs := newFlagSet("mqd "+cmd, &so, false)
	fs.StringVar(&o.addr, "addr", "", "")
	fs.StringVar(&o.token, "token", "", "")
	fs.StringVar(&o.mode, "role", modeEmbedded, "")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("mqd %s: unexpected argument %q", cmd, rest[0])}
	}
	if o.token == "" {
		o.token = getenv(sys, "MQD_ADMIN_TOKEN")
	}
	if o.addr == "" {
		// The address the daemon with the same flags would use.
		cfg, err := loadConfig(o.mode, &so, sys)
		if err != nil {
			return err
		}
		if err := resolveAdminListen(o.mode, cfg); err != nil {
			return err
		}
		o.addr = cfg.String("admin.listen")
		if o.token == "" {
			o.token = cfg.String("admin.token")
		}
		if o.addr == "" {
			return fmt.Errorf("the admin endpoint is disabled (admin.listen is empty); use --addr")
		}
	}
	path := map[string]string{"health": "/readyz", "plugins": "/plugins", "config": "/config"}[cmd]
	code, data, err := adminGet(o.addr, path, o.token)
	if err != nil {
		return err
	}
	switch cmd {
	case "health":
		var st struct {
			Ready   bool `json:"ready"`
			Modules []struct {
				ID      string `json:"id"`
				Started bool   `json:"started"`
			} `json:"modules"`
			Failing map[string]string `json:"failing"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("admin endpoint %s: %s %d: %s", o.addr, path, code, strings.TrimSpace(string(data)))
		}
		state := "ready"
		if !st.Ready {
			state = "not ready"
		}
		fmt.Fprintf(sys.Stdout, "%s: %s\n", o.addr, state)
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
			return fmt.Errorf("%s is not ready", o.addr)
		}
		return nil
	default:
		if code != http.StatusOK {
			return fmt.Errorf("admin endpoint %s: %s answered %d: %s", o.addr, path, code, strings.TrimSpace(string(data)))
		}
		_, err := sys.Stdout.Write(data)
		return err
	}
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

// adminGet fetches path from the admin endpoint.
func adminGet(addr, path, token string) (int, []byte, error) {
	return adminCall(http.MethodGet, addr, path, token, 10*time.Second)
}

// adminCall sends method path to the admin endpoint (with the bearer token
// when set) and returns the status code and body.
func adminCall(method, addr, path, token string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
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
