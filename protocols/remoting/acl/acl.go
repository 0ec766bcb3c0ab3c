// Package acl implements RocketMQ 4.x "plain ACL" for remoting servers and
// clients: plain_acl.yml (global and per-account white lists, accounts with
// admin flags and topic / group permissions), the request signature the
// official clients compute (HMAC-SHA1 over the sorted ext-field values and the
// body), the resources each request code needs, and reload of the file when it
// changes. docs/security.md describes the model and where mqd departs from
// RocketMQ.
package acl

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/protocols/remoting"
)

// Ext-field names of the signature, RocketMQ's SessionCredentials.
const (
	AccessKeyField     = "AccessKey"
	SignatureField     = "Signature"
	SecurityTokenField = "SecurityToken"
	// uniqueKeyQueryFlag is left out of the signed content by RocketMQ's
	// broker (and put in by some clients); both forms are accepted.
	uniqueKeyQueryFlag = "_UNIQUE_KEY_QUERY"
)

// DefaultFile is where RocketMQ (and mqd, relative to the working
// directory) looks for the ACL file.
const DefaultFile = "conf/plain_acl.yml"

// reloadInterval is how often the file is checked for changes; RocketMQ's
// watcher polls at 500 ms.
const reloadInterval = 500 * time.Millisecond

// denialLogInterval bounds the log lines of one client's repeated denials.
const denialLogInterval = 10 * time.Minute

// maxDenialKeys bounds the memory of the once-per-client log limiter.
const maxDenialKeys = 4096

// Denied is a refused request: why, in RocketMQ's words where it has them.
type Denied struct{ Reason string }

func (d *Denied) Error() string { return d.Reason }

// Validator checks requests against one plain_acl.yml, reloaded when it
// changes. Its methods are safe for concurrent use.
type Validator struct {
	path string
	role Role
	log  zerolog.Logger

	rules    atomic.Pointer[rules]
	reloadMu sync.Mutex
	content  []byte // last loaded bytes, under reloadMu

	reloads  atomic.Int64
	denials  atomic.Int64
	logMu    sync.Mutex
	loggedAt map[string]time.Time

	stop chan struct{}
	done chan struct{}
}

// Open loads path and returns a validator for role. A missing or invalid file
// is an error: a broker told to enforce ACL must not start open.
func Open(path string, role Role, log zerolog.Logger) (*Validator, error) {
	if path == "" {
		path = DefaultFile
	}
	r, data, err := loadRules(path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	v := &Validator{path: path, role: role, log: log.With().Str("acl", path).Logger(),
		content: data, loggedAt: make(map[string]time.Time)}
	v.rules.Store(r)
	v.warnWhiteLists(r)
	return v, nil
}

// warnWhiteLists says, at every load, which addresses skip the checks:
// RocketMQ's white lists admit a request without its signature (and the
// global one without any check), so they are kept for compatibility but
// never silent.
func (v *Validator) warnWhiteLists(r *rules) {
	if len(r.globalWhite) > 0 {
		v.log.Warn().Strs("globalWhiteRemoteAddresses", r.globalWhiteText).
			Msg("acl: requests from these addresses skip authentication and every permission check")
	}
	for _, a := range r.accounts {
		if a.white != nil {
			v.log.Warn().Str("accessKey", a.accessKey).Str("whiteRemoteAddress", a.whiteText).
				Msg("acl: requests naming this account from these addresses skip the signature and permission checks")
		}
	}
}

// Watch reloads the file whenever its content changes, until Close. An
// invalid new version is logged and the last good one stays in force.
func (v *Validator) Watch() {
	if v.stop != nil {
		return
	}
	v.stop, v.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(v.done)
		t := time.NewTicker(reloadInterval)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
				v.Reload()
			}
		}
	}()
}

// Reload re-reads the file if its content changed; it reports whether new
// rules took effect.
func (v *Validator) Reload() bool {
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	data, err := os.ReadFile(v.path)
	if err != nil {
		v.logOnce("reload:"+err.Error(), func(e *zerolog.Event) {
			e.Err(err).Msg("acl file unreadable; the last loaded rules stay in force")
		})
		return false
	}
	if bytes.Equal(data, v.content) {
		return false
	}
	v.content = data
	r, err := parseRules(data)
	if err != nil {
		v.log.Error().Err(err).Msg("acl file invalid; the last loaded rules stay in force")
		return false
	}
	v.rules.Store(r)
	v.warnWhiteLists(r)
	v.reloads.Add(1)
	v.log.Info().Int("accounts", len(r.accounts)).Int("globalWhiteRemoteAddresses", len(r.globalWhite)).Msg("acl file reloaded")
	return true
}

// Close stops watching.
func (v *Validator) Close() {
	if v.stop != nil {
		close(v.stop)
		<-v.done
		v.stop = nil
	}
}

// Reloads counts rule sets loaded after the first; Denials counts refusals.
func (v *Validator) Reloads() int64 { return v.reloads.Load() }
func (v *Validator) Denials() int64 { return v.denials.Load() }

// Check decides one request from remote. nil admits it.
func (v *Validator) Check(remote net.Addr, req *remoting.Command) error {
	r := v.rules.Load()
	ip := addrIP(remote)
	for _, m := range r.globalWhite {
		if m(ip) {
			return nil
		}
	}
	ak, ok := req.ExtFields.Get(AccessKeyField)
	if !ok {
		return &Denied{Reason: "No accessKey is configured"}
	}
	a := r.accounts[ak]
	if a == nil {
		return &Denied{Reason: fmt.Sprintf("No acl config for %s", ak)}
	}
	if a.white != nil && a.white(ip) {
		return nil
	}
	if !verify(a, req) {
		return &Denied{Reason: fmt.Sprintf("Check signature failed for accessKey=%s", ak)}
	}
	return v.authorize(a, req)
}

func (v *Validator) authorize(a *account, req *remoting.Command) error {
	if !a.admin && ClassOf(req.Code) == Admin {
		return &Denied{Reason: fmt.Sprintf("Need admin permission for request code=%d, but accessKey=%s is not", req.Code, a.accessKey)}
	}
	var n needs
	resourcesOf(v.role, req, &n)
	if n.onlyTracePublish() {
		return nil
	}
	if a.admin && a.topics == nil && a.groups == nil {
		return nil
	}
	var denied *Denied
	n.each(func(res resource) bool {
		owned, def, kind := a.topics, a.defaultTopic, "topic"
		if res.group {
			owned, def, kind = a.groups, a.defaultGroup, "group"
		}
		p, ok := owned[res.name]
		if !ok {
			p = def
		}
		if permits(res.perm, p) {
			return true
		}
		denied = &Denied{Reason: fmt.Sprintf("No permission for %s %s: accessKey=%s needs %s, has %s",
			kind, res.name, a.accessKey, permString(res.perm), permString(p))}
		return false
	})
	if denied != nil {
		return denied
	}
	return nil
}

// Guard returns the remoting server hook: it answers NO_PERMISSION for a
// refused request and logs a client's denial once per reason and interval.
func (v *Validator) Guard() remoting.Guard {
	return func(c *remoting.Conn, req *remoting.Command) *remoting.Command {
		err := v.Check(c.RemoteAddr(), req)
		if err == nil {
			return nil
		}
		v.denials.Add(1)
		host := addrIP(c.RemoteAddr()).String()
		v.logOnce(host+"\x00"+err.Error(), func(e *zerolog.Event) {
			e.Str("remote", host).Int16("code", req.Code).Str("reason", err.Error()).
				Msg("request refused by ACL (logged once per client and reason every 10 minutes)")
		})
		return remoting.NewResponse(remoting.NoPermission, "[ACL] "+err.Error())
	}
}

func (v *Validator) logOnce(key string, f func(*zerolog.Event)) {
	now := time.Now()
	v.logMu.Lock()
	last, seen := v.loggedAt[key]
	if seen && now.Sub(last) < denialLogInterval {
		v.logMu.Unlock()
		return
	}
	if len(v.loggedAt) >= maxDenialKeys {
		clear(v.loggedAt) // a flood of distinct keys: forget, at worst log again
	}
	v.loggedAt[key] = now
	v.logMu.Unlock()
	f(v.log.Warn())
}

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// contentBufs holds the concatenated field values while they are hashed.
var contentBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// signature computes the base64 HMAC-SHA1 of req's sorted ext-field values
// (the Signature field left out, and uniqueKeyQueryFlag too unless
// withUniqueFlag) followed by its body, into dst.
func signature(a *account, req *remoting.Command, withUniqueFlag bool, dst *[28]byte) {
	var fieldBuf [32]remoting.Field
	fields := fieldBuf[:0]
	for _, f := range req.ExtFields {
		if f.Key == SignatureField || (f.Key == uniqueKeyQueryFlag && !withUniqueFlag) {
			continue
		}
		fields = append(fields, f)
	}
	// Stable, so of a key named twice the last copy sorts last: only it
	// counts, as in the client's map (remoting.Fields).
	slices.SortStableFunc(fields, func(a, b remoting.Field) int { return strings.Compare(a.Key, b.Key) })
	bp := contentBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for i, f := range fields {
		if i+1 < len(fields) && fields[i+1].Key == f.Key {
			continue
		}
		buf = append(buf, f.Value...)
	}
	m := a.mac()
	m.Write(buf)
	m.Write(req.Body)
	var sum [20]byte
	m.Sum(sum[:0])
	a.macs.Put(m)
	if cap(buf) <= 64<<10 {
		*bp = buf
		contentBufs.Put(bp)
	}
	base64.StdEncoding.Encode(dst[:], sum[:])
}

func verify(a *account, req *remoting.Command) bool {
	got := req.Ext(SignatureField)
	var want [28]byte
	signature(a, req, false, &want)
	if subtle.ConstantTimeCompare([]byte(got), want[:]) == 1 {
		return true
	}
	if req.ExtFields.Has(uniqueKeyQueryFlag) {
		signature(a, req, true, &want)
		return subtle.ConstantTimeCompare([]byte(got), want[:]) == 1
	}
	return false
}

// Credentials sign the requests of a remoting client, the way RocketMQ's
// clients do with an access key and secret key.
type Credentials struct {
	AccessKey string
	SecretKey string
}

// ErrNoCredentials is returned by Signer for empty credentials.
var ErrNoCredentials = errors.New("acl: accessKey and secretKey are both needed")

// Signer returns the hook a remoting client runs on every request it sends:
// it returns a signed copy, so one request may still go to many servers.
func Signer(c Credentials) (func(*remoting.Command) *remoting.Command, error) {
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, ErrNoCredentials
	}
	a := &account{accessKey: c.AccessKey, secret: []byte(c.SecretKey)}
	return func(req *remoting.Command) *remoting.Command {
		signed := *req
		signed.ExtFields = req.ExtFields.Clone(2)
		signed.ExtFields.Set(AccessKeyField, c.AccessKey)
		var sig [28]byte
		signature(a, &signed, true, &sig)
		signed.ExtFields.Set(SignatureField, string(sig[:]))
		return &signed
	}, nil
}
