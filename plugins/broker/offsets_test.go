package broker

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConsumerOffsets(t *testing.T) {
	dir := t.TempDir()
	b := newMetaBroker(t, dir)
	m := b.offsets
	if _, ok := m.Query("g", "t", 0); ok {
		t.Fatal("offset of a fresh group")
	}
	m.Commit("g", "t", 0, 120)
	m.Commit("g", "t", 1, 118)
	m.Commit("g2", "t", 0, 5)
	m.Commit("g", "%RETRY%g", 0, 3)
	if off, ok := m.Query("g", "t", 1); !ok || off != 118 {
		t.Fatalf("Query = %d, %v", off, ok)
	}
	if got := m.GroupsOf("t"); !reflect.DeepEqual(got, []string{"g", "g2"}) {
		t.Fatalf("GroupsOf = %v", got)
	}
	if got := m.TopicsOf("g"); !reflect.DeepEqual(got, []string{"%RETRY%g", "t"}) {
		t.Fatalf("TopicsOf = %v", got)
	}
	if got := m.QueryAll("g", "t"); !reflect.DeepEqual(got, map[int32]int64{0: 120, 1: 118}) {
		t.Fatalf("QueryAll = %v", got)
	}
	if err := m.Persist(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, consumerOffsetFile))
	if !strings.Contains(string(raw), "\t\t\t0:120") || strings.Contains(string(raw), `"0"`) {
		t.Fatalf("file is not fastjson style:\n%s", raw)
	}
	m2 := newMetaBroker(t, dir).offsets
	if got := m2.Table(); !reflect.DeepEqual(got, m.Table()) {
		t.Fatalf("reload: %v, want %v", got.OffsetTable, m.Table().OffsetTable)
	}
	m.DeleteTopic("t")
	if _, ok := m.Query("g", "t", 0); ok {
		t.Fatal("offset survived DeleteTopic")
	}
	if _, ok := m.Query("g", "%RETRY%g", 0); !ok {
		t.Fatal("DeleteTopic removed another topic")
	}
	m.DeleteGroup("g")
	if len(m.TopicsOf("g")) != 0 {
		t.Fatal("DeleteGroup left offsets")
	}
}

func TestConsumerOffsetFileForms(t *testing.T) {
	for name, text := range map[string]string{
		"bare":   "{\n\t\"offsetTable\":{\n\t\t\"TopicTest@groupA\":{0:120,1:118},\"T2@g@x\":{ 3 : 7 }\n\t}\n}",
		"quoted": `{"offsetTable":{"TopicTest@groupA":{"0":120,"1":118},"T2@g@x":{"3":7}},"dataVersion":{"counter":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, consumerOffsetFile), []byte(text), 0o644)
			m := newMetaBroker(t, dir).offsets
			if off, ok := m.Query("groupA", "TopicTest", 1); !ok || off != 118 {
				t.Fatalf("Query = %d, %v", off, ok)
			}
			if off, ok := m.Query("g@x", "T2", 3); !ok || off != 7 {
				t.Fatalf("group with @: %d, %v", off, ok)
			}
			// Round trip through our writer.
			m.Commit("groupA", "TopicTest", 2, 1)
			if err := m.Persist(); err != nil {
				t.Fatal(err)
			}
			if got := newMetaBroker(t, dir).offsets.Table(); !reflect.DeepEqual(got, m.Table()) {
				t.Fatalf("round trip %v, want %v", got.OffsetTable, m.Table().OffsetTable)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, consumerOffsetFile), []byte(`{"offsetTable":{"nokey":{0:1}}}`), 0o644)
	b := &Broker{cfg: metaTestConfig(t), configDir: dir}
	if _, err := newConsumerOffsetManager(b); err == nil {
		t.Fatal("key without @ accepted")
	}
	os.WriteFile(filepath.Join(dir, consumerOffsetFile), []byte(`{"offsetTable":{"t@g":{x:1}}}`), 0o644)
	if _, err := newConsumerOffsetManager(b); err == nil {
		t.Fatal("non-integer queue id accepted")
	}
}

func TestConsumerOffsetPersistOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	m := newMetaBroker(t, dir).offsets
	p := filepath.Join(dir, consumerOffsetFile)
	if err := m.Persist(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("empty unchanged table written")
	}
	m.Commit("g", "t", 0, 1)
	m.Persist()
	os.Remove(p)
	m.Commit("g", "t", 0, 1) // same value: no change
	m.Persist()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("unchanged table rewritten")
	}
}

func TestCommitDoesNotAllocate(t *testing.T) {
	m := newMetaBroker(t, "").offsets
	m.Commit("group", "topic", 3, 0)
	var off int64
	if n := testing.AllocsPerRun(1000, func() {
		off++
		m.Commit("group", "topic", 3, off)
		m.Query("group", "topic", 3)
	}); n != 0 {
		t.Fatalf("Commit+Query allocate %v times", n)
	}
}

func BenchmarkCommit(b *testing.B) {
	m := newMetaBroker(b, "").offsets
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i int64
		for pb.Next() {
			i++
			m.Commit("group", "topic", int32(i&7), i)
		}
	})
}
