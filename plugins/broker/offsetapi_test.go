package broker

import (
	"strconv"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
)

func TestOffsetRequests(t *testing.T) {
	h := startDataBroker(t)
	q := func(code int16, ext map[string]string) *remoting.Command {
		t.Helper()
		resp := h.invoke(code, ext, nil)
		if resp.Code != remoting.Success {
			t.Fatalf("%s: code %d %q", remoting.RequestCodeName(code), resp.Code, resp.Remark)
		}
		return resp
	}
	queue := map[string]string{"topic": "Off", "queueId": "0", "bname": "broker-a"}
	group := map[string]string{"consumerGroup": "CG", "topic": "Off", "queueId": "0", "bname": "broker-a"}

	// Before any message: a never-truncated queue answers 0 to a new group.
	if r := q(remoting.QueryConsumerOffset, group); extInt(t, r, "offset") != 0 {
		t.Fatalf("offset of a new group: %v", r.ExtFields)
	}
	if r := q(remoting.GetMaxOffset, queue); extInt(t, r, "offset") != 0 {
		t.Fatalf("max offset of an empty queue: %v", r.ExtFields)
	}
	if r := q(remoting.GetEarliestMsgStoretime, queue); extInt(t, r, "timestamp") != -1 {
		t.Fatalf("earliest store time of an empty queue: %v", r.ExtFields)
	}

	before := time.Now().UnixMilli()
	for i := range 3 {
		h.send("Off", 0, "", "m"+strconv.Itoa(i))
	}
	if r := q(remoting.GetMaxOffset, queue); extInt(t, r, "offset") != 3 {
		t.Fatalf("max offset: %v", r.ExtFields)
	}
	if r := q(remoting.GetMinOffset, queue); extInt(t, r, "offset") != 0 {
		t.Fatalf("min offset: %v", r.ExtFields)
	}
	if r := q(remoting.GetEarliestMsgStoretime, queue); extInt(t, r, "timestamp") < before {
		t.Fatalf("earliest store time: %v (sent after %d)", r.ExtFields, before)
	}
	ts := withExt(queue, "timestamp", strconv.FormatInt(before-60_000, 10))
	if r := q(remoting.SearchOffsetByTimestamp, ts); extInt(t, r, "offset") != 0 {
		t.Fatalf("offset a minute before the first message: %v", r.ExtFields)
	}
	ts = withExt(queue, "timestamp", strconv.FormatInt(time.Now().UnixMilli()+60_000, 10))
	if r := q(remoting.SearchOffsetByTimestamp, ts); extInt(t, r, "offset") < 2 {
		t.Fatalf("offset a minute after the last message: %v", r.ExtFields)
	}

	q(remoting.UpdateConsumerOffset, withExt(group, "commitOffset", "2"))
	if r := q(remoting.QueryConsumerOffset, group); extInt(t, r, "offset") != 2 {
		t.Fatalf("committed offset: %v", r.ExtFields)
	}

	// Malformed headers are refused, naming the field.
	if r := h.invoke(remoting.GetMaxOffset, map[string]string{"topic": "Off"}, nil); r.Code != remoting.SystemError {
		t.Fatalf("GET_MAX_OFFSET without queueId: %d", r.Code)
	}
	if r := h.invoke(remoting.UpdateConsumerOffset, withExt(group, "commitOffset", "x"), nil); r.Code != remoting.SystemError {
		t.Fatalf("UPDATE_CONSUMER_OFFSET with a bad offset: %d", r.Code)
	}
}
