package body

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TopicConfigSerializeWrapper is a broker's topic table with its version
// (topics.json, and the core of a registration).
type TopicConfigSerializeWrapper struct {
	DataVersion      DataVersion            `json:"dataVersion"`
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
}

// RegisterBrokerBody is the body of REGISTER_BROKER.
type RegisterBrokerBody struct {
	FilterServerList            []string                    `json:"filterServerList"`
	TopicConfigSerializeWrapper TopicConfigSerializeWrapper `json:"topicConfigSerializeWrapper"`
}

// Limits of the compressed form, so a hostile body cannot make the decoder
// allocate without bound.
const (
	maxCompressedItem  = 1 << 20   // one length-prefixed item (data version, topic config, filter list)
	maxCompressedTotal = 256 << 20 // inflated size of a whole body
	maxCompressedCount = 1 << 22   // topic configs in one body
)

// Encode returns the body as fastjson-style JSON, or with compress (header
// compressed=true) in Java's deflated form: zlib over big-endian int32
// length-prefixed items — the data version JSON, the topic count, each topic
// config as "name read write perm filterType", and the filter server list JSON.
// The compressed form drops topicSysFlag and order, as Java's does.
func (b *RegisterBrokerBody) Encode(compress bool) ([]byte, error) {
	c := *b
	if c.FilterServerList == nil {
		c.FilterServerList = []string{}
	}
	if c.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		c.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
	}
	if !compress {
		return Marshal(&c)
	}
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return nil, err
	}
	var lenBuf [4]byte
	writeItem := func(p []byte) {
		binary.BigEndian.PutUint32(lenBuf[:], uint32(len(p)))
		zw.Write(lenBuf[:]) // bytes.Buffer writes cannot fail; Close reports the rest
		zw.Write(p)
	}
	dv, err := Marshal(&c.TopicConfigSerializeWrapper.DataVersion)
	if err != nil {
		return nil, err
	}
	writeItem(dv)
	binary.BigEndian.PutUint32(lenBuf[:], uint32(len(c.TopicConfigSerializeWrapper.TopicConfigTable)))
	zw.Write(lenBuf[:])
	for _, name := range sortedKeys(c.TopicConfigSerializeWrapper.TopicConfigTable) {
		tc := c.TopicConfigSerializeWrapper.TopicConfigTable[name]
		writeItem([]byte(tc.encodeText()))
	}
	fl, err := Marshal(c.FilterServerList)
	if err != nil {
		return nil, err
	}
	writeItem(fl)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeRegisterBrokerBody parses a registration body, JSON (either key style,
// and the bare TopicConfigSerializeWrapper that brokers before V3_0_11 sent) or,
// with compressed, Java's deflated form.
func DecodeRegisterBrokerBody(data []byte, compressed bool) (*RegisterBrokerBody, error) {
	if compressed {
		return decodeCompressedRegister(data)
	}
	// Decode into a superset so an old-style bare wrapper is recognised.
	var v struct {
		RegisterBrokerBody
		DataVersion      *DataVersion           `json:"dataVersion"`
		TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	}
	if err := Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("register body: %w", err)
	}
	b := v.RegisterBrokerBody
	if v.TopicConfigTable != nil && b.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		b.TopicConfigSerializeWrapper.TopicConfigTable = v.TopicConfigTable
		if v.DataVersion != nil {
			b.TopicConfigSerializeWrapper.DataVersion = *v.DataVersion
		}
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return &b, nil
}

// check rejects topic configs that would corrupt a route table.
func (b *RegisterBrokerBody) check() error {
	for name, tc := range b.TopicConfigSerializeWrapper.TopicConfigTable {
		if name == "" {
			return errors.New("register body: topic config with an empty name")
		}
		if tc.TopicName != "" && tc.TopicName != name {
			return fmt.Errorf("register body: topic config %q filed under %q", tc.TopicName, name)
		}
		if tc.ReadQueueNums < 0 || tc.WriteQueueNums < 0 {
			return fmt.Errorf("register body: topic %q has negative queue counts", name)
		}
	}
	return nil
}

func decodeCompressedRegister(data []byte) (*RegisterBrokerBody, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("compressed register body: %w", err)
	}
	defer zr.Close()
	r := io.LimitReader(zr, maxCompressedTotal)
	var lenBuf [4]byte
	readInt := func() (int, error) {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return 0, err
		}
		return int(int32(binary.BigEndian.Uint32(lenBuf[:]))), nil
	}
	readItem := func(what string) ([]byte, error) {
		n, err := readInt()
		if err != nil {
			return nil, fmt.Errorf("%s length: %w", what, err)
		}
		if n < 0 || n > maxCompressedItem {
			return nil, fmt.Errorf("%s length %d out of range", what, n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return p, nil
	}
	fail := func(err error) (*RegisterBrokerBody, error) {
		return nil, fmt.Errorf("compressed register body: %w", err)
	}
	b := new(RegisterBrokerBody)
	p, err := readItem("data version")
	if err != nil {
		return fail(err)
	}
	if err := Unmarshal(p, &b.TopicConfigSerializeWrapper.DataVersion); err != nil {
		return fail(fmt.Errorf("data version: %w", err))
	}
	n, err := readInt()
	if err != nil {
		return fail(fmt.Errorf("topic count: %w", err))
	}
	if n < 0 || n > maxCompressedCount {
		return fail(fmt.Errorf("topic count %d out of range", n))
	}
	b.TopicConfigSerializeWrapper.TopicConfigTable = make(map[string]TopicConfig, min(n, 1024))
	for i := 0; i < n; i++ {
		p, err := readItem("topic config")
		if err != nil {
			return fail(err)
		}
		tc, err := decodeTopicConfigText(string(p))
		if err != nil {
			return fail(err)
		}
		b.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	if p, err = readItem("filter server list"); err != nil {
		return fail(err)
	}
	if err := Unmarshal(p, &b.FilterServerList); err != nil {
		return fail(fmt.Errorf("filter server list: %w", err))
	}
	return b, nil
}
