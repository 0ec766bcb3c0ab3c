// Command mqbench is mqd's load generator. It drives any RocketMQ 4.x name server
// and broker (mqd or Apache RocketMQ) through the official Go client and prints
// RocketMQ's own benchmark lines (Send TPS | Max RT(ms) | Average RT(ms) | Send
// Failed | Response Failed), so figures read the same as the Java tool's, plus a
// final summary with latency percentiles from an HDR histogram. The lines are
// the 4.9.8 tool's, header included; they come every second (-i) instead of
// every ten, and TPS and Average RT cover that interval.
//
//	mqbench producer -n 127.0.0.1:9876 -t BenchmarkTest -w 64 -s 1024 -d 20s
//	mqbench consumer -n 127.0.0.1:9876 -t BenchmarkTest -g benchmark_consumer -d 20s
package main

import (
	"context"
	"crypto/tls"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqd/mqd/cmd/internal/cmdline"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const rootLong = `mqbench drives a RocketMQ 4.x name server and broker (mqd or Apache RocketMQ)
and prints RocketMQ's own benchmark lines, then a summary with latency
percentiles. -d 0 runs until interrupted (Ctrl-C); the summary is printed
either way. Exit codes: 0 ok, 1 failure, 2 usage mistake.`

const rootExample = `  mqbench producer -n 127.0.0.1:9876 -t BenchmarkTest -w 64 -s 1024 -d 20s
  mqbench producer --client native -p 2 -n 127.0.0.1:9876 -t BenchmarkTest
  mqbench consumer -n 127.0.0.1:9876 -t BenchmarkTest -g benchmark_consumer -d 20s
  mqbench transaction -n 127.0.0.1:9876 -t TxTest --sr 0.1 --su 0.1`

// run is main without the process around it, so that tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The client logs every reconnect and rebalance at info level; a benchmark's
	// output is its stats lines.
	rlog.SetLogLevel("error")
	root := &cobra.Command{
		Use:     "mqbench",
		Short:   "load generator for RocketMQ-compatible brokers",
		Long:    rootLong,
		Example: rootExample,
	}
	cmdline.RequireSubcommand(root)
	root.AddCommand(
		producerCommand(stdout, stderr),
		consumerCommand(stdout, stderr),
		transactionCommand(stdout, stderr),
	)
	root.SetContext(ctx)
	return cmdline.Execute(root, args, stdout, stderr)
}

// modeCommand returns a mode's command with the common flags on fs, to which
// the mode adds its own; run runs once check has accepted the flags.
func modeCommand(use, short string, common *commonOptions, topicUsage string, check func() error, run func(context.Context) error) (*cobra.Command, *pflag.FlagSet) {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cmdline.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := check(); err != nil {
				return err
			}
			return run(c.Context())
		},
	}
	addCommonFlags(c.Flags(), common, topicUsage)
	cmdline.CompleteValues(c, "output", "text", "json")
	return c, c.Flags()
}

// commonOptions are the flags of every mode.
type commonOptions struct {
	namesrv  string
	topic    string
	output   string
	duration time.Duration
	interval time.Duration
	// ACL account and TLS, like RocketMQ's benchmark -a -ak -sk and
	// -Dtls.enable=true.
	accessKey string
	secretKey string
	useTLS    bool
}

// producerSecurity returns the official client's options for the ACL account
// and TLS flags.
func (o *commonOptions) producerSecurity() []producer.Option {
	var opts []producer.Option
	if o.accessKey != "" {
		opts = append(opts, producer.WithCredentials(primitive.Credentials{AccessKey: o.accessKey, SecretKey: o.secretKey}))
	}
	if o.useTLS {
		opts = append(opts, producer.WithTls(true))
	}
	return opts
}

func (o *commonOptions) consumerSecurity() []consumer.Option {
	var opts []consumer.Option
	if o.accessKey != "" {
		opts = append(opts, consumer.WithCredentials(primitive.Credentials{AccessKey: o.accessKey, SecretKey: o.secretKey}))
	}
	if o.useTLS {
		opts = append(opts, consumer.WithTls(true))
	}
	return opts
}

// remotingClient is mqd's own client with the same account and TLS.
func (o *commonOptions) remotingClient() *remoting.Client {
	cc := remoting.ClientConfig{}
	if o.accessKey != "" {
		cc.Sign, _ = acl.Signer(acl.Credentials{AccessKey: o.accessKey, SecretKey: o.secretKey})
	}
	if o.useTLS {
		cc.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	return remoting.NewClient(cc)
}

func addCommonFlags(fs *pflag.FlagSet, o *commonOptions, topicUsage string) {
	fs.StringVarP(&o.namesrv, "namesrvAddr", "n", "127.0.0.1:9876", "name server address(es), separated by ';'")
	fs.StringVarP(&o.topic, "topic", "t", "BenchmarkTest", topicUsage)
	fs.StringVarP(&o.output, "output", "o", "text", "summary format: text or json (json sends the per-interval lines to stderr)")
	fs.DurationVarP(&o.duration, "duration", "d", 0, "how long to run (0 = until interrupted)")
	fs.DurationVarP(&o.interval, "interval", "i", time.Second, "stats interval")
	fs.StringVar(&o.accessKey, "accessKey", "", "ACL account to sign requests with (RocketMQ's benchmark -ak)")
	fs.StringVar(&o.secretKey, "secretKey", "", "secret key of --accessKey (-sk)")
	fs.BoolVar(&o.useTLS, "tls", false, "connect over TLS without verifying the certificate (the Go client's WithTls)")
}

// check returns a usage error for a value out of range.
func (o *commonOptions) check() error {
	switch {
	case o.topic == "":
		return cmdline.Usagef("-t must name a topic")
	case o.output != "text" && o.output != "json":
		return cmdline.Usagef("-o must be text or json")
	case o.duration < 0:
		return cmdline.Usagef("-d must not be negative")
	case o.interval <= 0:
		return cmdline.Usagef("-i must be positive")
	case len(splitAddrs(o.namesrv)) == 0:
		return cmdline.Usagef("-n must name at least one name server")
	case (o.accessKey == "") != (o.secretKey == ""):
		return cmdline.Usagef("--accessKey and --secretKey go together")
	}
	return nil
}

// runFor returns ctx bounded by -d (unbounded for 0).
func (o *commonOptions) runFor(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.duration > 0 {
		return context.WithTimeout(ctx, o.duration)
	}
	return context.WithCancel(ctx)
}

// intervalLines is where the per-interval lines go: stdout, or stderr when
// stdout carries the JSON summary.
func (o *commonOptions) intervalLines(stdout, stderr io.Writer) io.Writer {
	if o.output == "json" {
		return stderr
	}
	return stdout
}

// splitAddrs splits a RocketMQ name-server list ("a:9876;b:9876").
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
