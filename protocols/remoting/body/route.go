package body

import (
	"sort"
	"strconv"
)

// MasterID is the broker id of a master; slaves have ids > 0.
const MasterID int64 = 0

// QueueData is one broker group's queues of a topic in a route.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	Perm           int32  `json:"perm"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
	WriteQueueNums int32  `json:"writeQueueNums"`
}

// AppendJSON appends q as fastjson writes it.
func (q *QueueData) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	dst = appendStringField(dst, "brokerName", q.BrokerName, true)
	dst = appendIntField(dst, "perm", int64(q.Perm), false)
	dst = appendIntField(dst, "readQueueNums", int64(q.ReadQueueNums), false)
	dst = appendIntField(dst, "topicSysFlag", int64(q.TopicSysFlag), false)
	dst = appendIntField(dst, "writeQueueNums", int64(q.WriteQueueNums), false)
	return append(dst, '}')
}

// BrokerData is a broker group: its name, cluster and the address of each member
// by broker id (0 = master).
type BrokerData struct {
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
	BrokerName  string           `json:"brokerName"`
	Cluster     string           `json:"cluster"`
}

// MasterAddr returns the address of broker id 0, or "".
func (b *BrokerData) MasterAddr() string { return b.BrokerAddrs[MasterID] }

// AppendJSON appends b compactly, broker ids ascending. brokerAddrs is always
// present ({} when empty): the Go client slices it by hand and panics without it.
func (b *BrokerData) AppendJSON(dst []byte, keys KeyStyle) []byte {
	dst = append(dst, `{"brokerAddrs":{`...)
	var idsBuf [8]int64
	ids := idsBuf[:0]
	for id := range b.BrokerAddrs {
		ids = append(ids, id)
	}
	// Insertion sort: a group has a handful of members, and sort.Slice allocates.
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		if keys == StandardKeys {
			dst = append(dst, '"')
		}
		dst = strconv.AppendInt(dst, id, 10)
		if keys == StandardKeys {
			dst = append(dst, '"')
		}
		dst = append(dst, ':')
		dst = AppendString(dst, b.BrokerAddrs[id])
	}
	dst = append(dst, '}')
	dst = appendStringField(dst, "brokerName", b.BrokerName, false)
	dst = appendStringField(dst, "cluster", b.Cluster, false)
	return append(dst, '}')
}

// Clone returns a deep copy.
func (b *BrokerData) Clone() BrokerData {
	c := BrokerData{BrokerName: b.BrokerName, Cluster: b.Cluster, BrokerAddrs: make(map[int64]string, len(b.BrokerAddrs))}
	for id, addr := range b.BrokerAddrs {
		c.BrokerAddrs[id] = addr
	}
	return c
}

// TopicRouteData is the body of GET_ROUTEINFO_BY_TOPIC.
type TopicRouteData struct {
	BrokerDatas []BrokerData `json:"brokerDatas"`
	// FilterServerTable maps a broker address to its (legacy) filter servers.
	FilterServerTable map[string][]string `json:"filterServerTable"`
	// OrderTopicConf is "brokerName:queueCount;..." for ordered topics; empty
	// (omitted) otherwise.
	OrderTopicConf string      `json:"orderTopicConf,omitempty"`
	QueueDatas     []QueueData `json:"queueDatas"`
}

// AppendJSON appends r as compact JSON in fastjson's field order. The Go client
// parses brokerAddrs by splitting text, so there is no whitespace anywhere.
func (r *TopicRouteData) AppendJSON(dst []byte, keys KeyStyle) []byte {
	dst = append(dst, `{"brokerDatas":[`...)
	for i := range r.BrokerDatas {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.BrokerDatas[i].AppendJSON(dst, keys)
	}
	dst = append(dst, `],"filterServerTable":`...)
	dst = appendStringListMap(dst, r.FilterServerTable)
	if r.OrderTopicConf != "" {
		dst = appendStringField(dst, "orderTopicConf", r.OrderTopicConf, false)
	}
	dst = append(dst, `,"queueDatas":[`...)
	for i := range r.QueueDatas {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.QueueDatas[i].AppendJSON(dst)
	}
	return append(dst, ']', '}')
}

// DecodeTopicRouteData parses a route in either key style.
func DecodeTopicRouteData(data []byte) (*TopicRouteData, error) {
	r := new(TopicRouteData)
	if err := Unmarshal(data, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ClusterInfo is the body of GET_BROKER_CLUSTER_INFO.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// AppendJSON appends c compactly with sorted keys. Java writes brokerAddrs with
// bare keys here for every client.
func (c *ClusterInfo) AppendJSON(dst []byte, keys KeyStyle) []byte {
	dst = append(dst, `{"brokerAddrTable":{`...)
	for i, name := range sortedKeys(c.BrokerAddrTable) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, name)
		dst = append(dst, ':')
		bd := c.BrokerAddrTable[name]
		dst = bd.AppendJSON(dst, keys)
	}
	dst = append(dst, `},"clusterAddrTable":`...)
	dst = appendStringListMap(dst, c.ClusterAddrTable)
	return append(dst, '}')
}

// DecodeClusterInfo parses cluster info in either key style.
func DecodeClusterInfo(data []byte) (*ClusterInfo, error) {
	c := new(ClusterInfo)
	if err := Unmarshal(data, c); err != nil {
		return nil, err
	}
	return c, nil
}

func appendStringListMap(dst []byte, m map[string][]string) []byte {
	dst = append(dst, '{')
	if len(m) > 0 {
		for i, k := range sortedKeys(m) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':', '[')
			for j, v := range m[k] {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = AppendString(dst, v)
			}
			dst = append(dst, ']')
		}
	}
	return append(dst, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
