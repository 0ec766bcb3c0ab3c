package body

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Java maps keyed by a MessageQueue (ConsumeStats, TopicStatsTable,
// ResetOffsetBody) are written by fastjson with the queue object itself as the
// key, unquoted and with its fields in alphabetical order:
// {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5}}. Java's tools
// and the Go client's reset-offset parser read exactly that, compact.

// OffsetWrapper is one queue of ConsumeStats.
type OffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	LastTimestamp  int64 `json:"lastTimestamp"` // store time of the last consumed message, 0 if none
}

// ConsumeStats is the body of GET_CONSUME_STATS (208).
type ConsumeStats struct {
	OffsetTable map[MessageQueue]OffsetWrapper
	ConsumeTps  float64
}

// TopicOffset is one queue of TopicStatsTable.
type TopicOffset struct {
	MinOffset           int64 `json:"minOffset"`
	MaxOffset           int64 `json:"maxOffset"`
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
}

// TopicStatsTable is the body of GET_TOPIC_STATS_INFO (202).
type TopicStatsTable struct {
	OffsetTable map[MessageQueue]TopicOffset
}

// ResetOffsetBody is the body of RESET_CONSUMER_CLIENT_OFFSET (220) and of the
// answer to INVOKE_BROKER_TO_RESET_OFFSET (222): queue -> new offset.
type ResetOffsetBody struct {
	OffsetTable map[MessageQueue]int64
}

// GroupList is the body of QUERY_TOPIC_CONSUME_BY_WHO (300).
type GroupList struct {
	GroupList []string `json:"groupList"`
}

// AppendMessageQueueKey appends mq as fastjson writes it (fields sorted).
func AppendMessageQueueKey(dst []byte, mq MessageQueue) []byte {
	dst = append(dst, `{"brokerName":`...)
	dst = AppendString(dst, mq.BrokerName)
	dst = append(dst, `,"queueId":`...)
	dst = strconv.AppendInt(dst, int64(mq.QueueID), 10)
	dst = append(dst, `,"topic":`...)
	dst = AppendString(dst, mq.Topic)
	return append(dst, '}')
}

// SortMessageQueues orders queues by topic, broker name and queue id.
func SortMessageQueues(mqs []MessageQueue) {
	sort.Slice(mqs, func(i, j int) bool {
		a, b := mqs[i], mqs[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
}

func appendMQMap[V any](dst []byte, m map[MessageQueue]V, val func([]byte, V) []byte) []byte {
	mqs := make([]MessageQueue, 0, len(m))
	for mq := range m {
		mqs = append(mqs, mq)
	}
	SortMessageQueues(mqs)
	dst = append(dst, '{')
	for i, mq := range mqs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendMessageQueueKey(dst, mq)
		dst = append(dst, ':')
		dst = val(dst, m[mq])
	}
	return append(dst, '}')
}

// AppendFastjson appends the stats as Java writes them.
func (s *ConsumeStats) AppendFastjson(dst []byte) []byte {
	dst = append(dst, `{"consumeTps":`...)
	dst = appendJavaDouble(dst, s.ConsumeTps)
	dst = append(dst, `,"offsetTable":`...)
	dst = appendMQMap(dst, s.OffsetTable, func(b []byte, w OffsetWrapper) []byte {
		b = append(b, `{"brokerOffset":`...)
		b = strconv.AppendInt(b, w.BrokerOffset, 10)
		b = append(b, `,"consumerOffset":`...)
		b = strconv.AppendInt(b, w.ConsumerOffset, 10)
		b = append(b, `,"lastTimestamp":`...)
		b = strconv.AppendInt(b, w.LastTimestamp, 10)
		return append(b, '}')
	})
	return append(dst, '}')
}

// AppendFastjson appends the table as Java writes it.
func (t *TopicStatsTable) AppendFastjson(dst []byte) []byte {
	dst = append(dst, `{"offsetTable":`...)
	dst = appendMQMap(dst, t.OffsetTable, func(b []byte, o TopicOffset) []byte {
		b = append(b, `{"lastUpdateTimestamp":`...)
		b = strconv.AppendInt(b, o.LastUpdateTimestamp, 10)
		b = append(b, `,"maxOffset":`...)
		b = strconv.AppendInt(b, o.MaxOffset, 10)
		b = append(b, `,"minOffset":`...)
		b = strconv.AppendInt(b, o.MinOffset, 10)
		return append(b, '}')
	})
	return append(dst, '}')
}

// AppendFastjson appends the body as Java writes it, compact (the Go client
// splits it as a string).
func (r *ResetOffsetBody) AppendFastjson(dst []byte) []byte {
	dst = append(dst, `{"offsetTable":`...)
	dst = appendMQMap(dst, r.OffsetTable, func(b []byte, o int64) []byte { return strconv.AppendInt(b, o, 10) })
	return append(dst, '}')
}

// appendJavaDouble writes a double the way fastjson does: always with a
// fraction or an exponent (0.0, 12.5).
func appendJavaDouble(dst []byte, f float64) []byte {
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'e' || c == 'N' || c == 'I' {
			return dst
		}
	}
	return append(dst, '.', '0')
}

// DecodeMQMap decodes a JSON object whose keys are MessageQueue objects (or,
// as some writers do, JSON strings holding one) and hands each value's raw
// JSON to fn.
func DecodeMQMap(data []byte, fn func(mq MessageQueue, raw json.RawMessage) error) error {
	p := mqMapParser{s: data}
	p.ws()
	if !p.eat('{') {
		return fmt.Errorf("queue map: expected '{' at %d", p.i)
	}
	p.ws()
	if p.eat('}') {
		return nil
	}
	for {
		p.ws()
		start := p.i
		if err := p.skipValue(); err != nil {
			return err
		}
		keyRaw := data[start:p.i]
		var mq MessageQueue
		if len(keyRaw) > 0 && keyRaw[0] == '"' {
			var s string
			if err := json.Unmarshal(keyRaw, &s); err != nil {
				return fmt.Errorf("queue map key: %w", err)
			}
			keyRaw = []byte(s)
		}
		if err := Unmarshal(keyRaw, &mq); err != nil {
			return fmt.Errorf("queue map key %s: %w", keyRaw, err)
		}
		p.ws()
		if !p.eat(':') {
			return fmt.Errorf("queue map: expected ':' at %d", p.i)
		}
		p.ws()
		vstart := p.i
		if err := p.skipValue(); err != nil {
			return err
		}
		if err := fn(mq, json.RawMessage(data[vstart:p.i])); err != nil {
			return err
		}
		p.ws()
		if p.eat('}') {
			return nil
		}
		if !p.eat(',') {
			return fmt.Errorf("queue map: expected ',' or '}' at %d", p.i)
		}
	}
}

// DecodeResetOffsetBody reads a ResetOffsetBody in fastjson's form.
func DecodeResetOffsetBody(data []byte) (*ResetOffsetBody, error) {
	table, err := memberRaw(data, "offsetTable")
	if err != nil {
		return nil, err
	}
	r := &ResetOffsetBody{OffsetTable: map[MessageQueue]int64{}}
	err = DecodeMQMap(table, func(mq MessageQueue, raw json.RawMessage) error {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		r.OffsetTable[mq] = n
		return err
	})
	return r, err
}

// DecodeConsumeStats reads a ConsumeStats in fastjson's form.
func DecodeConsumeStats(data []byte) (*ConsumeStats, error) {
	table, err := memberRaw(data, "offsetTable")
	if err != nil {
		return nil, err
	}
	s := &ConsumeStats{OffsetTable: map[MessageQueue]OffsetWrapper{}}
	if tps, err := memberRaw(data, "consumeTps"); err == nil {
		s.ConsumeTps, _ = strconv.ParseFloat(string(tps), 64)
	}
	err = DecodeMQMap(table, func(mq MessageQueue, raw json.RawMessage) error {
		var w OffsetWrapper
		err := json.Unmarshal(raw, &w)
		s.OffsetTable[mq] = w
		return err
	})
	return s, err
}

// DecodeTopicStatsTable reads a TopicStatsTable in fastjson's form.
func DecodeTopicStatsTable(data []byte) (*TopicStatsTable, error) {
	table, err := memberRaw(data, "offsetTable")
	if err != nil {
		return nil, err
	}
	t := &TopicStatsTable{OffsetTable: map[MessageQueue]TopicOffset{}}
	err = DecodeMQMap(table, func(mq MessageQueue, raw json.RawMessage) error {
		var o TopicOffset
		err := json.Unmarshal(raw, &o)
		t.OffsetTable[mq] = o
		return err
	})
	return t, err
}

// memberRaw returns the raw value of a top-level member of a JSON object that
// may hold object keys deeper down.
func memberRaw(data []byte, name string) ([]byte, error) {
	p := mqMapParser{s: data}
	p.ws()
	if !p.eat('{') {
		return nil, fmt.Errorf("expected a JSON object")
	}
	for {
		p.ws()
		if p.eat('}') {
			return nil, fmt.Errorf("member %q not found", name)
		}
		start := p.i
		if err := p.skipValue(); err != nil {
			return nil, err
		}
		key := string(data[start:p.i])
		p.ws()
		if !p.eat(':') {
			return nil, fmt.Errorf("expected ':' at %d", p.i)
		}
		p.ws()
		vstart := p.i
		if err := p.skipValue(); err != nil {
			return nil, err
		}
		if key == strconv.Quote(name) || key == name {
			return data[vstart:p.i], nil
		}
		p.ws()
		p.eat(',')
	}
}

// mqMapParser skips JSON values, object keys of any kind included.
type mqMapParser struct {
	s []byte
	i int
}

func (p *mqMapParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *mqMapParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *mqMapParser) skipValue() error {
	if p.i >= len(p.s) {
		return fmt.Errorf("unexpected end of JSON")
	}
	switch p.s[p.i] {
	case '"':
		for p.i++; p.i < len(p.s); p.i++ {
			switch p.s[p.i] {
			case '\\':
				p.i++
			case '"':
				p.i++
				return nil
			}
		}
		return fmt.Errorf("unterminated string")
	case '{', '[':
		depth := 0
		for ; p.i < len(p.s); p.i++ {
			switch p.s[p.i] {
			case '"':
				if err := p.skipValue(); err != nil {
					return err
				}
				p.i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.i++
					return nil
				}
			}
		}
		return fmt.Errorf("unterminated object")
	}
	for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' && p.s[p.i] != ']' && p.s[p.i] != ':' &&
		p.s[p.i] != ' ' && p.s[p.i] != '\n' && p.s[p.i] != '\t' && p.s[p.i] != '\r' {
		p.i++
	}
	return nil
}
