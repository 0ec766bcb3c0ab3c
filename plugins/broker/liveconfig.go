package broker

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
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

// The broker's part of a reload (SIGHUP, kernel.Reloader): it owns the live
// broker.* keys, store.brokerRole and ha.mode (applied as a swap of the
// replication mode: ASYNC_MASTER <-> SYNC_MASTER, or to and from an installed
// plugin's mode) and the keys of replication plugins (plugin.<name>.*: the
// running plugin re-checks and applies them; a plugin not in use gets them
// when it is next built).

// OwnsKey implements kernel.Reloader.
func (b *Broker) OwnsKey(p string) bool {
	switch {
	case p == "store.brokerRole", p == "ha.mode":
		return true
	case strings.HasPrefix(p, "plugin."):
		return b.ha != nil
	case strings.HasPrefix(p, "broker."):
		return liveKeys[strings.TrimPrefix(p, "broker.")]
	}
	return false
}

// reloadPlan is what a reload changes on the broker.
type reloadPlan struct {
	live        *Config // nil: no live broker key changed
	swapTo      string  // replication mode to swap to, "" for none
	reconfigure bool    // the running mode's plugin keys changed
}

func (b *Broker) planReload(ctx context.Context, next *config.Config, keys []string) (reloadPlan, error) {
	var plan reloadPlan
	live := *b.conf()
	v := reflect.ValueOf(&live).Elem()
	modeChanged, pluginKeys := false, false
	for _, p := range keys {
		switch {
		case p == "store.brokerRole", p == "ha.mode":
			modeChanged = true
		case strings.HasPrefix(p, "plugin."):
			pluginKeys = true
		default:
			if err := setField(v, strings.TrimPrefix(p, "broker."), fmt.Sprint(next.Get(p))); err != nil {
				return plan, err
			}
			plan.live = &live
		}
	}
	h := b.ha
	if modeChanged {
		role := strings.ToUpper(strings.TrimSpace(next.String("store.brokerRole")))
		if (role == storage.RoleSlave) != (h.Role() == storage.RoleSlave) {
			return plan, fmt.Errorf("brokerRole %s -> %s: %w", h.Role(), role, errRoleNotLive)
		}
		if h.Role() != storage.RoleSlave {
			id, err := ha.ModuleForMode(h.modeFor(next))
			if err != nil {
				return plan, err
			}
			if h.slot == nil || id != h.slot.CurrentID() {
				plan.swapTo = string(id)
			}
		}
	}
	if pluginKeys && plan.swapTo == "" && h.slot != nil {
		l := h.slot.Acquire()
		rc, ok := l.Value.(interface {
			Reconfigure(context.Context, *config.Config, bool) error
		})
		var err error
		if ok {
			err = rc.Reconfigure(ctx, next, true)
		}
		l.Release()
		if err != nil {
			return plan, err
		}
		plan.reconfigure = ok
	}
	return plan, nil
}

// CheckReload implements kernel.Reloader: it validates every key and asks a
// running plugin whether it accepts its new keys; nothing is applied.
func (b *Broker) CheckReload(ctx context.Context, next *config.Config, keys []string) error {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	_, err := b.planReload(ctx, next, keys)
	return err
}

// ApplyReload implements kernel.Reloader: the swap first (the one step that
// can still fail, when no slave catches up in time), then the rest.
func (b *Broker) ApplyReload(ctx context.Context, next *config.Config, keys []string) error {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	plan, err := b.planReload(ctx, next, keys)
	if err != nil {
		return err
	}
	if plan.swapTo != "" {
		swapCtx, cancel := context.WithTimeout(ctx, b.ha.opts.CatchUp()+b.ha.syncTimeout+10*time.Second)
		defer cancel()
		id, err := ha.ModuleForMode(plan.swapTo)
		if err != nil {
			return err
		}
		if rep, err := b.swapMode(swapCtx, id, next); err != nil && !rep.Switched { // built from the new keys
			return err
		}
	}
	if plan.reconfigure {
		l := b.ha.slot.Acquire()
		err := l.Value.(interface {
			Reconfigure(context.Context, *config.Config, bool) error
		}).Reconfigure(ctx, next, false)
		l.Release()
		if err != nil {
			return err
		}
	}
	if b.ha != nil {
		b.ha.cfg.Store(next)
	}
	if plan.live != nil {
		b.liveCfg.Store(plan.live)
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
	role, mode := "", ""
	for _, raw := range names {
		name := raw
		if strings.HasPrefix(name, "broker.") {
			name = strings.TrimPrefix(name, "broker.")
		}
		if name == "brokerRole" || name == "store.brokerRole" {
			role = props[raw] // applied below as a swap of the replication mode
			continue
		}
		if name == "ha.mode" {
			mode = props[raw] // likewise; an installed plugin's mode too
			continue
		}
		if !liveKeys[name] {
			return remoting.NewResponse(remoting.SystemError, notLiveRemark(raw))
		}
		if err := setField(v, name, props[raw]); err != nil {
			return remoting.NewResponse(remoting.SystemError, err.Error())
		}
	}
	if role != "" && mode != "" {
		return remoting.NewResponse(remoting.SystemError, "updateBrokerConfig: brokerRole and ha.mode both choose the replication mode; give one")
	}
	// Every other key was validated first, so a refused swap leaves
	// nothing half-applied.
	if role != "" {
		if err := b.updateRole(role); err != nil {
			return remoting.NewResponse(remoting.SystemError, "updateBrokerConfig: brokerRole="+role+": "+err.Error())
		}
	}
	if mode != "" {
		if err := b.updateMode(mode); err != nil {
			return remoting.NewResponse(remoting.SystemError, "updateBrokerConfig: ha.mode="+mode+": "+err.Error())
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
