package broker

import (
	"testing"

	"github.com/mqd/mqd/protocols/remoting"
)

// The handler benchmarks call the handlers directly (no socket), so they
// measure header decoding, checks, the store and response building.

func BenchmarkSendMessageHandler(b *testing.B) {
	h := startDataBroker(b)
	body := make([]byte, 1024)
	ext := sendExt("BenchSend", 0, propStr("UNIQ_KEY", "C0A8000100002A9F0000000000000001", "TAGS", "TagA", "KEYS", "k1"))
	h.send("BenchSend", 0, "", "create")
	req := remoting.NewRequest(remoting.SendMessage, ext, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if resp := h.b.handleSend(nil, req); resp.Code != remoting.Success {
			b.Fatalf("send: %d %q", resp.Code, resp.Remark)
		}
	}
}

func BenchmarkPullHandler(b *testing.B) {
	h := startDataBroker(b)
	const n = 4096
	body := make([]byte, 1024)
	ext := sendExt("BenchPull", 0, propStr("TAGS", "TagA"))
	req := remoting.NewRequest(remoting.SendMessage, ext, body)
	h.send("BenchPull", 0, "", "create")
	for range n - 1 {
		if resp := h.b.handleSend(nil, req); resp.Code != remoting.Success {
			b.Fatalf("send: %d", resp.Code)
		}
	}
	pexts := make([]map[string]string, n/32)
	for i := range pexts {
		pexts[i] = pullReqExt("CG", "BenchPull", 0, int64(i*32), 32, 4, "TagA", 0)
	}
	var pulled int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		resp := h.b.handlePull(nil, remoting.NewRequest(remoting.PullMessage, pexts[i%len(pexts)], nil))
		if resp.Code != remoting.Success {
			b.Fatalf("pull: %d %q", resp.Code, resp.Remark)
		}
		for _, p := range resp.BodyParts {
			pulled += int64(len(p))
		}
		if resp.OnWritten != nil {
			resp.OnWritten() // what the connection does once the body is sent
		}
	}
	b.ReportMetric(float64(pulled)/float64(b.N), "B/pull")
}
