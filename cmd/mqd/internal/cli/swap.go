package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/cmd/internal/cmdline"
)

// modeName is what a replication mode can be called (a plugin's name, or
// a module ID ha.NAME).
var modeName = regexp.MustCompile(`^(ha\.)?[a-z][a-z0-9_-]*$`)

// swapCommand is mqd swap ha MODE (sync, async or an installed ha plugin's
// name, e.g. quorum): it asks a running broker's admin
// endpoint (POST /swap) to switch its replication mode and prints the
// answer: the swap report, or why the swap was abandoned (then the old mode
// still runs and the exit status is 1).
func swapCommand(sys IO) *cobra.Command {
	c := adminCommand("swap ha MODE", "switch a running master's replication mode: sync, async or an installed ha plugin (quorum)",
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
		if len(args) != 2 || args[0] != "ha" || !modeName.MatchString(args[1]) {
			return cmdline.Usagef("want: mqd swap ha MODE (sync, async or an installed ha plugin's name)")
		}
		return nil
	}
	c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return []cobra.Completion{"ha"}, cobra.ShellCompDirectiveNoFileComp
		case 1:
			return []cobra.Completion{"sync", "async", "quorum"}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return c
}
