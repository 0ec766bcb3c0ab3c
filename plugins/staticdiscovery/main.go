// Command staticdiscovery is discovery.static (discovery/static) run out of
// process as an installed plugin, module discovery.extstatic: a broker that
// announces itself to no registry and whose master is fixed in config
// (plugin.extstatic.masterAddr, plugin.extstatic.masterHaAddr). It is the
// example of a discovery plugin and proves the host runs that kind
// (docs/plugins.md).
//
//	go build -o staticdiscovery ./plugins/staticdiscovery
//	mqd plugin install ./staticdiscovery
//	mqd broker -c broker-a-s.properties --set discovery.mode=extstatic \
//	    --set plugin.extstatic.masterAddr=10.0.0.1:10911 --set plugin.extstatic.masterHaAddr=10.0.0.1:10912
package main

import (
	"context"
	"sync"

	"github.com/mqd/mqd/discovery/static"
	"github.com/mqd/mqd/plugins/sdk"
)

var version = "1.0.0"

type plugin struct {
	mu sync.Mutex
	s  static.Static
}

func (p *plugin) Configure(values map[string]string, dryRun bool) error {
	if !dryRun {
		p.mu.Lock()
		p.s = static.Static{MasterAddr: values["masterAddr"], MasterHAAddr: values["masterHaAddr"]}
		p.mu.Unlock()
	}
	return nil
}

func (p *plugin) Announce(context.Context, sdk.Registration) (sdk.Answer, error) {
	p.mu.Lock()
	a := p.s.Answer()
	p.mu.Unlock()
	return sdk.Answer{MasterAddr: a.MasterAddr, MasterHAAddr: a.MasterHAAddr}, nil
}

func (p *plugin) Withdraw(context.Context, sdk.Registration) error { return nil }

func main() {
	sdk.ServeDiscovery(sdk.Info{Name: "extstatic", Version: version, Keys: []sdk.Key{
		{Name: "masterAddr", Doc: "the master's remoting address host:port, for a slave"},
		{Name: "masterHaAddr", Doc: "the master's replication address host:port, for a slave"},
	}}, &plugin{})
}
