package tlsconf

import "github.com/mqd/mqd/kernel/config"

// Key paths. None is live: certificates are reloaded from their files, and a
// remote updateBrokerConfig can never point them elsewhere.
const (
	ServerModeKey          = "tls.server.mode"
	ServerCertPathKey      = "tls.server.certPath"
	ServerKeyPathKey       = "tls.server.keyPath"
	ServerClientAuthKey    = "tls.server.needClientAuth"
	ServerTrustCertPathKey = "tls.server.trustCertPath"
	ClientEnableKey        = "tls.client.enable"
	ClientAuthServerKey    = "tls.client.authServer"
	ClientTrustCertPathKey = "tls.client.trustCertPath"
	ClientCertPathKey      = "tls.client.certPath"
	ClientKeyPathKey       = "tls.client.keyPath"
)

func init() {
	config.Register(
		config.Key{Path: ServerModeKey, Default: "disabled",
			Doc: "TLS on the remoting and HA ports: disabled, permissive (TLS and plain TCP on one port) or enforcing (TLS only); RocketMQ's tls.server.mode"},
		config.Key{Path: ServerCertPathKey, Default: "", Doc: "PEM certificate chain of the servers (reloaded when the file changes)"},
		config.Key{Path: ServerKeyPathKey, Default: "", Doc: "PEM private key of tls.server.certPath, unencrypted (reloaded when the file changes)"},
		config.Key{Path: ServerClientAuthKey, Default: "none", Doc: "client certificates: none, optional (verified when given) or require; RocketMQ's tls.server.need.client.auth"},
		config.Key{Path: ServerTrustCertPathKey, Default: "", Doc: "PEM CA certificates that client certificates are verified against"},
		config.Key{Path: ClientEnableKey, Default: false, Doc: "mqd's own outgoing connections (to name servers, masters, controllers) use TLS; RocketMQ's tls.enable"},
		config.Key{Path: ClientAuthServerKey, Default: false, Doc: "verify the server's certificate on outgoing TLS connections (against tls.client.trustCertPath, else the system roots)"},
		config.Key{Path: ClientTrustCertPathKey, Default: "", Doc: "PEM CA certificates that server certificates are verified against"},
		config.Key{Path: ClientCertPathKey, Default: "", Doc: "PEM client certificate presented to servers that ask for one"},
		config.Key{Path: ClientKeyPathKey, Default: "", Doc: "PEM private key of tls.client.certPath"},
	)
}

// ServerOptionsFrom reads the tls.server.* keys.
func ServerOptionsFrom(c *config.Config) (ServerOptions, error) {
	mode, err := ParseMode(c.String(ServerModeKey))
	if err != nil {
		return ServerOptions{}, err
	}
	return ServerOptions{Mode: mode, CertPath: c.String(ServerCertPathKey), KeyPath: c.String(ServerKeyPathKey),
		ClientAuth: c.String(ServerClientAuthKey), TrustCertPath: c.String(ServerTrustCertPathKey)}, nil
}

// ClientOptionsFrom reads the tls.client.* keys.
func ClientOptionsFrom(c *config.Config) ClientOptions {
	return ClientOptions{Enable: c.Bool(ClientEnableKey), AuthServer: c.Bool(ClientAuthServerKey),
		TrustCertPath: c.String(ClientTrustCertPathKey), CertPath: c.String(ClientCertPathKey), KeyPath: c.String(ClientKeyPathKey)}
}
