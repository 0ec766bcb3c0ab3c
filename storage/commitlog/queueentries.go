package commitlog

import (
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
	"unsafe"
)

// ReadQueueEntries implements storage.Store.
func (s *Store) ReadQueueEntries(topic string, queueID int32, offset int64, limit int, dst []storage.QueueEntry) ([]storage.QueueEntry, int64) {
	cq, _ := s.consumeQueue(topic, queueID, false)
	if cq == nil || limit <= 0 {
		return dst, offset
	}
	offset = min(offset, cq.max.Load())
	offset = max(offset, cq.min.Load())
	for n := 0; n < limit; {
		mf, entries := cq.entries(offset, int64(limit-n)*cqUnit)
		if mf == nil {
			// Past the end, or the file holding offset is gone: go on at the
			// next file if there is one.
			next := (offset*cqUnit/s.cqFileSize + 1) * s.cqFileSize / cqUnit
			if offset >= cq.max.Load() || next >= cq.max.Load() {
				return dst, offset
			}
			offset = next
			continue
		}
		for i := 0; i+cqUnit <= len(entries); i += cqUnit {
			phy, size, tags := getEntry(entries[i:])
			if size != placeholderSize && validEntry(phy, size) {
				dst = append(dst, storage.QueueEntry{Offset: offset, CommitLogOffset: phy, Size: size, TagsCode: tags})
			}
			offset++
			n++
		}
		mf.release()
	}
	return dst, offset
}

// tagsCodeFor is the consume-queue tags code of a record being dispatched
// again (recovery, a slave's replicated records): the broker's delivery time
// where its rule gives one, else the hash of its TAGS.
func (s *Store) tagsCodeFor(topic, props []byte, storeTs int64) int64 {
	if t := s.deliveryTimer.Load(); t != nil {
		if at, ok := (*t)(unsafe.String(unsafe.SliceData(topic), len(topic)), props, storeTs); ok {
			return at
		}
	}
	return message.TagsHashCodeBytes(message.PropertyBytes(props, message.PropertyTags))
}
