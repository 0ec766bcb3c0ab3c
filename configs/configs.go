// Package configs ships mqd's configuration profiles and RocketMQ-style sample
// files inside the binary. A profile is a YAML file of dotted mqd keys;
// "default" is the embedded default (name server + broker, data under ./data)
// that every load starts from, and a named profile (--profile dev) is layered on
// top of it. Profiles may live in subdirectories ("2m-2s-async/broker-a"); a new
// subdirectory must be added to the go:embed pattern below (a test checks that
// every YAML file here is embedded).
package configs

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed *.yaml rocketmq
var files embed.FS

// sampleDir holds RocketMQ-style sample files, which are not profiles.
const sampleDir = "rocketmq"

// FS returns the embedded tree: profiles as NAME.yaml, samples under rocketmq/.
func FS() fs.FS { return files }

// Profile returns the YAML of the named profile ("dev", "2m-2s-async/broker-a").
func Profile(name string) ([]byte, error) {
	if name == "" || !fs.ValidPath(name) || strings.HasPrefix(name, sampleDir+"/") {
		return nil, fmt.Errorf("invalid profile name %q", name)
	}
	data, err := files.ReadFile(name + ".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(Profiles(), ", "))
	}
	return data, err
}

// Profiles lists the shipped profile names, sorted.
func Profiles() []string {
	var out []string
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == sampleDir {
				return fs.SkipDir
			}
			return nil
		}
		if path.Ext(p) == ".yaml" {
			out = append(out, strings.TrimSuffix(p, ".yaml"))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// Sample returns a RocketMQ-style sample file ("broker.conf",
// "namesrv.properties").
func Sample(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("invalid sample name %q", name)
	}
	return files.ReadFile(path.Join(sampleDir, name))
}

// Samples lists the sample files, sorted.
func Samples() []string {
	entries, _ := files.ReadDir(sampleDir)
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
