// Package discoverytest is the conformance suite every discovery mode
// (discovery.Announcer) passes: the built-ins and the module standing for an
// installed discovery plugin.
package discoverytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/protocols/remoting/body"
)

// Registry is the registry a mode announces to, as the suite sees it.
type Registry struct {
	// Announcer is a started mode.
	Announcer discovery.Announcer
	// MasterAddr and MasterHAAddr are what a slave of group "dt-a" must be
	// told once its master (MasterAddr, MasterHAAddr) announced itself.
	MasterAddr, MasterHAAddr string
}

// Factory starts a mode (stopped at cleanup) with its registry.
type Factory func(t *testing.T) Registry

// Registration is a valid registration of group dt-a.
func Registration(t testing.TB, addr, haAddr string, id int64) *discovery.Registration {
	t.Helper()
	rb := body.RegisterBrokerBody{FilterServerList: []string{},
		TopicConfigSerializeWrapper: body.TopicConfigSerializeWrapper{TopicConfigTable: map[string]body.TopicConfig{
			"DT_TOPIC": body.NewTopicConfig("DT_TOPIC", 4, 4, body.PermRead|body.PermWrite)}}}
	data, err := rb.Encode(false)
	if err != nil {
		t.Fatal(err)
	}
	return &discovery.Registration{ClusterName: "DefaultCluster", BrokerName: "dt-a", BrokerAddr: addr, HAServerAddr: haAddr, BrokerID: id, Body: data}
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	t.Run("SlaveLearnsItsMaster", func(t *testing.T) {
		r := f(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.Announcer.Announce(ctx, Registration(t, r.MasterAddr, r.MasterHAAddr, 0)); err != nil {
			t.Fatalf("master announce: %v", err)
		}
		a, err := r.Announcer.Announce(ctx, Registration(t, "127.0.0.1:1", "127.0.0.1:2", 1))
		if err != nil {
			t.Fatalf("slave announce: %v", err)
		}
		if a.MasterAddr != r.MasterAddr || a.MasterHAAddr != r.MasterHAAddr {
			t.Fatalf("slave told master %q/%q, want %q/%q", a.MasterAddr, a.MasterHAAddr, r.MasterAddr, r.MasterHAAddr)
		}
		if err := r.Announcer.Withdraw(ctx, Registration(t, "127.0.0.1:1", "127.0.0.1:2", 1)); err != nil {
			t.Fatalf("withdraw: %v", err)
		}
	})
	t.Run("ConcurrentAnnounces", func(t *testing.T) {
		r := f(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reg := Registration(t, fmt.Sprintf("127.0.0.1:%d", 20000+i), "", int64(i%4))
				if _, err := r.Announcer.Announce(ctx, reg); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}
