package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
)

// swapCommand is mqd swap ha sync|async: it asks a running broker's admin
// endpoint (POST /swap) to switch its replication mode and prints the
// answer: the swap report, or why the swap was abandoned (then the old mode
// still runs and the exit status is 1).
func swapCommand(sys IO) *cobra.Command {
	c := adminCommand("swap ha sync|async", "switch a running master's replication mode",
		func(args []string, addr, token string) error {
			to := args[1]
			code, body, err := adminCall(http.MethodPost, addr, "/swap?slot=ha&to="+url.QueryEscape(to), token, 2*time.Minute)
			if err != nil {
				return fmt.Errorf("swap: %w", err)
			}
			fmt.Fprintln(sys.Stdout, strings.TrimSpace(string(body)))
			if code != http.StatusOK {
				return fmt.Errorf("swap ha %s refused (HTTP %d); the current mode stays", to, code)
			}
			return nil
		}, sys)
	c.Args = func(_ *cobra.Command, args []string) error {
		if len(args) != 2 || args[0] != "ha" || (args[1] != "sync" && args[1] != "async") {
			return cmdline.Usagef("want: mqd swap ha sync|async")
		}
		return nil
	}
	c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return []cobra.Completion{"ha"}, cobra.ShellCompDirectiveNoFileComp
		case 1:
			return []cobra.Completion{"sync", "async"}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return c
}
