package pluginpb

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// The handshake both sides of go-plugin check before anything else. The magic
// cookie never changes: it only tells a plugin binary started by hand that it
// is not meant to be run that way. ProtocolVersion is negotiated: a plugin
// built for another version is refused, with both versions in the message.
const (
	ProtocolVersion  = 1
	MagicCookieKey   = "MQD_PLUGIN"
	MagicCookieValue = "1f6c7e0c2f9a4a51b6a3d4e8mqd"
	// GoPluginName is the one entry of the go-plugin plugin set: every mqd
	// plugin serves the Plugin service and its kind's service on one
	// connection.
	GoPluginName = "mqd"
)

// Handshake is go-plugin's handshake configuration for mqd plugins.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{ProtocolVersion: ProtocolVersion, MagicCookieKey: MagicCookieKey, MagicCookieValue: MagicCookieValue}
}

// GoPlugin adapts mqd's gRPC services to go-plugin. On the plugin side the
// servers are set; on the host side GRPCClient hands back the connection,
// from which the host builds the clients it needs.
type GoPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Plugin      PluginServer
	Replication ReplicationServer // kind "ha" only
	Discovery   DiscoveryServer   // kind "discovery" only
}

// GRPCServer registers the plugin's services.
func (p *GoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterPluginServer(s, p.Plugin)
	if p.Replication != nil {
		RegisterReplicationServer(s, p.Replication)
	}
	if p.Discovery != nil {
		RegisterDiscoveryServer(s, p.Discovery)
	}
	return nil
}

// GRPCClient returns the connection itself (a *grpc.ClientConn).
func (p *GoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}
