package acl

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Permission bits, RocketMQ's values (Permission.java): an account owns a
// combination, a request needs one.
const (
	Deny byte = 1
	Any  byte = 1 << 1 // needed only: PUB or SUB will do
	Pub  byte = 1 << 2
	Sub  byte = 1 << 3
)

// minKeyLength is RocketMQ's lower bound for access and secret keys.
const minKeyLength = 6

// permits reports whether owned grants needed, RocketMQ's rule: DENY wins,
// ANY is satisfied by PUB or SUB.
func permits(needed, owned byte) bool {
	if owned&Deny != 0 {
		return false
	}
	if needed&Any != 0 {
		return owned&(Pub|Sub) != 0
	}
	return needed&owned != 0
}

// parsePerm reads DENY, PUB, SUB, PUB|SUB or SUB|PUB; anything else, like in
// RocketMQ, is DENY, but strict (for topicPerms and groupPerms entries) turns
// it into an error instead, so a typo cannot silently lock out a topic.
func parsePerm(s string, strict bool) (byte, error) {
	switch strings.TrimSpace(s) {
	case "PUB":
		return Pub, nil
	case "SUB":
		return Sub, nil
	case "PUB|SUB", "SUB|PUB":
		return Pub | Sub, nil
	case "DENY":
		return Deny, nil
	case "":
		return Deny, nil
	}
	if strict {
		return 0, fmt.Errorf("permission %q: want DENY, PUB, SUB or PUB|SUB", s)
	}
	return Deny, nil
}

func permString(p byte) string {
	switch {
	case p&Deny != 0:
		return "DENY"
	case p&(Pub|Sub) == Pub|Sub:
		return "PUB|SUB"
	case p&Pub != 0:
		return "PUB"
	case p&Sub != 0:
		return "SUB"
	case p&Any != 0:
		return "PUB or SUB"
	}
	return "none"
}

// fileConfig is plain_acl.yml as RocketMQ 4.4+ writes it.
type fileConfig struct {
	GlobalWhiteRemoteAddresses []string        `yaml:"globalWhiteRemoteAddresses"`
	Accounts                   []accountConfig `yaml:"accounts"`
	// DataVersion is written by RocketMQ's ACL admin commands; read and ignored.
	DataVersion any `yaml:"dataVersion"`
}

type accountConfig struct {
	AccessKey          string   `yaml:"accessKey"`
	SecretKey          string   `yaml:"secretKey"`
	WhiteRemoteAddress string   `yaml:"whiteRemoteAddress"`
	Admin              bool     `yaml:"admin"`
	DefaultTopicPerm   string   `yaml:"defaultTopicPerm"`
	DefaultGroupPerm   string   `yaml:"defaultGroupPerm"`
	TopicPerms         []string `yaml:"topicPerms"`
	GroupPerms         []string `yaml:"groupPerms"`
}

// rules is one loaded plain_acl.yml; it is never modified after parse, so
// checks read it without locks and a reload swaps it whole.
type rules struct {
	globalWhite     []addrMatcher
	globalWhiteText []string
	accounts        map[string]*account
}

// account is one accounts entry, ready for checks.
type account struct {
	accessKey    string
	secret       []byte
	white        addrMatcher // nil: none
	whiteText    string
	admin        bool
	defaultTopic byte
	defaultGroup byte
	topics       map[string]byte
	groups       map[string]byte // by group name, not by retry topic
	macs         sync.Pool       // hash.Hash keyed with secret
}

func (a *account) mac() hash.Hash {
	if m, ok := a.macs.Get().(hash.Hash); ok {
		m.Reset()
		return m
	}
	return hmac.New(sha1.New, a.secret)
}

func loadRules(path string) (*rules, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	r, err := parseRules(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, data, nil
}

func parseRules(data []byte) (*rules, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	r := &rules{accounts: make(map[string]*account, len(fc.Accounts))}
	for _, w := range fc.GlobalWhiteRemoteAddresses {
		m, err := parseAddrMatcher(w)
		if err != nil {
			return nil, fmt.Errorf("globalWhiteRemoteAddresses: %w", err)
		}
		if m != nil {
			r.globalWhite = append(r.globalWhite, m)
			r.globalWhiteText = append(r.globalWhiteText, w)
		}
	}
	for i, ac := range fc.Accounts {
		a, err := newAccount(ac)
		if err != nil {
			return nil, fmt.Errorf("accounts[%d]: %w", i, err)
		}
		if _, dup := r.accounts[a.accessKey]; dup {
			return nil, fmt.Errorf("accounts[%d]: accessKey %q appears twice", i, a.accessKey)
		}
		r.accounts[a.accessKey] = a
	}
	return r, nil
}

func newAccount(ac accountConfig) (*account, error) {
	if len(ac.AccessKey) < minKeyLength {
		return nil, fmt.Errorf("accessKey %q: must be at least %d characters", ac.AccessKey, minKeyLength)
	}
	if len(ac.SecretKey) < minKeyLength {
		return nil, fmt.Errorf("accessKey %q: secretKey must be at least %d characters", ac.AccessKey, minKeyLength)
	}
	a := &account{accessKey: ac.AccessKey, secret: []byte(ac.SecretKey), admin: ac.Admin, whiteText: ac.WhiteRemoteAddress}
	a.defaultTopic, _ = parsePerm(ac.DefaultTopicPerm, false)
	a.defaultGroup, _ = parsePerm(ac.DefaultGroupPerm, false)
	var err error
	if a.white, err = parseAddrMatcher(ac.WhiteRemoteAddress); err != nil {
		return nil, fmt.Errorf("accessKey %q: whiteRemoteAddress: %w", ac.AccessKey, err)
	}
	if a.topics, err = parseResourcePerms(ac.TopicPerms); err != nil {
		return nil, fmt.Errorf("accessKey %q: topicPerms: %w", ac.AccessKey, err)
	}
	if a.groups, err = parseResourcePerms(ac.GroupPerms); err != nil {
		return nil, fmt.Errorf("accessKey %q: groupPerms: %w", ac.AccessKey, err)
	}
	return a, nil
}

func parseResourcePerms(entries []string) (map[string]byte, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	m := make(map[string]byte, len(entries))
	for _, e := range entries {
		name, perm, ok := strings.Cut(e, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.Contains(perm, "=") {
			return nil, fmt.Errorf("%q: want name=PERM, for example topicA=SUB", e)
		}
		p, err := parsePerm(perm, true)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		m[name] = p
	}
	return m, nil
}

// addrMatcher matches a client's IP address against one white-list entry.
type addrMatcher func(ip netip.Addr) bool

// parseAddrMatcher reads RocketMQ's address forms: "" (matches nothing,
// returned as nil), "*" (everything), one address, a comma list,
// "192.168.0.{1,2}", and segment patterns such as "192.168.*.*" or
// "192.168.1.1-100" (IPv6: ":"-separated hex segments, same rules).
func parseAddrMatcher(s string) (addrMatcher, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return nil, nil
	case "*", "*.*.*.*", "*:*:*:*:*:*:*:*":
		return func(netip.Addr) bool { return true }, nil
	}
	var list []string
	if strings.HasSuffix(s, "}") {
		open := strings.LastIndexByte(s, '{')
		if open < 0 {
			return nil, fmt.Errorf("%q: unbalanced {}", s)
		}
		prefix := s[:open]
		for _, last := range strings.Split(s[open+1:len(s)-1], ",") {
			list = append(list, prefix+strings.TrimSpace(last))
		}
	} else {
		list = strings.Split(s, ",")
	}
	var ms []addrMatcher
	for _, one := range list {
		m, err := parseOnePattern(strings.TrimSpace(one))
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if len(ms) == 1 {
		return ms[0], nil
	}
	return func(ip netip.Addr) bool {
		for _, m := range ms {
			if m(ip) {
				return true
			}
		}
		return false
	}, nil
}

// segment is one IP segment pattern: a closed range (a single value is lo=hi,
// "*" is the whole range).
type segment struct{ lo, hi int }

func parseOnePattern(p string) (addrMatcher, error) {
	if a, err := netip.ParseAddr(p); err == nil {
		a = a.Unmap()
		return func(ip netip.Addr) bool { return ip == a }, nil
	}
	sep, n, base, maxv := ".", 4, 10, 255
	if strings.Contains(p, ":") {
		sep, n, base, maxv = ":", 8, 16, 0xffff
	}
	parts := strings.Split(p, sep)
	if len(parts) != n {
		return nil, fmt.Errorf("%q: not an address or address pattern", p)
	}
	segs := make([]segment, n)
	for i, part := range parts {
		if part == "*" {
			segs[i] = segment{0, maxv}
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, base, 32)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, base, 32)
		}
		if err1 != nil || err2 != nil || a > b || int(b) > maxv {
			return nil, fmt.Errorf("%q: segment %q: want a number, a-b range or *", p, part)
		}
		segs[i] = segment{int(a), int(b)}
	}
	v6 := n == 8
	return func(ip netip.Addr) bool {
		ip = ip.Unmap()
		if ip.Is6() != v6 {
			return false
		}
		var vals [8]int
		if v6 {
			b := ip.As16()
			for i := range 8 {
				vals[i] = int(b[2*i])<<8 | int(b[2*i+1])
			}
		} else {
			b := ip.As4()
			for i := range 4 {
				vals[i] = int(b[i])
			}
		}
		for i, s := range segs {
			if vals[i] < s.lo || vals[i] > s.hi {
				return false
			}
		}
		return true
	}, nil
}
