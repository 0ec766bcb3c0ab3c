package broker

import (
	"errors"
	"strconv"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
)

// Message queries by key (QueryMessageProcessor): QUERY_MESSAGE (12) looks a
// key up in the store's index and answers the stored records themselves.

// maxQueryBody bounds a QUERY_MESSAGE answer (maxMsgsNumBatch records of up
// to 4 MiB would otherwise allow a 256 MiB reply).
const maxQueryBody = 32 << 20

// handleQueryMessage serves QUERY_MESSAGE: ext topic, key, maxNum,
// beginTimestamp, endTimestamp and _UNIQUE_KEY_QUERY; the reply carries
// indexLastUpdateTimestamp and indexLastUpdatePhyoffset, and the body the
// matching records (newest first), or QUERY_NOT_FOUND.
func (b *Broker) handleQueryMessage(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic := r.str("topic", true)
	key := r.str("key", true)
	maxNum := r.int32("maxNum", true, 0)
	begin := r.int64("beginTimestamp", true, 0)
	end := r.int64("endTimestamp", true, 0)
	uniq := r.bool("_UNIQUE_KEY_QUERY")
	if resp := r.failure(); resp != nil {
		return resp
	}
	res, err := b.store.QueryMessages(topic, key, int(maxNum), begin, end, uniq)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "query message failed: "+err.Error())
	}
	var body []byte
	for _, off := range res.Offsets {
		rec, err := b.store.ReadMessage(off)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted by retention since the lookup
			}
			return remoting.NewResponse(remoting.SystemError, "query message failed: "+err.Error())
		}
		if len(body) > 0 && len(body)+len(rec) > maxQueryBody {
			break
		}
		body = append(body, rec...)
	}
	var resp *remoting.Command
	if len(body) == 0 {
		resp = remoting.NewResponse(remoting.QueryNotFound, "can not find message, maybe time range not correct")
	} else {
		resp = remoting.NewResponse(remoting.Success, "")
		resp.Body = body
	}
	resp.ExtFields = remoting.Fields{
		{Key: "indexLastUpdateTimestamp", Value: strconv.FormatInt(res.IndexLastUpdateTimestamp, 10)},
		{Key: "indexLastUpdatePhyoffset", Value: strconv.FormatInt(res.IndexLastUpdatePhyOffset, 10)},
	}
	return resp
}
