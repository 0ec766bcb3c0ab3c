// Package cli is mqadmin's command line: RocketMQ's admin commands (same names,
// flags and table columns as the Java tool's 4.9.8 output, so scripts that parse
// them keep working) built with cobra over the admin client package. `-o json`
// (or `--output json` where -o already has a RocketMQ meaning) prints the same
// data as JSON. The controller-mode commands (controller.go: getControllerMetaData,
// getSyncStateSet, getBrokerEpoch, electMaster) follow RocketMQ 5.3.3's tool.
// cmd/mqadmin's main only calls Main.
package cli

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/cmd/mqadmin/internal/admin"
	"github.com/mqd/mqd/protocols/remoting/acl"
)

// IO is what Main talks to; tests replace it.
type IO struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment (NAMESRV_ADDR); nil means os.Getenv.
	Getenv func(string) string
	// Now is the clock for "hours since" columns; nil means time.Now.
	Now func() time.Time
}

// env is what a command's run function gets.
type env struct {
	out     io.Writer
	errOut  io.Writer
	getenv  func(string) string
	now     func() time.Time
	namesrv string
	timeout time.Duration
	output  string
	adm     *admin.Admin

	accessKey, secretKey string
	useTLS               bool
}

func (e *env) admin() *admin.Admin {
	if e.adm == nil {
		ns := e.namesrv
		if ns == "" {
			ns = e.getenv("NAMESRV_ADDR")
		}
		e.adm = admin.New(ns, e.timeout, e.connOptions()...)
	}
	return e.adm
}

// toolsFile is where RocketMQ's mqadmin reads the ACL account it signs with,
// under ROCKETMQ_HOME (mqd's mqadmin also looks in the working directory).
const toolsFile = "conf/tools.yml"

// connOptions are the ACL credentials (conf/tools.yml, or --accessKey and
// --secretKey) and TLS (--tls) of the admin's connections.
func (e *env) connOptions() []admin.Option {
	var opts []admin.Option
	cr := acl.Credentials{AccessKey: e.accessKey, SecretKey: e.secretKey}
	if cr.AccessKey == "" {
		cr = e.toolsCredentials()
	}
	if cr.AccessKey != "" {
		opts = append(opts, admin.WithCredentials(cr))
	}
	if e.useTLS {
		opts = append(opts, admin.WithTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}))
	}
	return opts
}

func (e *env) toolsCredentials() acl.Credentials {
	var paths []string
	if home := e.getenv("ROCKETMQ_HOME"); home != "" {
		paths = append(paths, filepath.Join(home, toolsFile))
	}
	paths = append(paths, toolsFile)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var f struct {
			AccessKey string `yaml:"accessKey"`
			SecretKey string `yaml:"secretKey"`
		}
		if err := yaml.Unmarshal(data, &f); err != nil {
			fmt.Fprintf(e.errOut, "mqadmin: %s: %v (requests go unsigned)\n", p, err)
			return acl.Credentials{}
		}
		return acl.Credentials{AccessKey: f.AccessKey, SecretKey: f.SecretKey}
	}
	return acl.Credentials{}
}

func (e *env) json() bool { return e.output == "json" }

// printJSON writes v indented.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.out, format, args...) }

// Main runs mqadmin with args (without the program name) and returns the exit
// status: 0, 1 for a failed command, 2 for a usage mistake.
func Main(args []string, sys IO) int {
	if sys.Getenv == nil {
		sys.Getenv = os.Getenv
	}
	if sys.Now == nil {
		sys.Now = time.Now
	}
	e := &env{out: sys.Stdout, errOut: sys.Stderr, getenv: sys.Getenv, now: sys.Now}
	root := newRoot(e)
	code := cmdline.Execute(root, expandJavaShort(root, args), sys.Stdout, sys.Stderr)
	if e.adm != nil {
		e.adm.Close()
	}
	return code
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "mqadmin",
		Short: "RocketMQ admin commands for mqd (and RocketMQ) clusters",
		Long: `mqadmin runs RocketMQ's admin commands against name servers and brokers over
the remoting protocol, with the Java tool's command names, flags and table columns.
The name server comes from -n or the NAMESRV_ADDR environment variable.`,
	}
	cmdline.RequireSubcommand(root)
	root.PersistentFlags().StringVarP(&e.namesrv, "namesrvAddr", "n", "", "name server address list, eg: 192.168.0.1:9876;192.168.0.2:9876 (default $NAMESRV_ADDR)")
	root.PersistentFlags().DurationVar(&e.timeout, "timeout", admin.DefaultTimeout, "timeout of one request")
	root.PersistentFlags().StringVar(&e.accessKey, "accessKey", "", "ACL account to sign requests with (default: accessKey of $ROCKETMQ_HOME/conf/tools.yml or ./conf/tools.yml)")
	root.PersistentFlags().StringVar(&e.secretKey, "secretKey", "", "secret key of --accessKey")
	root.PersistentFlags().BoolVar(&e.useTLS, "tls", false, "connect over TLS (RocketMQ's -Dtls.enable=true), without verifying the server certificate")
	for _, c := range commands(e) {
		root.AddCommand(c)
	}
	return root
}

// runner adapts a command body to cobra.
func runner(e *env, fn func(e *env, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return cmdline.UsageError{Err: fmt.Errorf("unexpected argument %q", args[0])}
		}
		if e.output != "" && e.output != "json" && e.output != "text" {
			return cmdline.UsageError{Err: fmt.Errorf("--output %q: want json or text", e.output)}
		}
		return fn(e, cmd)
	}
}

// withOutput adds -o/--output to a command; short is false where -o already
// means something in RocketMQ's flags (offset, order).
func withOutput(e *env, c *cobra.Command, short bool) *cobra.Command {
	if short {
		c.Flags().StringVarP(&e.output, "output", "o", "", "output format: json (default: RocketMQ's text)")
	} else {
		c.Flags().StringVar(&e.output, "output", "", "output format: json (default: RocketMQ's text)")
	}
	return c
}

func commands(e *env) []*cobra.Command {
	var out []*cobra.Command
	out = append(out, clusterCommands(e)...)
	out = append(out, topicCommands(e)...)
	out = append(out, consumerCommands(e)...)
	out = append(out, brokerCommands(e)...)
	out = append(out, messageCommands(e)...)
	out = append(out, controllerCommands(e)...)
	return out
}

// required marks flags required.
func required(c *cobra.Command, names ...string) {
	for _, n := range names {
		_ = c.MarkFlagRequired(n)
	}
}

// javaShortAnnotation is the cobra annotation listing a command's RocketMQ
// short options of more than one letter, as "bn=brokerName,...".
const javaShortAnnotation = "mqadmin/javaShort"

// javaShort gives the flag long of c the RocketMQ short option short, which
// has more than one letter (electMaster's -bn): commons-cli allows that,
// pflag's shorthands are one letter. expandJavaShort rewrites it to the long
// flag before cobra parses the command line.
func javaShort(c *cobra.Command, short, long string) {
	f := c.Flags().Lookup(long)
	if f == nil {
		panic("mqadmin: no flag --" + long)
	}
	f.Usage += " (short: -" + short + ")"
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	if s := c.Annotations[javaShortAnnotation]; s != "" {
		c.Annotations[javaShortAnnotation] = s + ","
	}
	c.Annotations[javaShortAnnotation] += short + "=" + long
}

// expandJavaShort rewrites the multi-letter short options (javaShort) of the
// command args name: "-bn v" to "--brokerName v" and "-bn=v" to
// "--brokerName=v", up to a "--". pflag would read "-bn" as -b with the
// value "n".
func expandJavaShort(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd.Annotations[javaShortAnnotation] == "" {
		return args
	}
	long := map[string]string{}
	for _, kv := range strings.Split(cmd.Annotations[javaShortAnnotation], ",") {
		s, l, _ := strings.Cut(kv, "=")
		long["-"+s] = "--" + l
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, val, hasVal := strings.Cut(a, "=")
		if l, ok := long[name]; ok {
			a = l
			if hasVal {
				a += "=" + val
			}
		}
		out = append(out, a)
	}
	return out
}

// frontString is UtilAll.frontStringAtLeast: s cut to at most n characters.
func frontString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Java date formats used by the tables.
const (
	fmtSecond = "2006-01-02 15:04:05"     // UtilAll.YYYY_MM_DD_HH_MM_SS
	fmtMilli  = "2006-01-02 15:04:05,000" // UtilAll.timeMillisToHumanString2
)

func millisTime(ms int64) time.Time { return time.UnixMilli(ms) }

// javaBool is a boolean flag that takes its value as the next argument
// (`-o true`), as commons-cli options with an argument do in the Java tool;
// like Boolean.parseBoolean, anything but "true" (any case) is false.
type javaBool struct{ p *bool }

func (b javaBool) String() string {
	if b.p == nil {
		return "false"
	}
	return strconv.FormatBool(*b.p)
}

func (b javaBool) Set(v string) error {
	*b.p = strings.EqualFold(strings.TrimSpace(v), "true")
	return nil
}

func (b javaBool) Type() string { return "true|false" }

// boolArgVarP defines a javaBool flag.
func boolArgVarP(fs *pflag.FlagSet, p *bool, name, short string, def bool, usage string) {
	*p = def
	fs.VarP(javaBool{p}, name, short, usage)
}
