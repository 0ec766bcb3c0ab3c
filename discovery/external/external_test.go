package external_test

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/discovery"
	"github.com/mqd/mqd/discovery/discoverytest"
	_ "github.com/mqd/mqd/discovery/external"
	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/kernel/pluginhost"
	"github.com/mqd/mqd/kernel/pluginhost/plugintest"
)

// TestConformance runs the suite against discovery.static served out of
// process (plugins/staticdiscovery, installed as discovery.extstatic).
func TestConformance(t *testing.T) {
	dir := t.TempDir()
	src := plugintest.Build(t, "./plugins/staticdiscovery", t.TempDir())
	if _, err := pluginhost.Install(dir, src); err != nil {
		t.Fatal(err)
	}
	if _, err := pluginhost.RegisterInstalled(dir); err != nil {
		t.Fatal(err)
	}
	discoverytest.Run(t, func(t *testing.T) discoverytest.Registry {
		noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
		cfg, err := config.Load(config.LoadOptions{Env: []string{}, ProfileSource: noProfile,
			Sets: []string{"plugin.extstatic.masterAddr=127.0.0.1:10911", "plugin.extstatic.masterHaAddr=127.0.0.1:10912"}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := kernel.Build(context.Background(), cfg, zerolog.Nop(), "discovery.extstatic")
		if err != nil {
			t.Fatal(err)
		}
		if err := kernel.StartModule(m); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kernel.RetireModule(context.Background(), m) })
		return discoverytest.Registry{Announcer: m.(discovery.Announcer), MasterAddr: "127.0.0.1:10911", MasterHAAddr: "127.0.0.1:10912"}
	})
}
