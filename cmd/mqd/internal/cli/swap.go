package cli

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// swapUsage is `mqd swap`'s synopsis.
const swapUsage = "usage: mqd swap ha sync|async [--admin HOST:PORT] [--token TOKEN]"

// runSwap asks a running broker's admin endpoint (POST /swap) to switch its
// replication mode and prints the answer: the swap report, or why the swap
// was abandoned (then the old mode still runs and the exit status is 1).
func runSwap(args []string, sys IO) error {
	if len(args) < 2 || args[0] != "ha" {
		return usageError{swapUsage}
	}
	to := args[1]
	if to != "sync" && to != "async" {
		return usageError{swapUsage}
	}
	fs := flag.NewFlagSet("mqd swap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	adminAddr := fs.String("admin", "127.0.0.1:10913", "")
	token := fs.String("token", "", "")
	if _, err := parseFlags(fs, args[2:]); err != nil {
		return err
	}
	code, body, err := adminCall(http.MethodPost, *adminAddr, "/swap?slot=ha&to="+url.QueryEscape(to), *token, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	fmt.Fprintln(sys.Stdout, strings.TrimSpace(string(body)))
	if code != http.StatusOK {
		return fmt.Errorf("swap ha %s refused (HTTP %d); the current mode stays", to, code)
	}
	return nil
}
