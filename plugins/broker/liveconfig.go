package broker

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
)

// Runtime configuration changes (UPDATE_BROKER_CONFIG, mqadmin
// updateBrokerConfig). b.cfg is never written after Provision, since the data
// path reads it without locks; an accepted update publishes a whole new Config
// copy through b.liveCfg, and the readers of the keys marked Live in the key
// table (config.go) read through the accessors below. Only those keys may
// change; everything else is rejected with the reason, and nothing of a
// rejected request is applied. Changes live in memory: unlike RocketMQ, which
// rewrites its broker.properties, mqd does not edit the operator's config file,
// so a restart returns to the file's values (the response remark says so).
// brokerRole is the exception to the field copy: ASYNC_MASTER <-> SYNC_MASTER
// is applied as a swap of the replication mode (Broker.SwapRole), after the
// other keys of the request were validated.

// Reload implements kernel.Reloader (SIGHUP): the broker applies a change of
// store.brokerRole between ASYNC_MASTER and SYNC_MASTER as a swap of the
// replication mode; any other key is refused before anything is applied.
func (b *Broker) Reload(ctx context.Context, next *config.Config, changed []string) error {
	// Validate everything before applying anything: the broker's live keys go
	// into a new copy of the live config, brokerRole into a mode swap.
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	live := *b.conf()
	v := reflect.ValueOf(&live).Elem()
	liveChanged := false
	var role string
	for _, p := range changed {
		switch {
		case p == "store.brokerRole":
			role = next.String(p)
		case strings.HasPrefix(p, "broker.") && liveKeys[strings.TrimPrefix(p, "broker.")]:
			if err := setField(v, strings.TrimPrefix(p, "broker."), fmt.Sprint(next.Get(p))); err != nil {
				return err
			}
			liveChanged = true
		default:
			return fmt.Errorf("%s: a reload does not apply it on a running broker (restart, or updateBrokerConfig if the key is live there)", p)
		}
	}
	if role != "" {
		swapCtx, cancel := context.WithTimeout(ctx, b.ha.opts.CatchUp()+b.ha.syncTimeout+10*time.Second)
		defer cancel()
		if _, err := b.SwapRole(swapCtx, role); err != nil {
			return err
		}
		b.ha.cfg = next
	}
	if liveChanged {
		b.liveCfg.Store(&live)
	}
	return nil
}

// liveKeys are the Config fields a running broker may change, by RocketMQ name.
var liveKeys = map[string]bool{
	"autoCreateTopicEnable":          true,
	"autoCreateSubscriptionGroup":    true,
	"notifyConsumerIdsChangedEnable": true,
	"longPollingEnable":              true,
	"shortPollingTimeMills":          true,
}

// notLiveReasons explain why well-known keys are refused.
var notLiveReasons = map[string]string{
	"brokerPermission":  "change write permission with mqadmin wipeWritePerm / addWritePerm on the name servers",
	"flushDiskType":     "the flush mode is fixed for the life of the store; restart the broker with the new value",
	"listenPort":        "the listener cannot move while clients are connected; restart the broker",
	"brokerName":        "a broker's identity cannot change at runtime",
	"brokerClusterName": "a broker's identity cannot change at runtime",
	"brokerId":          "a broker's identity cannot change at runtime",
	"storePathRootDir":  "data paths cannot change on a running broker",
}

// conf returns the current configuration: the last accepted update, else the
// provisioned one.
func (b *Broker) conf() *Config {
	if c := b.liveCfg.Load(); c != nil {
		return c
	}
	return &b.cfg
}

func (b *Broker) autoCreateTopicEnable() bool       { return b.conf().AutoCreateTopicEnable }
func (b *Broker) autoCreateSubscriptionGroup() bool { return b.conf().AutoCreateSubscriptionGroup }
func (b *Broker) notifyIDsChangedEnable() bool      { return b.conf().NotifyConsumerIdsChangedEnable }
func (b *Broker) longPollingEnable() bool           { return b.conf().LongPollingEnable }
func (b *Broker) shortPollingTimeMills() int64      { return b.conf().ShortPollingTimeMills }

// handleUpdateBrokerConfig serves UPDATE_BROKER_CONFIG (25): the body is a
// properties text of RocketMQ names (or mqd dotted paths).
func (b *Broker) handleUpdateBrokerConfig(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	props, err := parsePropertiesBody(string(req.Body))
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if len(props) == 0 {
		return remoting.NewResponse(remoting.SystemError, "updateBrokerConfig: the body has no key=value line")
	}
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	next := *b.conf()
	v := reflect.ValueOf(&next).Elem()
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	role := ""
	for _, raw := range names {
		name := raw
		if strings.HasPrefix(name, "broker.") {
			name = strings.TrimPrefix(name, "broker.")
		}
		if name == "brokerRole" || name == "store.brokerRole" {
			role = props[raw] // applied below as a swap of the replication mode
			continue
		}
		if !liveKeys[name] {
			return remoting.NewResponse(remoting.SystemError, notLiveRemark(raw))
		}
		if err := setField(v, name, props[raw]); err != nil {
			return remoting.NewResponse(remoting.SystemError, err.Error())
		}
	}
	if role != "" {
		// Every other key was validated first, so a refused swap leaves
		// nothing half-applied.
		if err := b.updateRole(role); err != nil {
			return remoting.NewResponse(remoting.SystemError, "updateBrokerConfig: brokerRole="+role+": "+err.Error())
		}
	}
	b.liveCfg.Store(&next)
	b.log.Info().Str("from", remoteAddrString(conn)).Str("keys", strings.Join(names, ",")).
		Msg("broker config updated at runtime (in memory only; the config file is unchanged)")
	return remoting.NewResponse(remoting.Success, "applied in memory; the config file is unchanged")
}

// notLiveRemark says why a key may not change at runtime.
func notLiveRemark(name string) string {
	if r, ok := notLiveReasons[name]; ok {
		return "updateBrokerConfig: " + name + " cannot change at runtime: " + r
	}
	if path, ok := config.LookupRocketMQ("broker", name); ok {
		return fmt.Sprintf("updateBrokerConfig: %s (%s) cannot change at runtime; runtime-updatable keys: %s", name, path, liveKeyList())
	}
	if config.IsUnimplemented("broker", name) {
		return "updateBrokerConfig: " + name + " is a RocketMQ key mqd does not implement"
	}
	return fmt.Sprintf("updateBrokerConfig: unknown key %q; runtime-updatable keys: %s", name, liveKeyList())
}

func liveKeyList() string {
	ks := make([]string, 0, len(liveKeys))
	for k := range liveKeys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// setField parses value into the Config field whose koanf tag is name.
func setField(v reflect.Value, name, value string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("koanf"), ",")
		if tag != name {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			bv, err := strconv.ParseBool(value)
			if err != nil {
				return fmt.Errorf("updateBrokerConfig: %s=%q: want true or false", name, value)
			}
			f.SetBool(bv)
		case reflect.Int, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || f.OverflowInt(n) || n < 0 {
				return fmt.Errorf("updateBrokerConfig: %s=%q: want a non-negative integer", name, value)
			}
			f.SetInt(n)
		case reflect.String:
			f.SetString(value)
		default:
			return fmt.Errorf("updateBrokerConfig: %s cannot be set from text", name)
		}
		return nil
	}
	return fmt.Errorf("updateBrokerConfig: %s is not a broker setting", name)
}

// parsePropertiesBody parses a java.util.Properties text as MixAll.string2Properties
// receives it (key=value or key: value lines, # and ! comments).
func parsePropertiesBody(text string) (map[string]string, error) {
	out := map[string]string{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("updateBrokerConfig: line %d %q is not key=value", n+1, line)
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(strings.ReplaceAll(line[i+1:], `\:`, ":"))
	}
	return out, nil
}
