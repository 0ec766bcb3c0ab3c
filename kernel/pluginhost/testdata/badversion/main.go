// Command badversion is a plugin built for a protocol version mqd does not
// speak (99): the host must refuse it, naming both versions.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/mqd/mqd/plugins/sdk/pluginpb"
)

func main() {
	hs := pluginpb.Handshake()
	hs.ProtocolVersion = 99
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{99: {pluginpb.GoPluginName: &pluginpb.GoPlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
