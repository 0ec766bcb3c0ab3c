// Package secure assembles a remoting endpoint's security from configuration
// — the ACL validator (package acl), the TLS server and client settings
// (package tlsconf) and the signing of its own requests — so that the broker,
// the name server and anything else serving remoting set them up alike.
// docs/security.md describes the model.
package secure

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/tlsconf"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
)

// Endpoint is one server's security: all fields are nil when it has none.
type Endpoint struct {
	ACL       *acl.Validator
	TLS       *tlsconf.Server
	ClientTLS *tls.Config
	Sign      remoting.Signer
}

// Setup reads the acl.* and tls.* keys. aclEnable is the role's own switch
// (broker.aclEnable, namesrv.aclEnable). The ACL file and certificates are
// loaded now, so a broken one stops the start instead of leaving a port
// open; Start begins watching them.
func Setup(c *config.Config, aclEnable bool, role acl.Role, log zerolog.Logger) (*Endpoint, error) {
	e := &Endpoint{}
	if aclEnable {
		v, err := acl.Open(c.String(acl.FileKey), role, log)
		if err != nil {
			return nil, err
		}
		e.ACL = v
	}
	so, err := tlsconf.ServerOptionsFrom(c)
	if err != nil {
		return nil, err
	}
	if so.Mode != tlsconf.Disabled {
		if e.TLS, err = tlsconf.NewServer(so, log); err != nil {
			return nil, err
		}
	}
	cc, err := ClientFromConfig(c, remoting.ClientConfig{})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Sign, e.ClientTLS = cc.Sign, cc.TLS
	return e, nil
}

// Start begins reloading the ACL file when it changes (the TLS files are
// watched from Setup on).
func (e *Endpoint) Start() {
	if e != nil && e.ACL != nil {
		e.ACL.Watch()
	}
}

// Guard is the remoting server's ACL hook, nil without ACL.
func (e *Endpoint) Guard() remoting.Guard {
	if e == nil || e.ACL == nil {
		return nil
	}
	return e.ACL.Guard()
}

// Listen wraps a listener in the server's TLS mode.
func (e *Endpoint) Listen(ln net.Listener) net.Listener {
	if e == nil || e.TLS == nil {
		return ln
	}
	return e.TLS.Listen(ln)
}

// Client adds signing and TLS to a remoting client's configuration.
func (e *Endpoint) Client(cc remoting.ClientConfig) remoting.ClientConfig {
	if e != nil {
		cc.Sign, cc.TLS = e.Sign, e.ClientTLS
	}
	return cc
}

// Describe adds the endpoint's security to a log line ("tls": the server
// mode, "acl": whether requests are checked).
func (e *Endpoint) Describe(ev *zerolog.Event) *zerolog.Event {
	mode := tlsconf.Disabled
	if e != nil && e.TLS != nil {
		mode = e.TLS.Mode()
	}
	return ev.Str("tls", mode.String()).Bool("acl", e != nil && e.ACL != nil)
}

// Close stops the watchers.
func (e *Endpoint) Close() {
	if e == nil {
		return
	}
	if e.ACL != nil {
		e.ACL.Close()
	}
	if e.TLS != nil {
		e.TLS.Close()
	}
}

// ClientFromConfig adds the configured signing (acl.accessKey) and TLS
// (tls.client.*) to a remoting client's configuration, for modules that
// only dial out (the name-server discovery module).
func ClientFromConfig(c *config.Config, cc remoting.ClientConfig) (remoting.ClientConfig, error) {
	if cr, ok := acl.CredentialsFrom(c); ok {
		sign, err := acl.Signer(cr)
		if err != nil {
			return cc, err
		}
		cc.Sign = sign
	}
	t, err := tlsconf.ClientConfig(tlsconf.ClientOptionsFrom(c))
	if err != nil {
		return cc, fmt.Errorf("tls client: %w", err)
	}
	cc.TLS = t
	return cc, nil
}
