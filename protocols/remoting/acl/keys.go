package acl

import "github.com/mqd/mqd/kernel/config"

// Key paths. aclEnable itself is a role key (broker.aclEnable,
// namesrv.aclEnable), since a RocketMQ broker.conf carries it. None is live:
// the rules are reloaded from the file, and a remote updateBrokerConfig can
// never point the file elsewhere or change the credentials.
const (
	FileKey      = "acl.file"
	AccessKeyKey = "acl.accessKey"
	SecretKeyKey = "acl.secretKey"
)

func init() {
	config.Register(
		config.Key{Path: FileKey, Default: DefaultFile,
			Doc: "plain_acl.yml that aclEnable enforces, relative to the working directory like RocketMQ's conf/plain_acl.yml (reloaded when it changes)"},
		config.Key{Path: AccessKeyKey, Default: "",
			Doc: "account mqd signs its own requests with (broker to name server, slave to master) when the servers enforce ACL; an admin account, since registering a broker needs one"},
		config.Key{Path: SecretKeyKey, Default: "", Doc: "secret key of acl.accessKey"},
	)
}

// CredentialsFrom reads acl.accessKey and acl.secretKey; ok is false when
// either is empty.
func CredentialsFrom(c *config.Config) (Credentials, bool) {
	cr := Credentials{AccessKey: c.String(AccessKeyKey), SecretKey: c.String(SecretKeyKey)}
	return cr, cr.AccessKey != "" && cr.SecretKey != ""
}
