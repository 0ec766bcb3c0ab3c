package configs

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryYAMLIsEmbedded catches a profile directory missing from the
// go:embed pattern.
func TestEveryYAMLIsEmbedded(t *testing.T) {
	profiles := Profiles()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
			return err
		}
		name := strings.TrimSuffix(filepath.ToSlash(p), ".yaml")
		if !slices.Contains(profiles, name) {
			t.Errorf("%s is not embedded (add its directory to the go:embed pattern)", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"default", "dev", "standalone"} {
		if !slices.Contains(profiles, want) {
			t.Errorf("profiles %v lack %s", profiles, want)
		}
	}
}

func TestProfile(t *testing.T) {
	data, err := Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	disk, _ := os.ReadFile("default.yaml")
	if string(data) != string(disk) {
		t.Error("embedded default.yaml differs from the file")
	}
	for _, bad := range []string{"", "../x", "/etc/passwd", "rocketmq/broker", "nope"} {
		if _, err := Profile(bad); err == nil {
			t.Errorf("Profile(%q) succeeded", bad)
		}
	}
	if _, err := Profile("nope"); err == nil || !strings.Contains(err.Error(), "default") {
		t.Errorf("unknown profile error %v does not list the known ones", err)
	}
}

func TestSamples(t *testing.T) {
	if got := Samples(); !slices.Equal(got, []string{"broker.conf", "namesrv.properties"}) {
		t.Errorf("samples = %v", got)
	}
	if data, err := Sample("broker.conf"); err != nil || !strings.Contains(string(data), "brokerClusterName=") {
		t.Errorf("Sample(broker.conf) = %d bytes, %v", len(data), err)
	}
}
