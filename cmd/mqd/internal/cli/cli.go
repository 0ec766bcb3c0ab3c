// Package cli is the mqd command line: it parses subcommands and flags, builds
// the layered configuration and the logger, and runs the chosen apps in a kernel
// until SIGINT or SIGTERM, stopping them gracefully. cmd/mqd's main only calls
// Main, so that everything here is testable.
package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/configs"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/logging"
	"github.com/mqd/mqd/kernel/pluginhost"
)

// Modes: which apps a run loads, and which RocketMQ role's property names a
// .properties file, MQD_<NAME> and --set use.
const (
	modeEmbedded = "embedded" // name server + broker in one process
	modeNamesrv  = "namesrv"
	modeBroker   = "broker"
	// modeController is a standalone controller (like mqcontroller); it
	// reads the name server's property names, as RocketMQ's controller.conf
	// carries the same keys as an embedding namesrv.conf.
	modeController = "controller"
)

// Module IDs of the two apps.
const (
	appNamesrv kernel.ModuleID = "app.namesrv"
	appBroker  kernel.ModuleID = "app.broker"
	// appController is the standalone controller (plugins/controller).
	appController kernel.ModuleID = "app.controller"
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

// options are the flags that build a configuration: the daemon's, and those
// of the subcommands that work out a daemon's admin address from the same
// flags.
type options struct {
	profile     string
	file        string
	sets        []string
	logLevel    string
	logFormat   string
	namesrvAddr string
	// role is the mode whose configuration config print shows, or whose
	// admin address the admin-calling subcommands derive.
	role   string
	format string // config print only
}

const rootLong = `mqd is a RocketMQ-compatible message broker: the name server, the broker, or
both in one process (the default).

Configuration layers, later wins: key defaults < profile "default" < --profile <
-c FILE < MQD_* environment (MQD_BROKER_LISTENPORT or MQD_LISTENPORT) < --set and
other flags. In embedded mode RocketMQ names are the broker's, and
broker.namesrvAddr defaults to this process's name server.

health, plugins, config print --live, reload and swap call a running daemon's
admin endpoint: --admin HOST:PORT, or by default the address the daemon
started with the same flags listens on (the broker port + 2, 10913).
Exit codes: 0 ok, 1 failure, 2 usage mistake.`

const rootExample = `  mqd                                    name server + broker in one process
  mqd --profile dev                      a shipped profile (see --profile)
  mqd namesrv -c namesrv.properties      name server only (like mqnamesrv)
  mqd broker -c broker.properties -n 127.0.0.1:9876
                                         broker only (like mqbroker)
  mqd config print --role broker --format properties
  mqd health                             readiness of the running daemon
  mqd swap ha sync                       switch a running master to SYNC replication`

// Main runs mqd with args (without the program name) and returns the exit
// code: 0, 1 for a failure, 2 for a usage mistake.
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
	return cmdline.Execute(newRoot(sys), args, sys.Stdout, sys.Stderr)
}

func newRoot(sys IO) *cobra.Command {
	var o options
	root := &cobra.Command{
		Use:     "mqd",
		Short:   "RocketMQ-compatible message broker",
		Long:    rootLong,
		Example: rootExample,
		RunE: func(*cobra.Command, []string) error {
			return runDaemon(modeEmbedded, &o, sys)
		},
	}
	addConfigFlags(root.Flags(), &o)
	addNamesrvFlag(root.Flags(), &o)
	root.AddCommand(
		daemonCommand(modeNamesrv, "name server only (like mqnamesrv)", sys),
		daemonCommand(modeBroker, "broker only (like mqbroker)", sys),
		daemonCommand(modeController, "controller only, for automatic master failover (like mqcontroller)", sys),
		configCommand(sys),
		healthCommand(sys),
		pluginsCommand(sys),
		pluginCommand(sys),
		reloadCommand(sys),
		swapCommand(sys),
		versionCommand(sys),
	)
	completeFlagValues(root)
	return root
}

// completeFlagValues lets shell completion offer the values of the flags
// that take one of a few words, on every command that has them.
func completeFlagValues(c *cobra.Command) {
	values := map[string][]string{
		"profile":    configs.Profiles(),
		"role":       {modeEmbedded, modeBroker, modeNamesrv, modeController},
		"format":     {config.FormatTable, config.FormatProperties},
		"log-level":  {"trace", "debug", "info", "warn", "error"},
		"log-format": {"auto", "console", "json"},
	}
	for name, words := range values {
		if c.Flags().Lookup(name) != nil {
			cmdline.CompleteValues(c, name, words...)
		}
	}
	for _, sub := range c.Commands() {
		completeFlagValues(sub)
	}
}

// addConfigFlags adds the flags that build the configuration.
func addConfigFlags(fs *pflag.FlagSet, o *options) {
	fs.StringVar(&o.profile, "profile", "", fmt.Sprintf("shipped profile layered over \"default\" (%s)", strings.Join(configs.Profiles(), ", ")))
	fs.StringVarP(&o.file, "config", "c", "", "config `FILE`: YAML (.yaml, .yml) or RocketMQ .properties / .conf")
	// StringArray, not StringSlice: a value may hold commas.
	fs.StringArrayVar(&o.sets, "set", nil, "set a key (dotted path or RocketMQ name) as `KEY=VALUE`; repeatable")
	fs.StringVar(&o.logLevel, "log-level", "", "trace, debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "", "auto, console or json")
}

// addNamesrvFlag adds -n, the name servers a broker registers with (RocketMQ's
// mqbroker -n).
func addNamesrvFlag(fs *pflag.FlagSet, o *options) {
	fs.StringVarP(&o.namesrvAddr, "namesrvAddr", "n", "", "name server addresses, host:port;host:port")
}

// addRoleFlag adds --role.
func addRoleFlag(fs *pflag.FlagSet, o *options, usage string) {
	fs.StringVar(&o.role, "role", modeEmbedded, usage+": embedded, broker, namesrv or controller")
}

func checkRole(role string) error {
	switch role {
	case modeEmbedded, modeBroker, modeNamesrv, modeController:
		return nil
	}
	return cmdline.Usagef("--role %q: want embedded, broker, namesrv or controller", role)
}

// daemonCommand is mqd namesrv or mqd broker.
func daemonCommand(mode, short string, sys IO) *cobra.Command {
	var o options
	c := &cobra.Command{
		Use:   mode,
		Short: short,
		Args:  cmdline.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runDaemon(mode, &o, sys)
		},
	}
	addConfigFlags(c.Flags(), &o)
	if mode == modeBroker {
		addNamesrvFlag(c.Flags(), &o)
	}
	return c
}

func configCommand(sys IO) *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "the configuration"}
	cmdline.RequireSubcommand(c)
	var o options
	var a adminOptions
	var live bool
	printCmd := &cobra.Command{
		Use:   "print",
		Short: "print the merged configuration and each value's source (--live: the running daemon's)",
		Args:  cmdline.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkRole(o.role); err != nil {
				return err
			}
			if live {
				if c.Flags().Changed("format") {
					return cmdline.Usagef("--format does not apply to --live (the daemon answers JSON)")
				}
				return adminShow(&a, &o, "/config", sys)
			}
			return printConfig(&o, sys)
		},
	}
	fs := printCmd.Flags()
	addConfigFlags(fs, &o)
	addNamesrvFlag(fs, &o)
	addRoleFlag(fs, &o, "whose configuration")
	fs.StringVar(&o.format, "format", config.FormatTable, "table or properties")
	fs.BoolVar(&live, "live", false, "the running daemon's configuration, from its admin endpoint")
	addAdminFlags(fs, &a)
	c.AddCommand(printCmd)
	return c
}

func versionCommand(sys IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cmdline.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(sys.Stdout, versionLine(sys.Version))
			return nil
		},
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
	if mode == modeNamesrv || mode == modeController {
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
	// Installed plugins are modules and config keys of this run: find
	// their directory (a key itself) first, register them, then load for
	// real so that their keys validate (docs/plugins.md).
	pre := lo
	pre.Later = pluginhost.LaterKey
	cfg, err := config.Load(pre)
	if err != nil {
		return nil, err
	}
	if _, err := pluginhost.RegisterInstalled(cfg.String(pluginhost.DirKey)); err != nil {
		return nil, fmt.Errorf("installed plugins: %w", err)
	}
	if cfg, err = config.Load(lo); err != nil {
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
	cfg, err := loadConfig(mode, o, sys)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(sys.Stderr, "mqd: warning: %s\n", w)
	}
	ro := config.RenderOptions{Format: o.format}
	if mode != modeEmbedded {
		ro.Roles = []string{roleOf(mode)}
	}
	return cfg.Render(sys.Stdout, ro)
}

// appsOf lists the apps a mode runs, name server first so that it is listening
// before the broker registers with it.
func appsOf(mode string) []kernel.ModuleID {
	switch mode {
	case modeNamesrv:
		return []kernel.ModuleID{appNamesrv}
	case modeController:
		return []kernel.ModuleID{appController}
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
