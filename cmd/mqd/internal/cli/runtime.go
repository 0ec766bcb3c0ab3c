package cli

import (
	"os"
	"runtime/debug"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
)

// The broker's live heap is small (a few MiB: headers, maps, buffers; messages
// live in mapped files), so Go's default GOGC=100 runs the collector very
// often under load. A higher default trades a few MiB of heap for throughput:
// measured with `mqbench producer --client native -p 2 -w 64 -s 1024` on 2
// cores, 43-47k msg/s at 100 against 54-58k msg/s at 400, with ~20 MiB of
// anonymous memory after the run.
func init() {
	config.Register(config.Key{Path: "runtime.gcPercent", Default: 400,
		Doc: "Go garbage collector target percentage (GOGC); the GOGC environment variable, when set, wins"})
}

// applyRuntime sets the collector's target from the configuration unless the
// operator set GOGC.
func applyRuntime(cfg *config.Config, log zerolog.Logger) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Debug().Str("GOGC", v).Msg("GOGC from the environment")
		return
	}
	if _, ok := config.Lookup("runtime.gcPercent"); ok {
		debug.SetGCPercent(cfg.Int("runtime.gcPercent"))
	}
}
