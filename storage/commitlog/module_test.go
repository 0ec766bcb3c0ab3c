package commitlog

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mqd/mqd/kernel"
	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/storetest"
)

// TestModuleLifecycle runs the store through the kernel from a RocketMQ
// properties file with old key spellings, trailing spaces and the 3.x paths.
func TestModuleLifecycle(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "store")
	props := "mapedFileSizeCommitLog=65536 \n" +
		"mapedFileSizeConsumeQueue=50000000\n" +
		"storePathRootDir=" + root + "\n" +
		"storePathConsumeQueue=" + filepath.Join(dir, "cq") + "\n" +
		"flushDiskType=SYNC_FLUSH \n" +
		"brokerRole=ASYNC_MASTER\n"
	file := filepath.Join(dir, "broker.properties")
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	// Only this package's keys are registered here: skip the shipped profiles.
	noProfile := func(string) ([]byte, error) { return []byte("{}"), nil }
	cfg, err := config.Load(config.LoadOptions{Role: "broker", File: file, Env: []string{}, ProfileSource: noProfile})
	if err != nil {
		t.Fatal(err)
	}
	k := kernel.New(cfg, zerolog.Nop())
	if err := k.Load(context.Background(), ModuleID); err != nil {
		t.Fatal(err)
	}
	s := k.Loaded()[0].(*Store)
	o := s.Options()
	if o.MappedFileSizeCommitLog != 65536 || o.MappedFileSizeConsumeQueue != 50000000 || !o.IsSyncFlush() || o.ConsumeQueueDir() != filepath.Join(dir, "cq") {
		t.Fatalf("options from file: %+v", o)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	var st storage.Store = s
	if r := st.Put(storetest.Msg("K", 0, "hello", "")); r.Status != storage.PutOK {
		t.Fatal(r.Status, r.Err)
	}
	if err := k.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "abort")); !os.IsNotExist(err) {
		t.Fatalf("abort file after kernel stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cq", "K", "0", fileName(0))); err != nil {
		t.Fatal(err)
	}
}
