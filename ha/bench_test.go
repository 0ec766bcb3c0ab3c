package ha_test

import (
	"testing"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/ha/hatest"
)

// The built-in modes with 64 senders of 1 KiB on a real master/slave pair
// (hatest.BenchMode); ha/external benchmarks the plugin mode beside ha.sync.
func BenchmarkAsyncMaster64(b *testing.B) { hatest.BenchMode(b, build(b, ha.AsyncID)) }
func BenchmarkSyncMaster64(b *testing.B)  { hatest.BenchMode(b, build(b, ha.SyncID)) }

// BenchmarkInSyncMaster64 is ha.insync with the pair's slave in the
// SyncStateSet (controller mode's allAckInSyncStateSet).
func BenchmarkInSyncMaster64(b *testing.B) {
	r := build(b, ha.InSyncID)
	r.(ha.SyncStateSetter).SetSyncStateSet([]int64{hatest.SlaveBrokerID})
	hatest.BenchMode(b, r)
}
