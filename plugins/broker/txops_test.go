package broker

import (
	"slices"
	"testing"

	"github.com/mqd/mqd/storage/message"
)

// TestOpRecordHalfOffsets: op records name one half offset (RocketMQ 4.x and
// mqd) or several joined by "," (RocketMQ 5); other tags and junk parts are
// not taken for offsets.
func TestOpRecordHalfOffsets(t *testing.T) {
	rec := func(tag, body string) []byte {
		m := message.Message{Topic: topicTransOpHalf, Body: []byte(body),
			Properties: message.AppendProperty("", message.PropertyTags, tag)}
		return message.Encode(nil, &m, 0, 0, 0)
	}
	for _, tc := range []struct {
		tag, body string
		want      []int64
	}{
		{opRemoveTag, "42", []int64{42}},
		{opRemoveTag, "1,2,30", []int64{1, 2, 30}},
		{opRemoveTag, "7,,x, 9,-3", []int64{7, 9}},
		{opRemoveTag, "", nil},
		{"other", "5", nil},
	} {
		if got := opRecordHalfOffsets(rec(tc.tag, tc.body)); !slices.Equal(got, tc.want) {
			t.Errorf("tag %q body %q: got %v, want %v", tc.tag, tc.body, got, tc.want)
		}
	}
}
