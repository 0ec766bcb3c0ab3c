package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/mqd/mqd/kernel"
)

// registerReloadEndpoint adds POST /reload to the admin endpoint: the same
// reload as SIGHUP (re-read every layer, diff, refuse what cannot change live,
// nothing half-applied), answering the changed keys or the reason for refusal.
func registerReloadEndpoint(k *kernel.Kernel, mode string, o *options, sys IO, logger zerolog.Logger) {
	k.Admin().Handle(kernel.AdminHandler{Path: "/reload", Methods: []string{http.MethodPost},
		Doc: "re-read the configuration and apply what may change live (like SIGHUP)",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			changed, err := reload(r.Context(), k, mode, o, sys, logger)
			w.Header().Set("Content-Type", "application/json")
			out := map[string]any{"changed": changed}
			status := http.StatusOK
			if err != nil {
				out["error"] = err.Error()
				status = http.StatusConflict
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(out)
		})})
}

// reloadCommand is mqd reload: it asks a running daemon to reload its
// configuration through the admin endpoint and prints the answer; a refused
// reload exits 1.
func reloadCommand(sys IO) *cobra.Command {
	return adminCommand("reload", "re-read the running daemon's configuration (like SIGHUP)",
		func(_ []string, addr, token string) error {
			code, body, err := adminCall(http.MethodPost, addr, "/reload", token, 2*time.Minute)
			if err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			fmt.Fprintln(sys.Stdout, strings.TrimSpace(string(body)))
			if code != http.StatusOK {
				return fmt.Errorf("reload refused (HTTP %d); the running configuration stays", code)
			}
			return nil
		}, sys)
}
