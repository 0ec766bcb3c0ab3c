package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/protocols/remoting"
)

// TestConnectionFloodLeavesHonestClientsServed (RELIABILITY A-class, #16):
// a host opens connections far beyond broker.maxConnectionsPerHost and keeps
// them idle; every one beyond the bound is closed at once, and a client on
// another address keeps sending, its latency reported beside the one before
// the flood.
func TestConnectionFloodLeavesHonestClientsServed(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Broker: []string{"broker.maxConnectionsPerHost=100"}})
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	topic := UniqueName("LIMITS")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 4)
	send := func(n int) []time.Duration {
		var ds []time.Duration
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			began := time.Now()
			resp, err := cli.Invoke(ctx, c.BrokerAddr, remoting.NewRequest(remoting.SendMessage, rawSendExt(topic, "PG_LIMITS", 0, ""), []byte(fmt.Sprint("m", i))))
			cancel()
			if err != nil || resp.Code != remoting.Success {
				t.Fatalf("honest send %d: %v %+v", i, err, resp)
			}
			ds = append(ds, time.Since(began))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds
	}
	before := send(200)

	// The flood comes from 127.0.0.2 (loopback, but another host to the
	// broker), so the honest client on 127.0.0.1 has its own quota.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	var kept []net.Conn
	for range 1000 {
		nc, err := d.Dial("tcp", c.BrokerAddr)
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		kept = append(kept, nc)
	}
	defer func() {
		for _, nc := range kept {
			nc.Close()
		}
	}()
	during := send(200)
	// Read every connection at once with one deadline: a closed one
	// answers EOF (or a reset), a held one times out.
	var open, closed atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Second)
	for _, nc := range kept {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nc.SetReadDeadline(deadline)
			var b [1]byte
			_, err := nc.Read(b[:])
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				open.Add(1)
			case err != nil:
				closed.Add(1)
			}
		}()
	}
	wg.Wait()
	held, refused := int(open.Load()), int(closed.Load())
	if held != 100 || refused != 900 {
		t.Fatalf("flood: %d connections held, %d closed by the broker; want 100 and 900 (maxConnectionsPerHost=100)", held, refused)
	}
	p := func(ds []time.Duration, q float64) time.Duration {
		return ds[int(float64(len(ds)-1)*q)].Round(time.Microsecond)
	}
	t.Logf("honest sends: p50 %v p99 %v before the flood, p50 %v p99 %v with 100 idle flood connections held and 900 refused",
		p(before, 0.5), p(before, 0.99), p(during, 0.5), p(during, 0.99))
}

// TestSlowSendersClosedHonestClientServed (#16, slowloris): connections that
// send the first bytes of a frame and stall are closed after
// serverChannelMaxIdleTimeSeconds, and a client sending meanwhile is served.
func TestSlowSendersClosedHonestClientServed(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Broker: []string{"broker.serverChannelMaxIdleTimeSeconds=1"}})
	cli := remoting.NewClient(remoting.ClientConfig{})
	defer cli.Close()
	topic := UniqueName("SLOW")
	NewAdmin(t, c.NameSrvAddr).CreateTopic(c.BrokerAddr, topic, 4)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	var slow []net.Conn
	for range 200 {
		nc, err := d.Dial("tcp", c.BrokerAddr)
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		defer nc.Close()
		if _, err := nc.Write([]byte{0, 0}); err != nil { // half a length word, then nothing
			t.Fatal(err)
		}
		slow = append(slow, nc)
	}
	began := time.Now()
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Invoke(ctx, c.BrokerAddr, remoting.NewRequest(remoting.SendMessage, rawSendExt(topic, "PG_SLOW", 0, ""), []byte(fmt.Sprint("m", i))))
		cancel()
		if err != nil || resp.Code != remoting.Success {
			t.Fatalf("honest send %d among stalled connections: %v %+v", i, err, resp)
		}
	}
	// Every stalled connection is closed by the broker within a few idle
	// periods (the idle deadline moves at most once per second).
	var closed atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(5 * time.Second)
	for _, nc := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nc.SetReadDeadline(deadline)
			var b [1]byte
			if _, err := nc.Read(b[:]); err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					closed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := closed.Load(); n != int32(len(slow)) {
		t.Fatalf("%d of %d stalled connections closed by the broker within %v", n, len(slow), time.Since(began).Round(time.Millisecond))
	}
}
