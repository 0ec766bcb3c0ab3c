package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/pluginhost"
)

// mqd plugin install|list|remove|verify: out-of-process plugins in the
// plugin directory (plugins.dir, docs/plugins.md).

func pluginCommand(sys IO) *cobra.Command {
	c := &cobra.Command{Use: "plugin", Short: "install, list, remove and verify out-of-process plugins"}
	cmdline.RequireSubcommand(c)
	c.AddCommand(pluginInstallCommand(sys), pluginListCommand(sys), pluginRemoveCommand(sys), pluginVerifyCommand(sys))
	return c
}

// pluginOptions locate the plugin directory: --dir, else plugins.dir of the
// configuration the usual flags describe.
type pluginOptions struct {
	o   options
	dir string
}

func (p *pluginOptions) add(c *cobra.Command) {
	addConfigFlags(c.Flags(), &p.o)
	c.Flags().StringVar(&p.dir, "dir", "", "plugin `DIR` (default: plugins.dir of the configuration)")
}

func (p *pluginOptions) resolve(sys IO) (string, error) {
	if p.dir != "" {
		return p.dir, nil
	}
	cfg, err := config.Load(config.LoadOptions{Role: "broker", Profile: p.o.profile, File: p.o.file, Env: sys.Environ,
		Sets: p.o.sets, Later: pluginhost.LaterKey})
	if err != nil {
		return "", err
	}
	return cfg.String(pluginhost.DirKey), nil
}

// pluginDirCommand is a plugin subcommand that works on the plugin
// directory (--dir, or plugins.dir of the configuration flags).
func pluginDirCommand(use, short string, args cobra.PositionalArgs, run func(dir string, args []string) error, sys IO) *cobra.Command {
	var p pluginOptions
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(_ *cobra.Command, a []string) error {
			dir, err := p.resolve(sys)
			if err != nil {
				return err
			}
			return run(dir, a)
		},
	}
	p.add(c)
	return c
}

func pluginInstallCommand(sys IO) *cobra.Command {
	return pluginDirCommand("install PATH", "copy a plugin binary into the plugin directory and record what it is and its SHA-256",
		cmdline.ExactArgs(1), func(dir string, args []string) error {
			e, err := pluginhost.Install(dir, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(sys.Stdout, "installed %s %s (module %s, sha256 %s) in %s\n", e.Name, e.Version, e.ModuleID(), e.SHA256, dir)
			for _, k := range e.Keys {
				fmt.Fprintf(sys.Stdout, "  key %s (default %q): %s\n", e.KeyPath(k.Name), k.Default, k.Doc)
			}
			return nil
		}, sys)
}

func pluginRemoveCommand(sys IO) *cobra.Command {
	return pluginDirCommand("remove NAME", "remove an installed plugin (refused while a running mqd uses it)",
		cmdline.ExactArgs(1), func(dir string, args []string) error {
			if err := pluginhost.Remove(dir, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(sys.Stdout, "removed %s from %s\n", args[0], dir)
			return nil
		}, sys)
}

func pluginVerifyCommand(sys IO) *cobra.Command {
	return pluginDirCommand("verify", "re-hash every installed plugin; exit 1 if any differs from what was installed",
		cmdline.NoArgs, func(dir string, _ []string) error {
			all, bad, err := pluginhost.Verify(dir)
			if err != nil {
				return err
			}
			for _, m := range bad {
				fmt.Fprintf(sys.Stdout, "MISMATCH %s (%s): %s; installed sha256 %s, now %s\n", m.Name, m.Filename, m.Problem, m.Want, orDash(m.Got))
			}
			if len(bad) > 0 {
				return fmt.Errorf("%d of %d installed plugins do not match their manifest; reinstall them (mqd plugin install)", len(bad), len(all))
			}
			fmt.Fprintf(sys.Stdout, "%d installed plugins verified in %s\n", len(all), dir)
			return nil
		}, sys)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pluginListCommand(sys IO) *cobra.Command {
	var p pluginOptions
	var a adminOptions
	var o options
	c := &cobra.Command{
		Use:   "list",
		Short: "installed plugins, and how those a running mqd loaded are doing (state, crashes, last error)",
		Args:  cmdline.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			dir, err := p.resolve(sys)
			if err != nil {
				return err
			}
			m, err := pluginhost.ReadManifest(dir)
			if err != nil {
				return err
			}
			// The running daemon's view, if one answers.
			loaded := map[string]pluginhost.Status{}
			daemon := "no running mqd answered"
			o.profile, o.file, o.sets, o.role = p.o.profile, p.o.file, p.o.sets, modeEmbedded
			if addr, token, err := adminTarget(&a, &o, sys); err == nil {
				if code, data, err := adminGet(addr, "/plugins/external", token); err == nil && code == http.StatusOK {
					var sts []pluginhost.Status
					if json.Unmarshal(data, &sts) == nil {
						for _, s := range sts {
							loaded[s.Name] = s
						}
						daemon = "mqd at " + addr
					}
				}
			}
			fmt.Fprintf(sys.Stdout, "plugin directory %s; loaded: %s\n", dir, daemon)
			w := tabwriter.NewWriter(sys.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tKIND\tMODULE\tVERSION\tSHA256\tSTATE\tPID\tCRASHES\tRESTARTS\tSINCE\tLAST ERROR")
			for _, e := range m.Plugins {
				st, ok := loaded[e.Name]
				state, pid, crashes, restarts, since := "not loaded", "-", "-", "-", "-"
				if ok {
					state, crashes, restarts = st.State, strconv.FormatInt(st.Crashes, 10), strconv.FormatInt(st.Restarts, 10)
					if st.PID > 0 {
						pid = strconv.Itoa(st.PID)
					}
					since = time.UnixMilli(st.Since).Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, e.ModuleID(), e.Version, e.SHA256[:min(12, len(e.SHA256))],
					state, pid, crashes, restarts, since, orDash(st.LastError))
			}
			return w.Flush()
		},
	}
	p.add(c)
	addAdminFlags(c.Flags(), &a)
	return c
}
