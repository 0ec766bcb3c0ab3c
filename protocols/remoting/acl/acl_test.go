package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
)

// clientSignature is the Go client's algorithm (its ACL interceptor),
// written out independently: the values of the ext fields plus AccessKey,
// sorted by key, concatenated, then the body; HMAC-SHA1, base64.
func clientSignature(ak, sk string, ext map[string]string, body []byte) string {
	m := map[string]string{AccessKeyField: ak}
	for k, v := range ext {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var content strings.Builder
	for _, k := range keys {
		content.WriteString(m[k])
	}
	mac := hmac.New(sha1.New, []byte(sk))
	mac.Write([]byte(content.String()))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signedLikeClient returns req as the Go client sends it with credentials.
func signedLikeClient(ak, sk string, code int16, ext map[string]string, body []byte) *remoting.Command {
	sig := clientSignature(ak, sk, ext, body)
	all := map[string]string{AccessKeyField: ak, SignatureField: sig}
	for k, v := range ext {
		all[k] = v
	}
	return remoting.NewRequest(code, all, body)
}

const testFile = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: normalAK
    secretKey: normalSK
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
  - accessKey: adminAK
    secretKey: adminSK
    admin: true
  - accessKey: officeAK
    secretKey: officeSK
    whiteRemoteAddress: 192.168.1.*
`

func openRules(t *testing.T, content string, role Role) *Validator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Open(path, role, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tcp(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }

func sendV2(topic, group string) map[string]string {
	return map[string]string{"a": group, "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "1700000000000", "h": "0"}
}

func TestRocketMQSampleFileLoads(t *testing.T) {
	data, err := os.ReadFile("testdata/rocketmq-4.9.8-plain_acl.yml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseRules(data)
	if err != nil {
		t.Fatalf("RocketMQ's own plain_acl.yml: %v", err)
	}
	if len(r.accounts) != 2 || len(r.globalWhite) != 2 {
		t.Fatalf("accounts %d, global white %d; want 2, 2", len(r.accounts), len(r.globalWhite))
	}
	a := r.accounts["RocketMQ"]
	if a == nil || a.admin || a.defaultTopic != Deny || a.defaultGroup != Sub || a.topics["topicB"] != Pub|Sub || a.groups["groupA"] != Deny {
		t.Fatalf("account RocketMQ parsed as %+v", a)
	}
	if !r.accounts["rocketmq2"].admin || !r.accounts["rocketmq2"].white(netip.MustParseAddr("192.168.1.7")) {
		t.Fatal("rocketmq2: want admin, white-listed from 192.168.1.*")
	}
}

func TestCheck(t *testing.T) {
	v := openRules(t, testFile, Broker)
	from := tcp("127.0.0.1")
	for _, c := range []struct {
		name   string
		remote net.Addr
		req    *remoting.Command
		denied string // "" admits
	}{
		{"no accessKey", from, remoting.NewRequest(remoting.SendMessageV2, sendV2("topicB", "PG"), []byte("x")), "No accessKey"},
		{"global white list", tcp("10.10.103.9"), remoting.NewRequest(remoting.UpdateBrokerConfig, nil, nil), ""},
		{"unknown account", from, signedLikeClient("ghostAK", "ghostSK", remoting.HeartBeat, nil, nil), "No acl config for ghostAK"},
		{"wrong secret", from, signedLikeClient("normalAK", "wrongSK", remoting.SendMessageV2, sendV2("topicB", "PG"), []byte("x")), "Check signature failed"},
		{"body changed", from, func() *remoting.Command {
			r := signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("topicB", "PG"), []byte("x"))
			r.Body = []byte("y")
			return r
		}(), "Check signature failed"},
		// A key named twice counts with its last value, for the signature
		// and for the permission alike (remoting.Fields).
		{"an earlier copy of a key is ignored", from, func() *remoting.Command {
			r := signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("topicB", "PG"), []byte("x"))
			r.ExtFields = append(remoting.Fields{{Key: "b", Value: "topicC"}}, r.ExtFields...)
			return r
		}(), ""},
		{"a later copy of a key counts", from, func() *remoting.Command {
			r := signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("topicB", "PG"), []byte("x"))
			r.ExtFields = append(r.ExtFields, remoting.Field{Key: "b", Value: "topicC"})
			return r
		}(), "Check signature failed"},
		{"publish allowed", from, signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("topicB", "PG"), []byte("x")), ""},
		{"publish on SUB topic", from, signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("topicC", "PG"), []byte("x")), "No permission for topic topicC"},
		{"publish by default DENY", from, signedLikeClient("normalAK", "normalSK", remoting.SendBatchMessage, sendV2("other", "PG"), []byte("x")), "No permission for topic other"},
		{"pull with denied group", from, signedLikeClient("normalAK", "normalSK", remoting.PullMessage, map[string]string{"topic": "topicC", "consumerGroup": "groupA"}, nil), "No permission for group groupA"},
		{"pull allowed", from, signedLikeClient("normalAK", "normalSK", remoting.PullMessage, map[string]string{"topic": "topicC", "consumerGroup": "groupX"}, nil), ""},
		{"heartbeat of a denied group", from, signedLikeClient("normalAK", "normalSK", remoting.HeartBeat, nil,
			[]byte(`{"clientID":"c","consumerDataSet":[{"groupName":"groupA","subscriptionDataSet":[{"topic":"topicC"}]}],"producerDataSet":[]}`)), "group groupA"},
		{"heartbeat allowed", from, signedLikeClient("normalAK", "normalSK", remoting.HeartBeat, nil,
			[]byte(`{"clientID":"c","consumerDataSet":[{"groupName":"groupB","subscriptionDataSet":[{"topic":"topicC"},{"topic":"%RETRY%groupB"}]}]}`)), ""},
		{"trace topic needs no permission", from, signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("RMQ_SYS_TRACE_TOPIC", "PG"), []byte("x")), ""},
		{"admin code by normal account", from, signedLikeClient("normalAK", "normalSK", remoting.UpdateAndCreateTopic, map[string]string{"topic": "t"}, nil), "Need admin permission"},
		{"reset offset by normal account", from, signedLikeClient("normalAK", "normalSK", remoting.InvokeBrokerToResetOffset, map[string]string{"topic": "t"}, nil), "Need admin permission"},
		{"admin code by admin", from, signedLikeClient("adminAK", "adminSK", remoting.UpdateBrokerConfig, nil, []byte("a=b")), ""},
		{"admin publishes anywhere", from, signedLikeClient("adminAK", "adminSK", remoting.SendMessageV2, sendV2("anything", "PG"), []byte("x")), ""},
		{"account white list skips the signature", tcp("192.168.1.20"), remoting.NewRequest(remoting.HeartBeat, map[string]string{AccessKeyField: "officeAK"}, nil), ""},
		{"account white list elsewhere", tcp("192.168.2.20"), remoting.NewRequest(remoting.HeartBeat, map[string]string{AccessKeyField: "officeAK"}, nil), "Check signature failed"},
	} {
		err := v.Check(c.remote, c.req)
		switch {
		case c.denied == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.denied != "" && err == nil:
			t.Errorf("%s: admitted", c.name)
		case c.denied != "" && !strings.Contains(err.Error(), c.denied):
			t.Errorf("%s: refused with %q, want it to say %q", c.name, err, c.denied)
		}
	}
}

func TestNamesrvRoutesNeedAnyPermission(t *testing.T) {
	v := openRules(t, testFile, Namesrv)
	route := func(topic string) error {
		return v.Check(tcp("127.0.0.1"), signedLikeClient("normalAK", "normalSK", remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	}
	if err := route("topicC"); err != nil {
		t.Errorf("route of a SUB topic: %v", err)
	}
	if err := route("topicA"); err == nil {
		t.Error("route of a DENY topic admitted")
	}
	if err := route("%RETRY%groupB"); err != nil {
		t.Errorf("route of an allowed group's retry topic: %v", err)
	}
	reg := signedLikeClient("normalAK", "normalSK", remoting.RegisterBroker, map[string]string{"brokerName": "b"}, nil)
	if err := v.Check(tcp("127.0.0.1"), reg); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Errorf("broker registration by a normal account: %v, want an admin refusal", err)
	}
}

func TestSignerIsVerified(t *testing.T) {
	v := openRules(t, testFile, Broker)
	sign, err := Signer(Credentials{AccessKey: "normalAK", SecretKey: "normalSK"})
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"topic": "topicC", "consumerGroup": "groupB", uniqueKeyQueryFlag: "true"}
	req := remoting.NewRequest(remoting.PullMessage, ext, []byte("body"))
	signed := sign(req)
	if req.ExtFields.Has(SignatureField) {
		t.Fatal("Signer modified the request it was given")
	}
	if err := v.Check(tcp("127.0.0.1"), signed); err != nil {
		t.Fatalf("mqd-signed request (with the unique-key flag signed): %v", err)
	}
	// RocketMQ's broker leaves the unique-key flag out of the content.
	ext2 := map[string]string{"topic": "topicC", "consumerGroup": "groupB"}
	r2 := signedLikeClient("normalAK", "normalSK", remoting.PullMessage, ext2, nil)
	r2.ExtFields.Set(uniqueKeyQueryFlag, "true")
	if err := v.Check(tcp("127.0.0.1"), r2); err != nil {
		t.Fatalf("unique-key flag outside the signature: %v", err)
	}
	if _, err := Signer(Credentials{AccessKey: "x"}); err == nil {
		t.Fatal("Signer accepted an empty secret")
	}
}

func TestAddressPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern string
		in, out []string
	}{
		{"*", []string{"1.2.3.4", "::1"}, nil},
		{"192.168.0.1", []string{"192.168.0.1"}, []string{"192.168.0.2"}},
		{"192.168.0.1,10.0.0.1", []string{"192.168.0.1", "10.0.0.1"}, []string{"10.0.0.2"}},
		{"192.168.0.{1,2}", []string{"192.168.0.1", "192.168.0.2"}, []string{"192.168.0.3"}},
		{"192.168.*.*", []string{"192.168.9.9"}, []string{"192.169.0.1"}},
		{"192.168.1.10-20", []string{"192.168.1.10", "192.168.1.20"}, []string{"192.168.1.9", "192.168.1.21"}},
		{"fe80:0:0:0:0:0:0:*", []string{"fe80::5"}, []string{"fe81::5", "10.0.0.1"}},
	} {
		m, err := parseAddrMatcher(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		for _, ip := range c.in {
			if !m(netip.MustParseAddr(ip)) {
				t.Errorf("%s does not match %s", c.pattern, ip)
			}
		}
		for _, ip := range c.out {
			if m(netip.MustParseAddr(ip)) {
				t.Errorf("%s matches %s", c.pattern, ip)
			}
		}
	}
	if m, _ := parseAddrMatcher(""); m != nil {
		t.Error("an empty white list must match nothing")
	}
	for _, bad := range []string{"192.168.1", "192.168.1.300", "a.b.c.d", "192.168.1.{1,2"} {
		if _, err := parseAddrMatcher(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBadFilesRefused(t *testing.T) {
	for name, content := range map[string]string{
		"short key":         "accounts:\n  - accessKey: abc\n    secretKey: 12345678\n",
		"short secret":      "accounts:\n  - accessKey: abcdef\n    secretKey: 123\n",
		"duplicate":         "accounts:\n  - accessKey: abcdef\n    secretKey: 12345678\n  - accessKey: abcdef\n    secretKey: 87654321\n",
		"typo in perm":      "accounts:\n  - accessKey: abcdef\n    secretKey: 12345678\n    topicPerms:\n      - t=PUBSUB\n",
		"no = in perm":      "accounts:\n  - accessKey: abcdef\n    secretKey: 12345678\n    groupPerms:\n      - g\n",
		"not yaml":          "accounts: [",
		"bad white address": "globalWhiteRemoteAddresses:\n  - 300.1.1.1\n",
	} {
		if _, err := parseRules([]byte(content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.yml"), Broker, zerolog.Nop()); err == nil {
		t.Error("a missing file opened")
	}
}

func TestReloadKeepsLastGoodRules(t *testing.T) {
	v := openRules(t, testFile, Broker)
	req := func() *remoting.Command {
		return signedLikeClient("normalAK", "normalSK", remoting.SendMessageV2, sendV2("topicC", "PG"), []byte("x"))
	}
	if v.Check(tcp("127.0.0.1"), req()) == nil {
		t.Fatal("publish on a SUB topic admitted")
	}
	if err := os.WriteFile(v.path, []byte(strings.Replace(testFile, "topicC=SUB", "topicC=PUB", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if !v.Reload() {
		t.Fatal("changed file not reloaded")
	}
	if err := v.Check(tcp("127.0.0.1"), req()); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if err := os.WriteFile(v.path, []byte("accounts: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	if v.Reload() {
		t.Fatal("broken file took effect")
	}
	if err := v.Check(tcp("127.0.0.1"), req()); err != nil {
		t.Fatalf("broken file replaced the last good rules: %v", err)
	}
}

// sendV1 is a SEND_MESSAGE header with RocketMQ's long field names, as
// the Java client and mqbench's native client send it.
func sendV1(topic string) map[string]string {
	return map[string]string{"producerGroup": "PG", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "0", "sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "0",
		"properties": "UNIQ_KEY\x017F0000010001ABCDEF\x02WAIT\x01true\x02", "reconsumeTimes": "0", "unitMode": "false", "batch": "false"}
}

func TestSortedLikeTheClient(t *testing.T) {
	v := openRules(t, testFile, Broker)
	ext := sendV1("topicB")
	for i := range 40 { // more fields than the stack array holds
		ext[fmt.Sprintf("x%02d", i)] = fmt.Sprint(i)
	}
	ext["ab"], ext["ab\x01"], ext["a"] = "1", "2", "3" // prefixes that tie
	if err := v.Check(tcp("127.0.0.1"), signedLikeClient("normalAK", "normalSK", remoting.SendMessage, ext, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if err := v.Check(tcp("127.0.0.1"), signedLikeClient("normalAK", "normalSK", remoting.SendMessage, sendV1("topicB"), []byte("x"))); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCheckSend(b *testing.B) {
	for _, h := range []struct {
		name string
		ext  map[string]string
		code int16
	}{{"v1", sendV1("topicB"), remoting.SendMessage}, {"v2", sendV2("topicB", "PG"), remoting.SendMessageV2}} {
		b.Run(h.name, func(b *testing.B) { benchmarkCheck(b, h.code, h.ext) })
	}
}

func benchmarkCheck(b *testing.B, code int16, ext map[string]string) {
	path := filepath.Join(b.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(testFile), 0o600); err != nil {
		b.Fatal(err)
	}
	v, err := Open(path, Broker, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	req := signedLikeClient("normalAK", "normalSK", code, ext, make([]byte, 1024))
	from := tcp("127.0.0.1")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := v.Check(from, req); err != nil {
			b.Fatal(err)
		}
	}
}
