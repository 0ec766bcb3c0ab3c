// Command quorum is an example out-of-process replication mode for mqd
// (module ha.quorum, docs/plugins.md): a master acknowledges a write once K
// of its slaves have confirmed it (plugin.quorum.acks, default 1). It runs
// over the master's own HA transport; the plugin only states K, and the
// master applies it to every send.
//
//	go build -o quorum ./plugins/quorum
//	mqd plugin install ./quorum
//	mqd broker -c broker.properties --set ha.mode=quorum --set plugin.quorum.acks=2
package main

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/mqd/mqd/plugins/sdk"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "1.0.0"

type quorum struct{ acks atomic.Int64 }

func (q *quorum) Configure(values map[string]string, dryRun bool) error {
	n, err := strconv.Atoi(values["acks"])
	if err != nil || n < 1 || n > 64 {
		return fmt.Errorf("plugin.quorum.acks must be an integer from 1 to 64, got %q", values["acks"])
	}
	if !dryRun {
		q.acks.Store(int64(n))
	}
	return nil
}

func (q *quorum) Policy(m sdk.Membership) sdk.Policy {
	k := int(q.acks.Load())
	return sdk.Policy{MinAcks: k, Reason: fmt.Sprintf("%d of the %d connected slaves must confirm", k, len(m.Slaves))}
}

func main() {
	q := &quorum{}
	q.acks.Store(1)
	sdk.ServeReplication(sdk.Info{
		Name:         "quorum",
		Version:      version,
		Capabilities: []string{"policy"},
		Keys:         []sdk.Key{{Name: "acks", Default: "1", Doc: "how many slaves must confirm a write before the master acknowledges it"}},
	}, q)
}
