package remoting

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"syscall"
	"testing"
	"time"
)

// stdHeader is the JSON header as encoding/json would handle it, for comparison.
type stdHeader struct {
	Code      int16             `json:"code"`
	Language  string            `json:"language"`
	Version   int16             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func BenchmarkEncodeJSON(b *testing.B) {
	c := sendHeader()
	b.Run("hand", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = AppendFrame(buf[:0], c); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			h, err := json.Marshal(stdHeader{c.Code, c.Language.String(), c.Version, c.Opaque, c.Flag, c.Remark, c.ExtFields.Map()})
			if err != nil {
				b.Fatal(err)
			}
			buf = binary.BigEndian.AppendUint32(buf[:0], uint32(4+len(h)+len(c.Body)))
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(h)))
			buf = append(append(buf, h...), c.Body...)
		}
		b.SetBytes(int64(len(buf)))
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	frame := mustEncode(b, sendHeader())
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if _, err := Decode(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		hl := binary.BigEndian.Uint32(frame[4:]) & MaxHeaderLen
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			var h stdHeader
			if err := json.Unmarshal(frame[8:8+hl], &h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncodeBinary(b *testing.B) {
	c := sendHeader()
	c.SerializeType = RocketMQ
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendFrame(buf[:0], c); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeBinary(b *testing.B) {
	c := sendHeader()
	c.SerializeType = RocketMQ
	frame := mustEncode(b, c)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerRoundTrip: parallel callers share one client connection to an
// echo server over loopback (SEND_MESSAGE header, 1 KiB body). "flush-each"
// turns write coalescing off on both ends, to show what it saves. Besides
// wall time it reports socket writes per call and process CPU time per call,
// which stay meaningful on a loaded machine.
func BenchmarkServerRoundTrip(b *testing.B) {
	for _, mode := range []string{"coalesced", "flush-each"} {
		b.Run(mode, func(b *testing.B) {
			noMerge := mode == "flush-each"
			serverConn := make(chan *Conn, 1)
			ts := startServer(b, ServerConfig{}, func(s *Server) {
				s.Handle(SendMessage, echo)
				s.OnConnect(func(c *Conn) { c.noMerge = noMerge; serverConn <- c })
			})
			cl := newTestClient(b)
			conn, err := cl.Conn(context.Background(), ts.addr)
			if err != nil {
				b.Fatal(err)
			}
			sc := <-serverConn
			conn.wmu.Lock()
			conn.noMerge = noMerge
			conn.wmu.Unlock()
			flushes := func() uint64 { return conn.flushes.Load() + sc.flushes.Load() }
			req := sendHeader()
			b.SetParallelism(8) // 8 callers per core, as a loaded broker sees
			b.ReportAllocs()
			f0, cpu0 := flushes(), cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					resp, err := cl.Invoke(ctx, ts.addr, req)
					cancel()
					if err != nil || resp.Code != Success {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(flushes()-f0)/float64(b.N), "writes/op")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
