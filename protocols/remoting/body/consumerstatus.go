package body

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// GetConsumerStatusBody is Java's GetConsumerStatusBody: a client's answer to
// GET_CONSUMER_STATUS_FROM_CLIENT (221) fills MessageQueueTable (queue ->
// the client's consume offset); the broker's answer to
// INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223) fills ConsumerTable (clientId ->
// that client's table).
type GetConsumerStatusBody struct {
	MessageQueueTable map[MessageQueue]int64
	ConsumerTable     map[string]map[MessageQueue]int64
}

func appendOffsetMap(dst []byte, m map[MessageQueue]int64) []byte {
	return appendMQMap(dst, m, func(b []byte, o int64) []byte { return strconv.AppendInt(b, o, 10) })
}

// AppendFastjson appends the body as Java writes it (members and client ids
// sorted, queue objects as keys).
func (s *GetConsumerStatusBody) AppendFastjson(dst []byte) []byte {
	ids := make([]string, 0, len(s.ConsumerTable))
	for id := range s.ConsumerTable {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	dst = append(dst, `{"consumerTable":{`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, id)
		dst = append(dst, ':')
		dst = appendOffsetMap(dst, s.ConsumerTable[id])
	}
	dst = append(dst, `},"messageQueueTable":`...)
	dst = appendOffsetMap(dst, s.MessageQueueTable)
	return append(dst, '}')
}

// DecodeGetConsumerStatusBody reads either form; a missing member is empty.
func DecodeGetConsumerStatusBody(data []byte) (*GetConsumerStatusBody, error) {
	s := &GetConsumerStatusBody{MessageQueueTable: map[MessageQueue]int64{}, ConsumerTable: map[string]map[MessageQueue]int64{}}
	if raw, err := memberRaw(data, "messageQueueTable"); err == nil {
		if err := decodeOffsetMap(raw, s.MessageQueueTable); err != nil {
			return nil, fmt.Errorf("messageQueueTable: %w", err)
		}
	}
	if raw, err := memberRaw(data, "consumerTable"); err == nil {
		err := eachMember(raw, func(id string, t []byte) error {
			m := map[MessageQueue]int64{}
			if err := decodeOffsetMap(t, m); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			s.ConsumerTable[id] = m
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("consumerTable: %w", err)
		}
	} else if len(s.MessageQueueTable) == 0 {
		if _, err2 := memberRaw(data, "messageQueueTable"); err2 != nil {
			return nil, fmt.Errorf("neither consumerTable nor messageQueueTable: %w", err)
		}
	}
	return s, nil
}

func decodeOffsetMap(raw []byte, into map[MessageQueue]int64) error {
	return DecodeMQMap(raw, func(mq MessageQueue, v json.RawMessage) error {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("offset of %+v: %w", mq, err)
		}
		into[mq] = n
		return nil
	})
}

// eachMember walks an object with string keys whose values may hold
// object-keyed maps (which encoding/json rejects).
func eachMember(data []byte, fn func(key string, raw []byte) error) error {
	p := mqMapParser{s: data}
	p.ws()
	if !p.eat('{') {
		return fmt.Errorf("expected '{' at %d", p.i)
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
		var key string
		if err := json.Unmarshal(data[start:p.i], &key); err != nil {
			return fmt.Errorf("key at %d: %w", start, err)
		}
		p.ws()
		if !p.eat(':') {
			return fmt.Errorf("expected ':' at %d", p.i)
		}
		p.ws()
		vstart := p.i
		if err := p.skipValue(); err != nil {
			return err
		}
		if err := fn(key, data[vstart:p.i]); err != nil {
			return err
		}
		p.ws()
		if p.eat('}') {
			return nil
		}
		if !p.eat(',') {
			return fmt.Errorf("expected ',' or '}' at %d", p.i)
		}
	}
}
