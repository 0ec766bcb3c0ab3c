// Command mqd is the RocketMQ-compatible broker daemon: name server, broker, or
// both in one process. The command line lives in internal/cli.
package main

import (
	"os"
	"time"

	"github.com/mqd/mqd/cmd/mqd/internal/cli"
	_ "github.com/mqd/mqd/plugins/all" // the shipped modules
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	started := time.Now()
	os.Exit(cli.Main(os.Args[1:], cli.IO{Version: version, Started: started}))
}
