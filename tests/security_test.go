package tests

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd/kernel/tlsconf"
	"github.com/mqd/mqd/kernel/tlsconf/tlstest"
	"github.com/mqd/mqd/plugins/broker"
	"github.com/mqd/mqd/plugins/namesrv"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/acl"
	"github.com/mqd/mqd/storage"
)

const (
	appAK, appSK     = "appAccount", "appSecret1"
	adminAK, adminSK = "opsAccount", "opsSecret1"
)

// aclFile is a RocketMQ plain_acl.yml: an application account that may
// publish and subscribe okTopic, only subscribe subTopic, and is denied
// deniedGroup; an admin account.
func aclFile(okTopic, subTopic, subPerm, deniedGroup string) string {
	return fmt.Sprintf(`globalWhiteRemoteAddresses:
accounts:
  - accessKey: %s
    secretKey: %s
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - %s=PUB|SUB
      - %s=%s
    groupPerms:
      - %s=DENY
  - accessKey: %s
    secretKey: %s
    admin: true
`, appAK, appSK, okTopic, subTopic, subPerm, deniedGroup, adminAK, adminSK)
}

// signedClient is a raw remoting client that signs as RocketMQ's clients do.
func signedClient(t *testing.T, ak, sk string) *remoting.Client {
	t.Helper()
	cc := remoting.ClientConfig{}
	if ak != "" {
		sign, err := acl.Signer(acl.Credentials{AccessKey: ak, SecretKey: sk})
		if err != nil {
			t.Fatal(err)
		}
		cc.Sign = sign
	}
	cli := remoting.NewClient(cc)
	t.Cleanup(func() { cli.Close() })
	return cli
}

func invoke(t *testing.T, cli *remoting.Client, addr string, req *remoting.Command) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Invoke(ctx, addr, req)
	if err != nil {
		t.Fatalf("request %d to %s: %v", req.Code, addr, err)
	}
	return resp
}

// createTopicRaw creates a topic with UPDATE_AND_CREATE_TOPIC over cli.
func createTopicRaw(t *testing.T, cli *remoting.Client, brokerAddr, topic string, queues int) {
	t.Helper()
	q := strconv.Itoa(queues)
	resp := invoke(t, cli, brokerAddr, remoting.NewRequest(remoting.UpdateAndCreateTopic,
		map[string]string{"topic": topic, "defaultTopic": "TBW102", "readQueueNums": q, "writeQueueNums": q, "perm": "6", "topicFilterType": "SINGLE_TAG"}, nil))
	if resp.Code != remoting.Success {
		t.Fatalf("create topic %s: %d %s", topic, resp.Code, resp.Remark)
	}
}

// createTopicSigned creates a topic as the admin account and waits for its
// route, asked as the admin account too.
func createTopicSigned(t *testing.T, c *Cluster, admin *remoting.Client, topic string) {
	t.Helper()
	createTopicRaw(t, admin, c.BrokerAddr, topic, 2)
	WaitFor(t, 15*time.Second, func() bool {
		r := invoke(t, admin, c.NameSrvAddr, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
		return r.Code == remoting.Success
	}, "route of %s", topic)
}

// TestACLWithGoClient (#16): with aclEnable on broker and name server, the
// official Go client with WithCredentials publishes and consumes what its
// account allows; without credentials, with a wrong secret, on a topic it
// may only subscribe, or for admin requests it is refused with NO_PERMISSION
// and a remark, denials are logged once per client, and an edit of the file
// takes effect without a restart.
func TestACLWithGoClient(t *testing.T) {
	SkipClientUnderRace(t)
	okTopic, subTopic, deniedGroup := UniqueName("ACL_OK"), UniqueName("ACL_SUB"), UniqueName("CG_DENIED")
	file := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(file, []byte(aclFile(okTopic, subTopic, "SUB", deniedGroup)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := StartCluster(t, ClusterOptions{
		Broker:  []string{"aclEnable=true", "acl.file=" + file, "acl.accessKey=" + adminAK, "acl.secretKey=" + adminSK},
		Namesrv: []string{"aclEnable=true", "acl.file=" + file},
	})
	admin := signedClient(t, adminAK, adminSK)
	createTopicSigned(t, c, admin, okTopic)
	createTopicSigned(t, c, admin, subTopic)

	creds := primitive.Credentials{AccessKey: appAK, SecretKey: appSK}
	app := NewProducer(t, c.NameSrvAddr, producer.WithCredentials(creds))
	send := func(p interface {
		SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
	}, topic string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("acl")))
		if err == nil && r.Status != primitive.SendOK {
			err = fmt.Errorf("status %v", r.Status)
		}
		return err
	}
	if err := send(app, okTopic); err != nil {
		t.Fatalf("send with credentials to a PUB|SUB topic: %v", err)
	}

	// Consumption under the account's own group.
	pc := StartPushConsumer(t, c.NameSrvAddr, okTopic, ConsumerOptions{FromFirst: true,
		Extra: []consumer.Option{consumer.WithCredentials(creds)}})
	WaitFor(t, 30*time.Second, func() bool { return pc.Received.Total() >= 1 }, "message consumed with credentials")

	// Refusals.
	if err := send(app, subTopic); err == nil {
		t.Error("send to a SUB-only topic succeeded")
	} else {
		t.Logf("send to a SUB-only topic: %v", err)
	}
	anonymous := NewProducer(t, c.NameSrvAddr)
	for range 5 {
		if err := send(anonymous, okTopic); err == nil {
			t.Fatal("send without credentials succeeded")
		}
	}
	wrong := NewProducer(t, c.NameSrvAddr, producer.WithCredentials(primitive.Credentials{AccessKey: appAK, SecretKey: "not-the-secret"}))
	if err := send(wrong, okTopic); err == nil {
		t.Error("send with a wrong secret succeeded")
	}

	// Raw requests see the code and remark the clients get.
	appRaw := signedClient(t, appAK, appSK)
	for _, r := range []struct {
		what string
		req  *remoting.Command
		want string
	}{
		{"create topic as a normal account", remoting.NewRequest(remoting.UpdateAndCreateTopic,
			map[string]string{"topic": UniqueName("ACL_NEW"), "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil), "Need admin permission"},
		{"update broker config as a normal account", remoting.NewRequest(remoting.UpdateBrokerConfig, nil, []byte("brokerPermission=2\n")), "Need admin permission"},
		{"pull as a denied group", remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": deniedGroup, "topic": okTopic, "queueId": "0",
			"queueOffset": "0", "maxMsgNums": "1", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0", "subVersion": "0"}, nil), "No permission for group " + deniedGroup},
	} {
		resp := invoke(t, appRaw, c.BrokerAddr, r.req)
		if resp.Code != remoting.NoPermission || !strings.Contains(resp.Remark, r.want) {
			t.Errorf("%s: code %d remark %q, want NO_PERMISSION saying %q", r.what, resp.Code, resp.Remark, r.want)
		}
	}
	unsigned := signedClient(t, "", "")
	if resp := invoke(t, unsigned, c.BrokerAddr, remoting.NewRequest(remoting.SendMessage, rawSendExt(okTopic, "PG", 0, ""), []byte("x"))); resp.Code != remoting.NoPermission {
		t.Errorf("unsigned raw send: code %d %q", resp.Code, resp.Remark)
	}
	if resp := invoke(t, admin, c.BrokerAddr, remoting.NewRequest(remoting.SendMessage, rawSendExt(subTopic, "PG", 0, ""), []byte("x"))); resp.Code != remoting.Success {
		t.Errorf("admin send: code %d %q", resp.Code, resp.Remark)
	}

	// Five refused sends from one client: one log line per server and reason.
	if n := strings.Count(c.logs.String(), "No accessKey is configured"); n == 0 || n > 2 {
		t.Errorf("denials without accessKey logged %d times, want once per server", n)
	}

	// The operator grants PUB on subTopic: no restart.
	if err := os.WriteFile(file, []byte(aclFile(okTopic, subTopic, "PUB|SUB", deniedGroup)), 0o600); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 15*time.Second, func() bool { return send(app, subTopic) == nil }, "send allowed after the ACL file changed")
}

// TestTLSWithGoClient (#16): tls.server.mode on broker and name server. In
// enforcing mode the Go client with WithTls(true) publishes and consumes and
// a plain client is refused; in permissive mode both are served. The broker
// registers with the name server over TLS (tls.client.enable).
func TestTLSWithGoClient(t *testing.T) {
	SkipClientUnderRace(t)
	// rocketmq-client-go's WithTls sets UseTls on a RemotingClientConfig
	// that all its clients share by default: once set, every later client
	// of this process would dial TLS. Reset it for the tests after this one
	// (which must not run in parallel with it).
	t.Cleanup(func() { _, _ = rocketmq.NewProducer(producer.WithTls(false)) })
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, t.TempDir(), "server")
	for _, mode := range []string{"enforcing", "permissive"} {
		t.Run(mode, func(t *testing.T) {
			tlsKeys := []string{"tls.server.mode=" + mode, "tls.server.certPath=" + cert, "tls.server.keyPath=" + key}
			c := StartCluster(t, ClusterOptions{
				Broker:  append([]string{"tls.client.enable=true"}, tlsKeys...),
				Namesrv: tlsKeys,
			})
			topic := UniqueName("TLS")
			admin := remoting.NewClient(remoting.ClientConfig{TLS: mustClientTLS(t)})
			defer admin.Close()
			createTopicRaw(t, admin, c.BrokerAddr, topic, 2)
			WaitFor(t, 15*time.Second, func() bool {
				return invoke(t, admin, c.NameSrvAddr, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)).Code == remoting.Success
			}, "route of %s over TLS", topic)

			p := NewProducer(t, c.NameSrvAddr, producer.WithTls(true))
			SendN(t, p, topic, "", "tls", 5)
			pc := StartPushConsumer(t, c.NameSrvAddr, topic, ConsumerOptions{FromFirst: true, Extra: []consumer.Option{consumer.WithTls(true)}})
			WaitFor(t, 30*time.Second, func() bool { return pc.Received.Distinct() >= 5 }, "messages consumed over TLS")

			plain := remoting.NewClient(remoting.ClientConfig{DialTimeout: 2 * time.Second})
			defer plain.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			presp, err := plain.Invoke(ctx, c.BrokerAddr, remoting.NewRequest(remoting.GetBrokerRuntimeInfo, nil, nil))
			served := err == nil && presp.Code == remoting.Success
			if want := mode == "permissive"; served != want {
				t.Fatalf("plain client served=%v (err %v), want %v in %s mode", served, err, want, mode)
			}
		})
	}
}

func mustClientTLS(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{Enable: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSecureMasterSlave (#16): ACL and TLS enforcing on the name server, a
// SYNC_MASTER and its slave. The slave replicates over TLS on the HA port and
// syncs metadata from the master with signed requests; a synchronous send,
// signed and over TLS, is acknowledged only with the slave's confirmation.
func TestSecureMasterSlave(t *testing.T) {
	RequireReplication(t)
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, t.TempDir(), "server")
	file := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(file, []byte(aclFile("T1", "T2", "SUB", "G1")), 0o600); err != nil {
		t.Fatal(err)
	}
	secured := []string{"tls.server.mode=enforcing", "tls.server.certPath=" + cert, "tls.server.keyPath=" + key,
		"aclEnable=true", "acl.file=" + file}
	brokerSide := append([]string{"tls.client.enable=true", "acl.accessKey=" + adminAK, "acl.secretKey=" + adminSK}, secured...)
	c := StartCluster(t, ClusterOptions{Broker: append([]string{"store.brokerRole=SYNC_MASTER"}, brokerSide...), Namesrv: secured})
	slave, _ := startSlave(t, c, brokerSide...)
	master := c.Module("app.broker").(*broker.Broker)
	WaitFor(t, 30*time.Second, func() bool { return len(master.HAStatus().Slaves) > 0 }, "the slave connects over TLS: %+v", master.HAStatus())

	sign, _ := acl.Signer(acl.Credentials{AccessKey: adminAK, SecretKey: adminSK})
	cli := remoting.NewClient(remoting.ClientConfig{Sign: sign, TLS: mustClientTLS(t)})
	defer cli.Close()
	topic := UniqueName("SECURE")
	createTopicRaw(t, cli, c.BrokerAddr, topic, 1)
	for i := range 20 {
		resp := invoke(t, cli, c.BrokerAddr, remoting.NewRequest(remoting.SendMessage, rawSendExt(topic, "PG", 0, ""), []byte(fmt.Sprint("m", i))))
		if resp.Code != remoting.Success {
			t.Fatalf("send %d: %d %s", i, resp.Code, resp.Remark)
		}
	}
	repl := slave.Store().(storage.Replicable)
	if got, want := repl.MaxPhyOffset(), master.Store().(storage.Replicable).MaxPhyOffset(); got < want {
		t.Fatalf("SYNC_MASTER acknowledged sends the slave has not got: slave %d, master %d", got, want)
	}
	// The slave's own metadata sync from the master is signed: it learns the topic.
	WaitFor(t, 30*time.Second, func() bool {
		r := invoke(t, cli, slave.Addr(), remoting.NewRequest(remoting.GetAllTopicConfig, nil, nil))
		return r.Code == remoting.Success && strings.Contains(string(r.Body), topic)
	}, "the slave syncs %s from the master", topic)
	// An unsigned client over TLS is refused by the slave too.
	plainTLS := remoting.NewClient(remoting.ClientConfig{TLS: mustClientTLS(t)})
	defer plainTLS.Close()
	if r := invoke(t, plainTLS, slave.Addr(), remoting.NewRequest(remoting.GetAllTopicConfig, nil, nil)); r.Code != remoting.NoPermission {
		t.Fatalf("unsigned request to the slave: %d %s", r.Code, r.Remark)
	}
}

// TestEveryServedCodeIsClassified (#16): every request code the broker and
// the name server (with an embedded controller) answer has an explicit ACL
// class (acl.ClassOf): a handler added without one would be admin-only by
// default, and this test makes its author decide.
func TestEveryServedCodeIsClassified(t *testing.T) {
	dir := t.TempDir()
	c := StartCluster(t, ClusterOptions{Namesrv: []string{"enableControllerInNamesrv=true",
		"controllerDLegerGroup=g", "controllerDLegerSelfId=n0", fmt.Sprintf("controllerDLegerPeers=n0-127.0.0.1:%d", FreePort(t)),
		"controllerStorePath=" + filepath.Join(dir, "controller")}})
	served := map[string][]int16{
		"broker":  c.Module("app.broker").(*broker.Broker).ServedCodes(),
		"namesrv": c.Module("app.namesrv").(*namesrv.Namesrv).ServedCodes(),
	}
	for server, codes := range served {
		if len(codes) < 10 {
			t.Fatalf("%s serves %d codes", server, len(codes))
		}
		for _, code := range codes {
			if !acl.Classified(code) {
				t.Errorf("%s answers code %d (%s) without an ACL class: add it to acl.classes", server, code, remoting.RequestCodeName(code))
			}
		}
	}
}

// TestSignedRequestReplays (RELIABILITY A9, a documentation test): RocketMQ's
// ACL signature covers no timestamp or nonce, so a captured signed request is
// accepted again. TLS, not the signature, protects against that.
func TestSignedRequestReplays(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(file, []byte(aclFile("T1", "T2", "SUB", "G1")), 0o600); err != nil {
		t.Fatal(err)
	}
	c := StartCluster(t, ClusterOptions{Broker: []string{"aclEnable=true", "acl.file=" + file}})
	sign, _ := acl.Signer(acl.Credentials{AccessKey: adminAK, SecretKey: adminSK})
	captured := sign(remoting.NewRequest(remoting.GetBrokerRuntimeInfo, nil, nil))
	replayer := signedClient(t, "", "") // sends the captured fields as they are
	for i := range 2 {
		if r := invoke(t, replayer, c.BrokerAddr, captured); r.Code != remoting.Success {
			t.Fatalf("replay %d: %d %s", i, r.Code, r.Remark)
		}
	}
}
