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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: mqbench <producer|consumer|transaction> [flags]

  mqbench producer -n <namesrv> -t <topic> [-w 64] [-s 1024] [-d 0] [--tag X] [--batch N] [-o text|json]
  mqbench consumer -n <namesrv> -t <topic> [-g group] [-d 0] [--from last|first] [-o text|json]
  mqbench transaction -n <namesrv> -t <topic> [-w 32] [-s 2048] [--sr 0] [--su 0] [--cr 0] [--cu 0] [-d 0] [-o text|json]

-d 0 runs until interrupted (Ctrl-C); the summary is printed either way.
Run "mqbench <command> -h" for every flag.
`

// run is main without the process around it, so that tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// The client logs every reconnect and rebalance at info level; a benchmark's
	// output is its stats lines.
	rlog.SetLogLevel("error")
	var err error
	switch args[0] {
	case "producer":
		err = runProducer(ctx, args[1:], stdout, stderr)
	case "consumer":
		err = runConsumer(ctx, args[1:], stdout, stderr)
	case "transaction":
		err = runTransaction(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mqbench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "mqbench: %v\n", err)
		return 1
	}
}

// errUsage marks errors the flag package already reported.
var errUsage = errors.New("usage")

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

// parseArgs parses a mode's flags; extra arguments are a usage error. It
// returns flag.ErrHelp for -h and errUsage for anything the flag package
// already reported.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}
