package broker

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// handleUpdateAndCreateTopic serves UPDATE_AND_CREATE_TOPIC (17).
func (b *Broker) handleUpdateAndCreateTopic(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	if topic == b.cfg.BrokerClusterName {
		return remoting.NewResponse(remoting.SystemError, "the topic["+topic+"] is conflict with system reserved words.")
	}
	if err := validateTopic(topic); err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if isSystemTopic(topic) {
		return remoting.NewResponse(remoting.SystemError, "The topic["+topic+"] is conflict with system topic.")
	}
	tc := body.NewTopicConfig(topic, 0, 0, 0)
	var ok bool
	if tc.ReadQueueNums, ok = req.ExtInt32("readQueueNums"); !ok {
		return remoting.NewResponse(remoting.SystemError, "missing or bad readQueueNums")
	}
	if tc.WriteQueueNums, ok = req.ExtInt32("writeQueueNums"); !ok {
		return remoting.NewResponse(remoting.SystemError, "missing or bad writeQueueNums")
	}
	if tc.Perm, ok = req.ExtInt32("perm"); !ok {
		return remoting.NewResponse(remoting.SystemError, "missing or bad perm")
	}
	if f := req.Ext("topicFilterType"); f != "" {
		if f != "SINGLE_TAG" && f != "MULTI_TAG" {
			return remoting.NewResponse(remoting.SystemError, "bad topicFilterType "+f)
		}
		tc.TopicFilterType = f
	}
	if v := req.Ext("topicSysFlag"); v != "" {
		if tc.TopicSysFlag, ok = req.ExtInt32("topicSysFlag"); !ok {
			return remoting.NewResponse(remoting.SystemError, "bad topicSysFlag "+v)
		}
	}
	tc.Order = req.ExtBool("order")
	if err := b.topics.Update(tc); err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	b.log.Info().Str("topic", topic).Int32("read", tc.ReadQueueNums).Int32("write", tc.WriteQueueNums).
		Int32("perm", tc.Perm).Str("from", remoteAddrString(conn)).Msg("topic updated by admin")
	return remoting.NewResponse(remoting.Success, "")
}

// handleDeleteTopic serves DELETE_TOPIC_IN_BROKER (215): the topic config, its
// consume queues and its consumer offsets go.
func (b *Broker) handleDeleteTopic(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	topic := req.Ext("topic")
	if err := validateTopic(topic); err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if isSystemTopic(topic) || topic == b.cfg.BrokerClusterName || topic == b.cfg.BrokerName {
		return remoting.NewResponse(remoting.SystemError, "The topic["+topic+"] is conflict with system topic.")
	}
	b.topics.Delete(topic)
	b.offsets.DeleteTopic(topic)
	if err := b.store.DeleteTopics(topic); err != nil {
		return remoting.NewResponse(remoting.SystemError, "delete topic "+topic+" in store: "+err.Error())
	}
	b.log.Info().Str("topic", topic).Str("from", remoteAddrString(conn)).Msg("topic deleted by admin")
	return remoting.NewResponse(remoting.Success, "")
}

// handleGetAllTopicConfig serves GET_ALL_TOPIC_CONFIG (21).
func (b *Broker) handleGetAllTopicConfig(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	data, err := b.topics.encode(false)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = data
	return resp
}

// handleUpdateSubscriptionGroup serves UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200).
func (b *Broker) handleUpdateSubscriptionGroup(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	c, err := body.DecodeSubscriptionGroupConfig(req.Body)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	if err := b.subGroups.Update(c); err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	return remoting.NewResponse(remoting.Success, "")
}

// handleGetAllSubscriptionGroup serves GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
func (b *Broker) handleGetAllSubscriptionGroup(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	data, err := b.subGroups.encode(false)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, err.Error())
	}
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = data
	return resp
}

// handleDeleteSubscriptionGroup serves DELETE_SUBSCRIPTIONGROUP (207): ext
// groupName and, optionally, removeOffset.
func (b *Broker) handleDeleteSubscriptionGroup(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.Ext("groupName")
	if group == "" {
		return remoting.NewResponse(remoting.SystemError, "missing groupName")
	}
	b.subGroups.Delete(group)
	if req.ExtBool("removeOffset") {
		b.offsets.DeleteGroup(group)
	}
	return remoting.NewResponse(remoting.Success, "")
}

// handleGetAllConsumerOffset serves GET_ALL_CONSUMER_OFFSET (43) in fastjson's
// form (bare queue-id keys), as Java sends it to its slaves and tools.
func (b *Broker) handleGetAllConsumerOffset(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = b.offsets.Table().AppendFastjson(nil, false)
	return resp
}

// handleGetBrokerConfig serves GET_BROKER_CONFIG (26): the broker and store
// settings as a properties text, RocketMQ names, with ext version.
func (b *Broker) handleGetBrokerConfig(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	props := map[string]string{}
	collectProperties(reflect.ValueOf(b.storeCfg), props)
	collectProperties(reflect.ValueOf(*b.conf()), props)
	props["brokerAddr"] = b.addr
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(props[k])
		sb.WriteByte('\n')
	}
	v, _ := body.Marshal(b.topics.configVersion)
	resp := remoting.NewResponse(remoting.Success, "")
	resp.SetExt("version", string(v))
	resp.Body = []byte(sb.String())
	return resp
}

// collectProperties adds the koanf-tagged fields of a config struct (nested
// structs flattened) under their RocketMQ names.
func collectProperties(v reflect.Value, out map[string]string) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		fv := v.Field(i)
		if name == "" || name == "-" {
			if fv.Kind() == reflect.Struct {
				collectProperties(fv, out)
			}
			continue
		}
		switch fv.Kind() {
		case reflect.String:
			out[name] = fv.String()
		case reflect.Bool:
			out[name] = strconv.FormatBool(fv.Bool())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out[name] = strconv.FormatInt(fv.Int(), 10)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			out[name] = strconv.FormatUint(fv.Uint(), 10)
		case reflect.Slice:
			parts := make([]string, fv.Len())
			for j := range parts {
				parts[j] = fmt.Sprint(fv.Index(j).Interface())
			}
			out[name] = strings.Join(parts, ";")
		default:
			out[name] = fmt.Sprint(fv.Interface())
		}
	}
}
