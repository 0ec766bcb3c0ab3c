package body

import (
	"fmt"
	"sort"
	"strconv"
)

// ConsumerOffsetTable is consumerOffset.json and the body of
// GET_ALL_CONSUMER_OFFSET (43): "<topic>@<group>" -> queue id -> next offset to
// consume.
type ConsumerOffsetTable struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// AppendFastjson appends the table as fastjson writes it: queue ids as bare
// integer keys ({0:120}), keys sorted; with pretty, indented by tabs as in
// RocketMQ's config files.
func (t *ConsumerOffsetTable) AppendFastjson(dst []byte, pretty bool) []byte {
	nl := func(depth int) {
		if pretty {
			dst = append(dst, '\n')
			for i := 0; i < depth; i++ {
				dst = append(dst, '\t')
			}
		}
	}
	dst = append(dst, '{')
	nl(1)
	dst = append(dst, `"offsetTable":{`...)
	keys := sortedKeys(t.OffsetTable)
	var qids []int32
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		nl(2)
		dst = AppendString(dst, k)
		dst = append(dst, ':', '{')
		m := t.OffsetTable[k]
		qids = qids[:0]
		for q := range m {
			qids = append(qids, q)
		}
		sort.Slice(qids, func(a, b int) bool { return qids[a] < qids[b] })
		for j, q := range qids {
			if j > 0 {
				dst = append(dst, ',')
			}
			nl(3)
			dst = strconv.AppendInt(dst, int64(q), 10)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, m[q], 10)
		}
		if len(qids) > 0 {
			nl(2)
		}
		dst = append(dst, '}')
	}
	if len(keys) > 0 {
		nl(1)
	}
	dst = append(dst, '}')
	nl(0)
	return append(dst, '}')
}

// DecodeConsumerOffsetTable parses the table with bare ({0:120}) or quoted
// ({"0":120}) queue ids. Fields other than offsetTable (5.x adds some) are ignored.
func DecodeConsumerOffsetTable(data []byte) (*ConsumerOffsetTable, error) {
	var raw struct {
		OffsetTable map[string]map[string]int64 `json:"offsetTable"`
	}
	if err := Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("consumer offsets: %w", err)
	}
	t := &ConsumerOffsetTable{OffsetTable: make(map[string]map[int32]int64, len(raw.OffsetTable))}
	for key, qs := range raw.OffsetTable {
		m := make(map[int32]int64, len(qs))
		for q, off := range qs {
			id, err := strconv.ParseInt(q, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("consumer offsets: %s: queue id %q is not an integer", key, q)
			}
			m[int32(id)] = off
		}
		t.OffsetTable[key] = m
	}
	return t, nil
}
