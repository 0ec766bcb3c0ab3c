// Package cli is the mqd command line: it parses subcommands and flags, builds
// the layered configuration and the logger, and runs the chosen apps in a kernel
// until SIGINT or SIGTERM, stopping them gracefully. cmd/mqd's main only calls
// Main, so that everything here is testable.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/configs"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/logging"
)

// Modes: which apps a run loads, and which RocketMQ role's property names a
// .properties file, MQD_<NAME> and --set use.
const (
	modeEmbedded = "embedded" // name server + broker in one process
	modeNamesrv  = "namesrv"
	modeBroker   = "broker"
)

// Module IDs of the two apps.
const (
	appNamesrv kernel.ModuleID = "app.namesrv"
	appBroker  kernel.ModuleID = "app.broker"
)

// StopTimeout bounds the graceful stop after SIGINT or SIGTERM.
const StopTimeout = 30 * time.Second

// IO is what Main talks to; tests replace it.
type IO struct {
	Stdout, Stderr io.Writer
	// Environ is the environment; nil means os.Environ().
	Environ []string
	// Version is the build's version (set with -ldflags in main).
	Version string
	// Started is when the process started, for the startup time in "ready".
	Started time.Time
}

type options struct {
	profile     string
	file        string
	sets        stringList
	logLevel    string
	logFormat   string
	namesrvAddr string
	// config print only
	role   string
	format string
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// usageError is a command-line mistake: reported with a hint to run help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `mqd is a RocketMQ-compatible message broker.

Usage:
  mqd [flags]                      name server + broker in one process (embedded default)
  mqd namesrv [flags]              name server only (like mqnamesrv)
  mqd broker [-n ADDR] [flags]     broker only (like mqbroker)
  mqd config print [flags]         print the merged configuration and each value's source
  mqd config print --live          the running daemon's configuration (admin endpoint)
  mqd health [--addr A] [--token T] readiness of the running daemon (exit 1 if not ready)
  mqd plugins [--addr A]           the running daemon's modules
  mqd swap ha sync|async [--admin HOST:PORT]
                                   switch a running master's replication mode
                                   (admin endpoint, default 127.0.0.1:10913)
  mqd reload [--admin HOST:PORT]   re-read the running daemon's configuration (like SIGHUP)
  mqd version                      print the version
  mqd help                         print this help

Flags:
  --profile NAME      shipped profile layered over "default" (%s)
  -c FILE             config file: YAML (.yaml, .yml) or RocketMQ .properties / .conf
  --set KEY=VALUE     set a key (dotted path or RocketMQ name); repeatable
  --log-level LEVEL   trace, debug, info, warn, error
  --log-format FMT    auto, console or json
  -n ADDR             name server addresses host:port;host:port (broker and embedded)
  --role ROLE         config print: embedded, broker or namesrv (default embedded)
  --format FMT        config print: table or properties (default table)

Configuration layers, later wins: key defaults < profile "default" < --profile <
-c FILE < MQD_* environment (MQD_BROKER_LISTENPORT or MQD_LISTENPORT) < --set and
other flags. In embedded mode RocketMQ names are the broker's, and
broker.namesrvAddr defaults to this process's name server.
`

// Main runs mqd with args (without the program name) and returns the exit code.
func Main(args []string, sys IO) int {
	if sys.Stdout == nil {
		sys.Stdout = os.Stdout
	}
	if sys.Stderr == nil {
		sys.Stderr = os.Stderr
	}
	if sys.Started.IsZero() {
		sys.Started = time.Now()
	}
	if err := dispatch(args, sys); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(sys.Stdout, usage, strings.Join(configs.Profiles(), ", "))
			return 0
		}
		// One line, no stack: multi-line errors are folded.
		msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
		fmt.Fprintf(sys.Stderr, "mqd: %s\n", msg)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(sys.Stderr, "Run 'mqd help' for usage.")
		}
		return 1
	}
	return 0
}

func newFlagSet(name string, o *options, withN bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by Main, in one line
	fs.StringVar(&o.profile, "profile", o.profile, "")
	fs.StringVar(&o.file, "c", o.file, "")
	fs.Var(&o.sets, "set", "")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "")
	fs.StringVar(&o.logFormat, "log-format", o.logFormat, "")
	if withN {
		fs.StringVar(&o.namesrvAddr, "n", o.namesrvAddr, "")
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	return fs.Args(), nil
}

func dispatch(args []string, sys IO) error {
	var o options
	rest, err := parseFlags(newFlagSet("mqd", &o, true), args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return runDaemon(modeEmbedded, &o, sys)
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "namesrv", "broker":
		if cmd == modeNamesrv && o.namesrvAddr != "" {
			return usageError{"flag -n applies to the broker, not to the name server"}
		}
		rest, err := parseFlags(newFlagSet("mqd "+cmd, &o, cmd == modeBroker), rest)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError{fmt.Sprintf("mqd %s: unexpected argument %q", cmd, rest[0])}
		}
		return runDaemon(cmd, &o, sys)
	case "health", "plugins":
		return runOps(cmd, rest, sys)
	case "config":
		if len(rest) == 0 || rest[0] != "print" {
			return usageError{"usage: mqd config print [flags]"}
		}
		for i, a := range rest[1:] {
			if a == "--live" || a == "-live" {
				// The running daemon's configuration, from its admin endpoint.
				return runOps("config", append(append([]string(nil), rest[1:i+1]...), rest[i+2:]...), sys)
			}
		}
		fs := newFlagSet("mqd config print", &o, true)
		fs.StringVar(&o.role, "role", modeEmbedded, "")
		fs.StringVar(&o.format, "format", config.FormatTable, "")
		rest, err := parseFlags(fs, rest[1:])
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError{fmt.Sprintf("mqd config print: unexpected argument %q", rest[0])}
		}
		return printConfig(&o, sys)
	case "swap":
		return runSwap(rest, sys)
	case "reload":
		return runReload(rest, sys)
	case "version":
		if len(rest) > 0 {
			return usageError{fmt.Sprintf("mqd version: unexpected argument %q", rest[0])}
		}
		fmt.Fprintln(sys.Stdout, versionLine(sys.Version))
		return nil
	case "help":
		return flag.ErrHelp
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func versionLine(version string) string {
	if version == "" {
		version = "dev"
	}
	line := "mqd " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if modified == "true" {
				rev += "-dirty"
			}
			line += " (" + rev + ")"
		}
	}
	return line + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// roleOf maps a mode to the RocketMQ role whose property names apply.
func roleOf(mode string) string {
	if mode == modeNamesrv {
		return "namesrv"
	}
	return "broker" // embedded mode reads broker files
}

// loadConfig builds the merged configuration for a mode.
func loadConfig(mode string, o *options, sys IO) (*config.Config, error) {
	lo := config.LoadOptions{
		Role:    roleOf(mode),
		Profile: o.profile,
		File:    o.file,
		Env:     sys.Environ,
		Sets:    o.sets,
	}
	if o.logLevel != "" {
		lo.Flags = append(lo.Flags, config.Flag{Name: "--log-level", Key: "log.level", Value: o.logLevel})
	}
	if o.logFormat != "" {
		lo.Flags = append(lo.Flags, config.Flag{Name: "--log-format", Key: "log.format", Value: o.logFormat})
	}
	if o.namesrvAddr != "" {
		lo.Flags = append(lo.Flags, config.Flag{Name: "-n", Key: "broker.namesrvAddr", Value: o.namesrvAddr})
	}
	cfg, err := config.Load(lo)
	if err != nil {
		return nil, err
	}
	if mode == modeEmbedded {
		// The embedded broker registers with the name server of this process,
		// unless told otherwise.
		if _, ok := config.Lookup("broker.namesrvAddr"); ok && cfg.Source("broker.namesrvAddr") == "default" {
			if _, ok := config.Lookup("namesrv.listenPort"); ok {
				port := cfg.Int("namesrv.listenPort")
				if port == 0 {
					// "Any free port": the broker must be told which one before
					// either starts, so pick it now.
					if port, err = freePort(); err != nil {
						return nil, err
					}
					if err := cfg.Set("namesrv.listenPort", port, "embedded (free port)"); err != nil {
						return nil, err
					}
				}
				addr := "127.0.0.1:" + strconv.Itoa(port)
				if err := cfg.Set("broker.namesrvAddr", addr, "embedded (namesrv.listenPort)"); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := resolveAdminListen(mode, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// freePort returns a TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("picking a free port for the name server: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func printConfig(o *options, sys IO) error {
	mode := o.role
	switch mode {
	case modeEmbedded, modeBroker, modeNamesrv:
	default:
		return usageError{fmt.Sprintf("--role %q: want embedded, broker or namesrv", o.role)}
	}
	cfg, err := loadConfig(mode, o, sys)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(sys.Stderr, "mqd: warning: %s\n", w)
	}
	ro := config.RenderOptions{Format: o.format}
	if mode != modeEmbedded {
		ro.Roles = []string{mode}
	}
	return cfg.Render(sys.Stdout, ro)
}

// appsOf lists the apps a mode runs, name server first so that it is listening
// before the broker registers with it.
func appsOf(mode string) []kernel.ModuleID {
	switch mode {
	case modeNamesrv:
		return []kernel.ModuleID{appNamesrv}
	case modeBroker:
		return []kernel.ModuleID{appBroker}
	default:
		return []kernel.ModuleID{appNamesrv, appBroker}
	}
}

// runDaemon loads the configuration, runs the mode's apps and waits for a signal.
func runDaemon(mode string, o *options, sys IO) error {
	cfg, err := loadConfig(mode, o, sys)
	if err != nil {
		return err
	}
	lopts, err := logging.FromConfig(cfg)
	if err != nil {
		return err
	}
	lopts.Out = sys.Stderr
	logger, err := logging.New(lopts)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		logger.Warn().Msg(w)
	}
	applyRuntime(cfg, logger)

	sig := newSignals(func(s os.Signal) {
		logger.Error().Str("signal", s.String()).Msg("second signal: exiting without finishing the stop")
		os.Exit(1)
	})
	defer sig.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sig.stopping:
			cancel() // abandon a Load still in progress
		case <-ctx.Done():
		}
	}()

	if err := adminFallback(cfg, func(msg string) { logger.Warn().Msg(msg) }); err != nil {
		return err
	}
	k := kernel.New(cfg, logger)
	registerReloadEndpoint(k, mode, o, sys, logger)
	if err := k.Load(ctx, daemonModules(mode, cfg)...); err != nil {
		if s := sig.received(); s != nil {
			// Stopped while starting: Load has cleaned up what it provisioned.
			logger.Info().Str("signal", s.String()).Msg("stopped during startup")
			return nil
		}
		return err
	}
	if err := k.Start(); err != nil {
		return err
	}
	logger.Info().Str("mode", mode).Str("version", sys.Version).
		Dur("startup", time.Since(sys.Started)).Msg("ready")

wait:
	for {
		select {
		case <-sig.hup:
			_, _ = reload(ctx, k, mode, o, sys, logger)
		case <-sig.stopping:
			break wait
		}
	}
	logger.Info().Str("signal", sig.received().String()).Dur("deadline", StopTimeout).Msg("stopping")

	stopCtx, stopCancel := context.WithTimeout(context.Background(), StopTimeout)
	defer stopCancel()
	began := time.Now()
	if err := k.Stop(stopCtx); err != nil {
		logger.Error().Err(err).Msg("stop")
		return fmt.Errorf("stop: %w", err)
	}
	logger.Info().Dur("took", time.Since(began)).Msg("stopped")
	return nil
}
