// Command mqadmin is RocketMQ's admin tool for mqd (and RocketMQ) clusters:
// clusterList, topicList, updateTopic, consumerProgress, ... with the Java
// tool's flags and table columns. The logic lives in internal/cli.
package main

import (
	"os"

	"github.com/mqd/mqd/cmd/mqadmin/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.IO{Stdout: os.Stdout, Stderr: os.Stderr}))
}
