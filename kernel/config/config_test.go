package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Test keys live under role "testrole" and section "t", apart from the keys the
// seed test registers under "broker": no other package is linked into this test
// binary, so neither collides with a real registration.
const testRole = "testrole"

func init() {
	Register(
		Key{Path: "t.listenPort", Role: testRole, RocketMQ: []string{"listenPort"}, Default: 10911},
		Key{Path: "t.name", Role: testRole, RocketMQ: []string{"brokerName"}, Default: "dflt"},
		Key{Path: "t.size", Role: testRole, RocketMQ: []string{"mappedFileSize", "mapedFileSize"}, Default: int64(1 << 30)},
		Key{Path: "t.enabled", Role: testRole, RocketMQ: []string{"enabled"}, Default: false},
		Key{Path: "t.ratio", Role: testRole, RocketMQ: []string{"ratio"}, Default: 0.5},
		Key{Path: "t.perm", Role: testRole, RocketMQ: []string{"perm"}, Default: int32(6)},
		Key{Path: "t.tags", Role: testRole, Default: []string{"a", "b"}},
		Key{Path: "t.timeout", Role: testRole, Default: 3 * time.Second},
		Key{Path: "t.unset", Role: testRole, RocketMQ: []string{"unsetKey"}},
		// One key per layer for the precedence test.
		Key{Path: "p.default", Role: testRole, Default: "default"},
		Key{Path: "p.profile", Role: testRole, Default: "default"},
		Key{Path: "p.named", Role: testRole, Default: "default"},
		Key{Path: "p.file", Role: testRole, Default: "default"},
		Key{Path: "p.env", Role: testRole, Default: "default"},
		Key{Path: "p.set", Role: testRole, Default: "default"},
		Key{Path: "p.flag", Role: testRole, Default: "default"},
	)
	RegisterUnimplemented(testRole, "sendMessageThreadPoolNums", "haListenPort", "implementedLater")
	Register(Key{Path: "t.later", Role: testRole, RocketMQ: []string{"implementedLater"}, Default: 1})
}

// profiles returns a ProfileSource over in-memory YAML.
func profiles(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if y, ok := m[name]; ok {
			return []byte(y), nil
		}
		if name == DefaultProfile {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown profile %q", name)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, o LoadOptions) *Config {
	t.Helper()
	if o.Role == "" {
		o.Role = testRole
	}
	if o.ProfileSource == nil {
		o.ProfileSource = profiles(nil)
	}
	if o.Env == nil {
		o.Env = []string{}
	}
	c, err := Load(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadErr(t *testing.T, o LoadOptions, wants ...string) {
	t.Helper()
	if o.Role == "" {
		o.Role = testRole
	}
	if o.ProfileSource == nil {
		o.ProfileSource = profiles(nil)
	}
	if o.Env == nil {
		o.Env = []string{}
	}
	_, err := Load(o)
	if err == nil {
		t.Fatalf("Load succeeded, want an error with %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := load(t, LoadOptions{})
	if got := c.Int("t.listenPort"); got != 10911 {
		t.Errorf("listenPort = %d", got)
	}
	if got := c.Get("t.size"); got != int64(1<<30) {
		t.Errorf("size = %#v", got)
	}
	if got := c.Strings("t.tags"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("tags = %v", got)
	}
	if got := c.Duration("t.timeout"); got != 3*time.Second {
		t.Errorf("timeout = %v", got)
	}
	if c.Exists("t.unset") {
		t.Errorf("t.unset exists with no default")
	}
	if s := c.Source("t.listenPort"); s != "default" {
		t.Errorf("source = %q", s)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings = %v", c.Warnings)
	}
}

// TestPrecedence sets every p.* key in every layer that comes before the one it
// is named after: each must come from its own layer.
func TestPrecedence(t *testing.T) {
	all := []string{"profile", "named", "file", "env", "set", "flag"}
	// Layer i sets the keys of layers i..end to its own name.
	from := func(layer string) []string {
		for i, l := range all {
			if l == layer {
				return all[i:]
			}
		}
		return nil
	}
	yamlOf := func(layer string) string {
		var b strings.Builder
		b.WriteString("p:\n")
		for _, k := range from(layer) {
			fmt.Fprintf(&b, "  %s: %s\n", k, layer)
		}
		return b.String()
	}
	var props strings.Builder
	for _, k := range from("file") {
		fmt.Fprintf(&props, "p.%s=file\n", k)
	}
	file := writeFile(t, "x.properties", props.String())
	var env, sets []string
	for _, k := range from("env") {
		env = append(env, "MQD_P_"+strings.ToUpper(k)+"=env")
	}
	for _, k := range from("set") {
		sets = append(sets, "p."+k+"=set")
	}
	c := load(t, LoadOptions{
		Profile:       "dev",
		ProfileSource: profiles(map[string]string{"default": yamlOf("profile"), "dev": yamlOf("named")}),
		File:          file,
		Env:           env,
		Sets:          sets,
		Flags:         []Flag{{Name: "--log-level", Key: "p.flag", Value: "flag"}},
	})
	wantSource := map[string]string{
		"default": "default",
		"profile": "profile default",
		"named":   "profile dev",
		"file":    "file " + file,
		"env":     "env MQD_P_ENV",
		"set":     "flag --set",
		"flag":    "flag --log-level",
	}
	for layer, src := range wantSource {
		path := "p." + layer
		want := layer
		if got := c.String(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
		if got := c.Source(path); got != src {
			t.Errorf("Source(%s) = %q, want %q", path, got, src)
		}
	}
}

func TestSeedFileLoads(t *testing.T) {
	registerSeedKeys()
	seed := filepath.Join("testdata", "broker-a.properties")
	before, _ := os.Stat("/usr/local/rocketmq")
	c, err := Load(LoadOptions{Role: "broker", File: seed, Env: []string{}, ProfileSource: profiles(nil)})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"broker.brokerClusterName":         "DefaultCluster",
		"broker.brokerName":                "broker-a",
		"broker.brokerId":                  int64(0),
		"broker.namesrvAddr":               "10.211.55.4:9876;10.211.55.5:9876;10.211.55.6:9876",
		"broker.listenPort":                10911,
		"broker.autoCreateTopicEnable":     false,
		"store.mappedFileSizeCommitLog":    int64(1073741824), // "1073741824 " in the file
		"store.mappedFileSizeConsumeQueue": int64(50000000),
		"store.diskMaxUsedSpaceRatio":      88,
		"store.deleteWhen":                 "04",
		"store.brokerRole":                 "ASYNC_MASTER",
		"store.storePathRootDir":           "/usr/local/rocketmq/data/store",
		"store.maxMessageSize":             65536,
	}
	for path, want := range checks {
		if got := c.Get(path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
		if got := c.Source(path); got != "file "+seed {
			t.Errorf("Source(%s) = %q", path, got)
		}
	}
	wantWarn := "RocketMQ keys accepted but not implemented: abortFile, pullMessageThreadPoolNums, sendMessageThreadPoolNums, storeCheckpoint, storePathConsumeQueue, storePathIndex"
	if len(c.Warnings) != 1 || c.Warnings[0] != wantWarn {
		t.Errorf("warnings = %q\nwant [%q]", c.Warnings, wantWarn)
	}
	// Loading reads; it must not create the absolute paths the file names.
	if after, _ := os.Stat("/usr/local/rocketmq"); before == nil && after != nil {
		t.Errorf("loading created /usr/local/rocketmq")
	}
}

var seedKeysOnce bool

// registerSeedKeys registers, under the real "broker" role, the keys of the seed
// file that the broker and store packages implement; the rest must be on the
// built-in unimplemented list.
func registerSeedKeys() {
	if seedKeysOnce {
		return
	}
	seedKeysOnce = true
	b := func(section, name string, def any, old ...string) Key {
		return Key{Path: section + "." + name, Role: "broker", RocketMQ: append([]string{name}, old...), Default: def}
	}
	Register(
		b("broker", "brokerClusterName", "DefaultCluster"),
		b("broker", "brokerName", "broker-a"),
		b("broker", "brokerId", int64(0)),
		b("broker", "namesrvAddr", ""),
		b("broker", "listenPort", 10911),
		b("broker", "defaultTopicQueueNums", int32(8)),
		b("broker", "autoCreateTopicEnable", true),
		b("broker", "autoCreateSubscriptionGroup", true),
		b("broker", "checkTransactionMessageEnable", true),
		b("store", "deleteWhen", "04"),
		b("store", "fileReservedTime", 72),
		b("store", "brokerRole", "ASYNC_MASTER"),
		b("store", "flushDiskType", "ASYNC_FLUSH"),
		b("store", "mappedFileSizeCommitLog", int64(1<<30), "mapedFileSizeCommitLog"),
		b("store", "mappedFileSizeConsumeQueue", int64(6000000), "mapedFileSizeConsumeQueue"),
		b("store", "destroyMapedFileIntervalForcibly", int64(120000)),
		b("store", "redeleteHangedFileInterval", int64(120000)),
		b("store", "diskMaxUsedSpaceRatio", 75),
		b("store", "storePathRootDir", "~/store"),
		b("store", "storePathCommitLog", ""),
		b("store", "maxMessageSize", 4194304),
		b("store", "flushCommitLogLeastPages", 4),
		b("store", "flushConsumeQueueLeastPages", 2),
		b("store", "flushCommitLogThoroughInterval", int64(10000)),
		b("store", "flushConsumeQueueThoroughInterval", int64(60000)),
	)
}

func TestUnknownKeySuggests(t *testing.T) {
	file := writeFile(t, "b.properties", "brokerName=x\nlistenPot=1\n")
	loadErr(t, LoadOptions{File: file}, "file "+file+" line 2", `unknown key "listenPot"`, `did you mean "listenPort"`)

	// An old or mistyped dotted path suggests the path.
	loadErr(t, LoadOptions{Sets: []string{"t.listenPrt=1"}}, "flag --set t.listenPrt=1", `did you mean "t.listenPort"`)
	// Nothing close: no suggestion, still an error.
	_, err := Load(LoadOptions{Role: testRole, Env: []string{}, ProfileSource: profiles(nil), Sets: []string{"completelyDifferentThing=1"}})
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("err = %v, want an error without a suggestion", err)
	}
	// Env spelling is suggested in env spelling.
	loadErr(t, LoadOptions{Env: []string{"MQD_T_LISTENPROT=1"}}, "env MQD_T_LISTENPROT", "did you mean MQD_T_LISTENPORT?")
	loadErr(t, LoadOptions{Env: []string{"MQD_LISTENPROT=1"}}, "did you mean MQD_LISTENPORT?")
	// A key of another role (or an mqd-only key) by its last label: offer the path.
	loadErr(t, LoadOptions{Sets: []string{"tags=x"}}, `did you mean "t.tags"?`)
	// YAML profiles are strict too.
	loadErr(t, LoadOptions{ProfileSource: profiles(map[string]string{"default": "t:\n  nmae: x\n"})}, "profile default", `unknown key "t.nmae"`, `did you mean "t.name"`)
	// An unknown profile names the known ones (through the source).
	loadErr(t, LoadOptions{Profile: "nope"}, "profile nope", "unknown profile")
}

func TestUnimplementedWarning(t *testing.T) {
	file := writeFile(t, "b.conf", "sendMessageThreadPoolNums=128\nhaListenPort=10912\nlistenPort=1\n")
	c := load(t, LoadOptions{File: file, Env: []string{"MQD_SENDMESSAGETHREADPOOLNUMS=4"}, Sets: []string{"haListenPort=1"}})
	want := []string{"RocketMQ keys accepted but not implemented: haListenPort, sendMessageThreadPoolNums"}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings = %q, want %q", c.Warnings, want)
	}
	if c.Int("t.listenPort") != 1 {
		t.Errorf("listenPort = %d", c.Int("t.listenPort"))
	}
}

func TestRegisterWinsOverUnimplemented(t *testing.T) {
	if IsUnimplemented(testRole, "implementedLater") {
		t.Fatal("a registered name is reported unimplemented")
	}
	for _, n := range Unimplemented(testRole) {
		if n == "implementedLater" {
			t.Fatal("Unimplemented lists a registered name")
		}
	}
	c := load(t, LoadOptions{Sets: []string{"implementedLater=5"}})
	if c.Int("t.later") != 5 || len(c.Warnings) != 0 {
		t.Errorf("t.later = %d, warnings %v", c.Int("t.later"), c.Warnings)
	}
	// A name unimplemented in one role is unknown in another.
	loadErr(t, LoadOptions{Role: "otherrole", Sets: []string{"haListenPort=1"}}, `unknown key "haListenPort"`)
}

func TestTypeErrors(t *testing.T) {
	cases := []struct {
		o     LoadOptions
		wants []string
	}{
		{LoadOptions{File: writeFile(t, "a.properties", "listenPort=abc\n")}, []string{"line 1", "listenPort (t.listenPort)", "invalid int", `"abc"`, "not a number"}},
		{LoadOptions{Sets: []string{"enabled=maybe"}}, []string{"flag --set enabled=maybe", "enabled (t.enabled)", "invalid bool", `"maybe"`}},
		{LoadOptions{Env: []string{"MQD_T_TIMEOUT=5"}}, []string{"env MQD_T_TIMEOUT", "t.timeout", "invalid duration", "unit"}},
		{LoadOptions{Sets: []string{"perm=99999999999"}}, []string{"invalid int32", "out of range"}},
		{LoadOptions{Sets: []string{"ratio=x"}}, []string{"invalid float64"}},
		{LoadOptions{ProfileSource: profiles(map[string]string{"default": "t:\n  listenPort: [1, 2]\n"})}, []string{"profile default", "t.listenPort", "invalid int"}},
		{LoadOptions{ProfileSource: profiles(map[string]string{"default": "t:\n  tags: {x: 1}\n"})}, []string{"profile default", "t.tags", "invalid list of strings"}},
		{LoadOptions{ProfileSource: profiles(map[string]string{"default": "t:\n  enabled: 3\n"})}, []string{"t.enabled", "invalid bool"}},
		{LoadOptions{Sets: []string{"novalue"}}, []string{"want key=value"}},
	}
	for _, tc := range cases {
		loadErr(t, tc.o, tc.wants...)
	}
}

func TestEnvAndSetSpellings(t *testing.T) {
	c := load(t, LoadOptions{Env: []string{"MQD_T_LISTENPORT=1", "MQD_brokername=env-name", "MQD_MAPEDFILESIZE=77", "OTHER=1", "MQD_T_TAGS=x, y,,z"}})
	if c.Int("t.listenPort") != 1 || c.Source("t.listenPort") != "env MQD_T_LISTENPORT" {
		t.Errorf("listenPort = %d from %q", c.Int("t.listenPort"), c.Source("t.listenPort"))
	}
	if c.String("t.name") != "env-name" || c.Source("t.name") != "env MQD_brokername" {
		t.Errorf("name = %q from %q", c.String("t.name"), c.Source("t.name"))
	}
	if c.Int64("t.size") != 77 {
		t.Errorf("size = %d (old RocketMQ spelling)", c.Int64("t.size"))
	}
	if got := c.Strings("t.tags"); !reflect.DeepEqual(got, []string{"x", "y", "z"}) {
		t.Errorf("tags = %q", got)
	}

	c = load(t, LoadOptions{Sets: []string{"listenPort=2", "t.name=a=b", "t.timeout=250ms", "enabled=TRUE", "ratio=0.75"}})
	if c.Int("t.listenPort") != 2 || c.String("t.name") != "a=b" || c.Duration("t.timeout") != 250*time.Millisecond || !c.Bool("t.enabled") || c.Float64("t.ratio") != 0.75 {
		t.Errorf("--set: %v", c.All())
	}
	// A later --set wins over an earlier one.
	c = load(t, LoadOptions{Sets: []string{"listenPort=2", "t.listenPort=3"}})
	if c.Int("t.listenPort") != 3 {
		t.Errorf("listenPort = %d", c.Int("t.listenPort"))
	}
}

func TestYAMLFile(t *testing.T) {
	file := writeFile(t, "mqd.yaml", "t:\n  listenPort: 7\n  tags: [p, q]\n  timeout: 1m\n  enabled: true\n  perm: 4\nt.name: dotted\nbrokerName: ignored-by-order\n")
	c := load(t, LoadOptions{File: file})
	// "brokerName" (RocketMQ name) sorts before "t.name", so the dotted path wins.
	if c.Int("t.listenPort") != 7 || c.String("t.name") != "dotted" || c.Duration("t.timeout") != time.Minute || !c.Bool("t.enabled") {
		t.Errorf("yaml: %v", c.All())
	}
	if got := c.Get("t.perm"); got != int32(4) {
		t.Errorf("perm = %#v, want int32(4)", got)
	}
	if got := c.Strings("t.tags"); !reflect.DeepEqual(got, []string{"p", "q"}) {
		t.Errorf("tags = %q", got)
	}
	var s struct {
		ListenPort int           `koanf:"listenPort"`
		Perm       int32         `koanf:"perm"`
		Tags       []string      `koanf:"tags"`
		Timeout    time.Duration `koanf:"timeout"`
	}
	if err := c.Unmarshal("t", &s); err != nil {
		t.Fatal(err)
	}
	if s.ListenPort != 7 || s.Perm != 4 || len(s.Tags) != 2 || s.Timeout != time.Minute {
		t.Errorf("unmarshal = %+v", s)
	}
}

func TestRender(t *testing.T) {
	c := load(t, LoadOptions{Sets: []string{"listenPort=5"}})
	var b bytes.Buffer
	if err := c.Render(&b, RenderOptions{Format: FormatProperties, Roles: []string{testRole}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"t.listenPort = 5  # flag --set\n", "t.name = dflt  # default\n", "t.tags = a,b  # default\n", "t.timeout = 3s  # default\n", "t.unset =   # unset\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("properties output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := c.Render(&b, RenderOptions{Roles: []string{"nothing"}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "t.listenPort") {
		t.Errorf("role filter kept t.listenPort:\n%s", b.String())
	}
	b.Reset()
	if err := c.Render(&b, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "KEY ") || !strings.Contains(b.String(), "flag --set") {
		t.Errorf("table output:\n%s", b.String())
	}
	if err := c.Render(&b, RenderOptions{Format: "xml"}); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestSet(t *testing.T) {
	c := load(t, LoadOptions{})
	if err := c.Set("t.listenPort", "9", "embedded"); err != nil {
		t.Fatal(err)
	}
	if c.Int("t.listenPort") != 9 || c.Source("t.listenPort") != "embedded" {
		t.Errorf("after Set: %d from %q", c.Int("t.listenPort"), c.Source("t.listenPort"))
	}
	if err := c.Set("t.listenPort", "x", "embedded"); err == nil {
		t.Error("Set accepted a bad value")
	}
	if err := c.Set("t.nope", "1", "x"); err == nil {
		t.Error("Set accepted an unknown key")
	}
}

func TestParse(t *testing.T) {
	k := func(def any) Key { return Key{Path: "x.y", Default: def} }
	cases := []struct {
		in   string
		def  any
		want any
	}{
		{" 42 ", 0, 42},
		{"-7", int64(0), int64(-7)},
		{"True", false, true},
		{"0", true, false},
		{"1.5", 0.0, 1.5},
		{"a, b", []string(nil), []string{"a", "b"}},
		{"1h", time.Duration(0), time.Hour},
		{"0", time.Duration(0), time.Duration(0)},
		{"x y", "", "x y"},
		{"300", int32(0), int32(300)},
		{"255", uint8(0), uint8(255)},
	}
	for _, tc := range cases {
		got, err := Parse(tc.in, k(tc.def))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q, %T) = %#v, %v; want %#v", tc.in, tc.def, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in  string
		def any
	}{{"1.5", 0}, {"yes", false}, {"256", uint8(0)}, {"5", time.Second}, {"", 0}} {
		if _, err := Parse(tc.in, k(tc.def)); err == nil {
			t.Errorf("Parse(%q, %T) succeeded", tc.in, tc.def)
		}
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"listenPort", "brokerName", "mappedFileSizeCommitLog", "t.listenPort"}
	for in, want := range map[string]string{
		"listenPot":               "listenPort",
		"LISTENPORT":              "listenPort",
		"brokername":              "brokerName",
		"mapedFileSizeCommitLog":  "mappedFileSizeCommitLog",
		"mapedFileSizeCommitLogX": "mappedFileSizeCommitLog",
		"zzz":                     "",
		"t.listenport":            "t.listenPort",
	} {
		if got := closest(in, cands); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := levenshtein("kitten", "sitting"); d != 3 {
		t.Errorf("levenshtein = %d", d)
	}
}

func TestLoadErrorsAreOneLine(t *testing.T) {
	_, err := Load(LoadOptions{Role: testRole, Env: []string{}, ProfileSource: profiles(nil), File: filepath.Join(t.TempDir(), "missing.properties")})
	if err == nil || !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v", err)
	}
}

func BenchmarkLoadSeed(b *testing.B) {
	registerSeedKeys()
	seed := filepath.Join("testdata", "broker-a.properties")
	for b.Loop() {
		if _, err := Load(LoadOptions{Role: "broker", File: seed, Env: []string{}, ProfileSource: profiles(nil)}); err != nil {
			b.Fatal(err)
		}
	}
}
