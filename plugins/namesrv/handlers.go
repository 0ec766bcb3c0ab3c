package namesrv

import (
	"errors"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// versionV4_9_4 is the MQVersion ordinal from which Java sends routes as
// standard JSON (quoted broker-id keys). The Go client reports V4_5_2 (317) and
// gets fastjson's bare keys, which its hand parser reads as well as quoted ones.
const versionV4_9_4 = 405

func (n *Namesrv) registerHandlers(s *remoting.Server) {
	s.Handle(remoting.PutKVConfig, n.putKVConfig)
	s.Handle(remoting.GetKVConfig, n.getKVConfig)
	s.Handle(remoting.DeleteKVConfig, n.deleteKVConfig)
	s.Handle(remoting.GetKVListByNamespace, n.getKVListByNamespace)
	s.Handle(remoting.RegisterBroker, n.registerBroker)
	s.Handle(remoting.UnregisterBroker, n.unregisterBroker)
	s.Handle(remoting.QueryDataVersion, n.queryDataVersion)
	s.Handle(remoting.GetRouteInfoByTopic, n.getRouteInfoByTopic)
	s.Handle(remoting.GetBrokerClusterInfo, n.getBrokerClusterInfo)
	s.Handle(remoting.WipeWritePermOfBroker, n.wipeWritePerm)
	s.Handle(remoting.AddWritePermOfBroker, n.addWritePerm)
	s.Handle(remoting.GetAllTopicListFromNameServer, n.getAllTopicList)
	s.Handle(remoting.DeleteTopicInNamesrv, n.deleteTopic)
	s.Handle(remoting.GetTopicsByCluster, n.getTopicsByCluster)
	s.Handle(remoting.GetSystemTopicListFromNS, n.getSystemTopicList)
	s.Handle(remoting.GetUnitTopicList, n.topicsBySysFlag(func(f int32) bool { return f&body.TopicSysFlagUnit != 0 }))
	s.Handle(remoting.GetHasUnitSubTopicList, n.topicsBySysFlag(func(f int32) bool { return f&body.TopicSysFlagUnitSub != 0 }))
	s.Handle(remoting.GetHasUnitSubUnunitTopicList, n.topicsBySysFlag(func(f int32) bool {
		return f&body.TopicSysFlagUnit == 0 && f&body.TopicSysFlagUnitSub != 0
	}))
	s.Handle(remoting.GetNamesrvConfig, n.getNamesrvConfig)
	s.Handle(remoting.UpdateNamesrvConfig, n.updateNamesrvConfig)
}

func success() *remoting.Command { return remoting.NewResponse(remoting.Success, "") }

func systemError(remark string) *remoting.Command {
	return remoting.NewResponse(remoting.SystemError, remark)
}

// requireExt returns the named ext fields, or a SYSTEM_ERROR response naming the
// first one missing (Java's @CFNotNull header check).
func requireExt(req *remoting.Command, names ...string) ([]string, *remoting.Command) {
	vals := make([]string, len(names))
	for i, name := range names {
		v, ok := req.ExtFields.Get(name)
		if !ok || v == "" {
			return nil, systemError("the request header field " + name + " is missing")
		}
		vals[i] = v
	}
	return vals, nil
}

func (n *Namesrv) putKVConfig(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "namespace", "key")
	if bad != nil {
		return bad
	}
	value, ok := req.ExtFields.Get("value")
	if !ok {
		return systemError("the request header field value is missing")
	}
	if err := n.kv.Put(v[0], v[1], value); err != nil {
		n.log.Error().Err(err).Str("namespace", v[0]).Str("key", v[1]).Msg("kv config not saved")
		return systemError(err.Error())
	}
	n.log.Info().Str("namespace", v[0]).Str("key", v[1]).Str("value", value).Msg("kv config put")
	return success()
}

func (n *Namesrv) getKVConfig(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "namespace", "key")
	if bad != nil {
		return bad
	}
	value, ok := n.kv.Get(v[0], v[1])
	if !ok {
		return remoting.NewResponse(remoting.QueryNotFound, "No config item, Namespace: "+v[0]+" Key: "+v[1])
	}
	resp := success()
	resp.SetExt("value", value)
	return resp
}

func (n *Namesrv) deleteKVConfig(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "namespace", "key")
	if bad != nil {
		return bad
	}
	deleted, err := n.kv.Delete(v[0], v[1])
	if err != nil {
		n.log.Error().Err(err).Str("namespace", v[0]).Str("key", v[1]).Msg("kv config delete not saved")
		return systemError(err.Error())
	}
	if deleted {
		n.log.Info().Str("namespace", v[0]).Str("key", v[1]).Msg("kv config deleted")
	}
	return success()
}

func (n *Namesrv) getKVListByNamespace(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "namespace")
	if bad != nil {
		return bad
	}
	table, ok := n.kv.Namespace(v[0])
	if !ok {
		return remoting.NewResponse(remoting.QueryNotFound, "No config item, Namespace: "+v[0])
	}
	return jsonResponse(&body.KVTable{Table: table})
}

func jsonResponse(v any) *remoting.Command {
	b, err := body.Marshal(v)
	if err != nil {
		return systemError(err.Error())
	}
	resp := success()
	resp.Body = b
	return resp
}

func (n *Namesrv) registerBroker(conn *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "brokerName", "brokerAddr", "clusterName", "brokerId")
	if bad != nil {
		return bad
	}
	brokerID, ok := req.ExtInt64("brokerId")
	if !ok || brokerID < 0 {
		return systemError("bad brokerId " + req.Ext("brokerId"))
	}
	if c, ok := req.ExtInt32("bodyCrc32"); ok && c != 0 {
		if got := int32(crc32.ChecksumIEEE(req.Body) & 0x7FFFFFFF); got != c {
			n.log.Warn().Str("brokerAddr", v[1]).Int32("bodyCrc32", c).Int32("computed", got).Msg("register body crc32 mismatch")
			return systemError("crc32 not match")
		}
	}
	reg := Registration{
		BrokerName:   v[0],
		BrokerAddr:   v[1],
		Cluster:      v[2],
		BrokerID:     brokerID,
		HAServerAddr: req.Ext("haServerAddr"),
	}
	if conn != nil {
		reg.Channel = conn
	}
	if len(req.Body) > 0 {
		rb, err := body.DecodeRegisterBrokerBody(req.Body, req.ExtBool("compressed"))
		if err != nil {
			n.log.Warn().Err(err).Str("brokerAddr", v[1]).Msg("bad register body")
			return systemError(err.Error())
		}
		reg.Topics = rb.TopicConfigSerializeWrapper
		reg.FilterServers = rb.FilterServerList
	}
	res := n.routes.Register(reg, time.Now())
	if conn != nil {
		// The connection may have closed, and its close hook run, while this
		// request was in flight; do not leave the broker live for the whole
		// expiry time.
		select {
		case <-conn.Done():
			n.onClose(conn)
			return nil
		default:
		}
	}
	if res.New {
		n.log.Info().Str("cluster", reg.Cluster).Str("brokerName", reg.BrokerName).Int64("brokerId", brokerID).
			Str("brokerAddr", reg.BrokerAddr).Str("haServerAddr", reg.HAServerAddr).
			Int("topics", len(reg.Topics.TopicConfigTable)).Msg("broker registered")
	}
	resp := success()
	if res.HAServerAddr != "" {
		resp.SetExt("haServerAddr", res.HAServerAddr)
	}
	if res.MasterAddr != "" {
		resp.SetExt("masterAddr", res.MasterAddr)
	}
	// The broker marks exactly the topics of this namespace as ordered; no body
	// (namespace never created) leaves its flags alone.
	if table, ok := n.kv.Namespace(OrderTopicConfigNamespace); ok {
		b, err := body.Marshal(&body.KVTable{Table: table})
		if err != nil {
			return systemError(err.Error())
		}
		resp.Body = b
	}
	return resp
}

func (n *Namesrv) unregisterBroker(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "brokerName", "brokerAddr", "clusterName", "brokerId")
	if bad != nil {
		return bad
	}
	brokerID, ok := req.ExtInt64("brokerId")
	if !ok {
		return systemError("bad brokerId " + req.Ext("brokerId"))
	}
	if n.routes.Unregister(v[2], v[0], v[1], brokerID) {
		n.log.Info().Str("cluster", v[2]).Str("brokerName", v[0]).Int64("brokerId", brokerID).
			Str("brokerAddr", v[1]).Msg("broker unregistered")
	}
	return success()
}

func (n *Namesrv) queryDataVersion(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "brokerAddr")
	if bad != nil {
		return bad
	}
	var dv body.DataVersion
	if len(req.Body) == 0 {
		return systemError("QUERY_DATA_VERSION needs the broker's DataVersion as its body")
	}
	if err := body.Unmarshal(req.Body, &dv); err != nil {
		return systemError("bad DataVersion body: " + err.Error())
	}
	changed, stored := n.routes.QueryDataVersion(v[0], dv, time.Now())
	resp := success()
	if changed {
		resp.SetExt("changed", "true")
	} else {
		resp.SetExt("changed", "false")
	}
	if stored != nil {
		b, err := body.Marshal(stored)
		if err != nil {
			return systemError(err.Error())
		}
		resp.Body = b
	}
	return resp
}

func (n *Namesrv) getRouteInfoByTopic(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "topic")
	if bad != nil {
		return bad
	}
	topic := v[0]
	var orderConf string
	if n.settings.orderMessageEnable() {
		orderConf, _ = n.kv.Get(OrderTopicConfigNamespace, topic)
	}
	keys := body.FastjsonKeys
	if req.Version >= versionV4_9_4 || req.ExtBool("acceptStandardJsonOnly") {
		keys = body.StandardKeys
	}
	b, ok := n.routes.AppendRoute(make([]byte, 0, 512), topic, orderConf, keys)
	if !ok {
		return remoting.NewResponse(remoting.TopicNotExist,
			"No topic route info in name server for the topic: "+topic+"\nSee http://rocketmq.apache.org/docs/faq/ for further details.")
	}
	resp := success()
	resp.Body = b
	return resp
}

// getBrokerClusterInfo answers with fastjson's bare broker-id keys, as Java
// does, except to clients from V4_9_4 on, which get standard JSON as they do for
// routes (Java's tools parse either; standard parsers only the latter).
func (n *Namesrv) getBrokerClusterInfo(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	keys := body.FastjsonKeys
	if req.Version >= versionV4_9_4 {
		keys = body.StandardKeys
	}
	resp := success()
	resp.Body = n.routes.ClusterInfo().AppendJSON(nil, keys)
	return resp
}

func (n *Namesrv) wipeWritePerm(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "brokerName")
	if bad != nil {
		return bad
	}
	count := n.routes.WipeWritePerm(v[0])
	n.log.Info().Str("brokerName", v[0]).Int("topics", count).Msg("write permission of broker wiped")
	resp := success()
	resp.SetExt("wipeTopicCount", itoa(count))
	return resp
}

func (n *Namesrv) addWritePerm(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "brokerName")
	if bad != nil {
		return bad
	}
	count := n.routes.AddWritePerm(v[0])
	n.log.Info().Str("brokerName", v[0]).Int("topics", count).Msg("write permission of broker added")
	resp := success()
	resp.SetExt("addTopicCount", itoa(count))
	return resp
}

func (n *Namesrv) getAllTopicList(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	return jsonResponse(&body.TopicList{TopicList: n.routes.Topics()})
}

func (n *Namesrv) deleteTopic(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "topic")
	if bad != nil {
		return bad
	}
	cluster := req.Ext("clusterName")
	if n.routes.DeleteTopic(v[0], cluster) {
		n.log.Info().Str("topic", v[0]).Str("cluster", cluster).Msg("topic route deleted")
	}
	return success()
}

func (n *Namesrv) getTopicsByCluster(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	v, bad := requireExt(req, "cluster")
	if bad != nil {
		return bad
	}
	return jsonResponse(&body.TopicList{TopicList: n.routes.TopicsByCluster(v[0])})
}

func (n *Namesrv) getSystemTopicList(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	topics, addr := n.routes.SystemTopics()
	return jsonResponse(&body.TopicList{TopicList: topics, BrokerAddr: addr})
}

func (n *Namesrv) topicsBySysFlag(match func(int32) bool) remoting.Handler {
	return func(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
		return jsonResponse(&body.TopicList{TopicList: n.routes.TopicsBySysFlag(match)})
	}
}

func (n *Namesrv) getNamesrvConfig(_ *remoting.Conn, _ *remoting.Command) *remoting.Command {
	resp := success()
	resp.Body = n.settings.propertiesText()
	return resp
}

func (n *Namesrv) updateNamesrvConfig(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	applied, err := n.settings.update(req.Body)
	if err != nil {
		var rej *updateRejected
		if errors.As(err, &rej) {
			return remoting.NewResponse(remoting.NoPermission, rej.msg)
		}
		return systemError(err.Error())
	}
	n.log.Info().Strs("keys", applied).Msg("name server config updated")
	// Java also writes configStorePath; mqd keeps runtime updates in memory, and
	// says so rather than pretend they survive a restart.
	return remoting.NewResponse(remoting.Success, "updated "+strings.Join(applied, ", ")+
		" in memory; set them in the configuration file to keep them across restarts")
}

func itoa(n int) string { return strconv.Itoa(n) }
