package message

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// TagsHashCode is the consume-queue tags code: Java's String.hashCode of the tags
// (over UTF-16 code units), sign-extended to 64 bits. Empty tags hash to 0.
func TagsHashCode(tags string) int64 { return tagsHash(tags) }

// TagsHashCodeBytes is TagsHashCode over bytes.
func TagsHashCodeBytes(tags []byte) int64 { return tagsHash(tags) }

func tagsHash[T string | []byte](tags T) int64 {
	var h int32
	for i := 0; i < len(tags); {
		c := tags[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		// Non-ASCII tags are rare; a rune is at most 4 bytes.
		var r rune
		var n int
		switch t := any(tags[i:min(i+utf8.UTFMax, len(tags))]).(type) {
		case string:
			r, n = utf8.DecodeRuneInString(t)
		case []byte:
			r, n = utf8.DecodeRune(t)
		}
		i += n
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
		} else {
			h = 31*h + int32(r)
		}
	}
	return int64(h)
}

const hexUpper = "0123456789ABCDEF"

// OffsetMsgID builds the broker's message ID: upper-case hex of the store IP,
// port (int32) and commit-log offset (int64); 32 characters for IPv4, 56 for IPv6.
func OffsetMsgID(host netip.AddrPort, offset int64) string {
	var raw [28]byte
	n := putHost(raw[:], host)
	binary.BigEndian.PutUint64(raw[n:], uint64(offset))
	n += 8
	out := make([]byte, 2*n)
	for i, c := range raw[:n] {
		out[2*i] = hexUpper[c>>4]
		out[2*i+1] = hexUpper[c&0xF]
	}
	return string(out)
}

// ParseOffsetMsgID splits an offset message ID into the store address and the
// commit-log offset.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: length %d, want 32 or 56", ErrBadMessageID, len(id))
	}
	raw, err := hex.DecodeString(strings.ToUpper(id))
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %v", ErrBadMessageID, err)
	}
	ipLen := 4
	if len(raw) == 28 {
		ipLen = 16
	}
	port := int32(binary.BigEndian.Uint32(raw[ipLen:]))
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: port %d out of range", ErrBadMessageID, port)
	}
	addr, _ := netip.AddrFromSlice(raw[:ipLen])
	off := int64(binary.BigEndian.Uint64(raw[ipLen+4:]))
	if off < 0 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: negative offset", ErrBadMessageID)
	}
	return netip.AddrPortFrom(addr, uint16(port)), off, nil
}
