package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mqd/mqd/protocols/remoting"
)

// TestAdoptStoreAtStart: a store last run by a slave (config/lastRole), now
// started as master with metadata that lacks a topic, has a narrower copy of
// another, no subscriptionGroup.json, and offsets ahead of its queues (as a
// slave's copy of an ASYNC_MASTER's offsets can be), starts with the topic
// rebuilt from its consume queues, the narrow one widened, a default group
// for each consumer it has offsets or retry messages of, and offsets lowered to the queues' ends.
func TestAdoptStoreAtStart(t *testing.T) {
	dir := t.TempDir()
	root := "store.storePathRootDir=" + dir
	h := startDataBroker(t, root)
	admin := func(h *dataHarness, topic string) {
		resp := h.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": topic, "readQueueNums": "8", "writeQueueNums": "8",
			"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}, nil)
		if resp.Code != remoting.Success {
			t.Fatalf("create %s: %d %s", topic, resp.Code, resp.Remark)
		}
	}
	admin(h, "Adopted")
	admin(h, "Narrowed")
	for q := range 8 {
		h.send("Adopted", q, "", "x")
		h.send("Narrowed", q, "", "y")
	}
	ext := sendExt("%RETRY%LostGroup", 0, "")
	ext["maxReconsumeTimes"] = "16" // else the broker moves it to the DLQ
	if resp := h.invoke(remoting.SendMessage, ext, []byte("r")); resp.Code != remoting.Success {
		t.Fatalf("send to the retry topic: %d %s", resp.Code, resp.Remark)
	}
	// The config of Adopted is lost, Narrowed's shrinks to 2 read queues.
	h.b.topics.Delete("Adopted")
	tc, _ := h.b.topics.Get("Narrowed")
	tc.ReadQueueNums = 2
	if err := h.b.topics.Update(tc); err != nil {
		t.Fatal(err)
	}
	h.b.offsets.Commit("OffsetGroup", "Adopted", 2, 1)   // at the end: kept
	h.b.offsets.Commit("OffsetGroup", "Adopted", 3, 500) // ahead: lowered to 1
	h.b.offsets.Commit("OffsetGroup", "Gone", 0, 7)      // no queue at all: 0
	h.stop()

	cfg := filepath.Join(dir, "config")
	for _, f := range []string{subscriptionGroupFile} {
		os.Remove(filepath.Join(cfg, f))
		os.Remove(filepath.Join(cfg, f+".bak"))
	}
	// The previous run was a slave's: this start is a promotion.
	if err := os.WriteFile(filepath.Join(cfg, lastRoleFile), []byte("SLAVE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := startDataBroker(t, root)
	b := h2.b
	for _, topic := range []string{"Adopted", "%RETRY%LostGroup"} {
		if _, ok := b.topics.Get(topic); !ok {
			t.Fatalf("%s not adopted", topic)
		}
	}
	if tc, _ := b.topics.Get("Adopted"); tc.ReadQueueNums != 8 || tc.WriteQueueNums != 8 || tc.Perm != 6 {
		t.Fatalf("Adopted rebuilt as %+v, want 8/8 queues, perm RW", tc)
	}
	if tc, _ := b.topics.Get("Narrowed"); tc.ReadQueueNums != 8 || tc.WriteQueueNums != 8 {
		t.Fatalf("Narrowed: %d read and %d write queues, want 8 and 8 (widened reads)", tc.ReadQueueNums, tc.WriteQueueNums)
	}
	for _, g := range []string{"OffsetGroup", "LostGroup"} {
		if _, ok := b.subGroups.Get(g); !ok {
			t.Fatalf("group %s not adopted", g)
		}
	}

	for _, c := range []struct {
		topic string
		q     int32
		want  int64
	}{{"Adopted", 2, 1}, {"Adopted", 3, 1}, {"Gone", 0, 0}} {
		if off, _ := b.offsets.Query("OffsetGroup", c.topic, c.q); off != c.want {
			t.Errorf("offset of %s/%d: %d, want %d", c.topic, c.q, off, c.want)
		}
	}
	// Persisted: a third start finds everything in the files.
	h2.stop()
	h3 := startDataBroker(t, root)
	if _, ok := h3.b.topics.Get("Adopted"); !ok {
		t.Fatal("adopted topic not persisted")
	}
	if off, _ := h3.b.offsets.Query("OffsetGroup", "Adopted", 3); off != 1 {
		t.Fatalf("lowered offset not persisted: %d", off)
	}
	// And the adopted topic is served.
	resp := h3.invoke(remoting.GetMaxOffset, map[string]string{"topic": "Adopted", "queueId": "7"}, nil)
	if n, _ := resp.ExtInt64("offset"); resp.Code != remoting.Success || n != 1 {
		t.Fatalf("max offset of Adopted/7: code %d, %d", resp.Code, n)
	}
}

// TestOrdinaryRestartAdoptsNothing: a master restarted with its files keeps
// a topic shrunk by updateTopic shrunk and a deleted topic and group deleted,
// although the store still holds their queues; only offsets beyond a queue's
// end are lowered.
func TestOrdinaryRestartAdoptsNothing(t *testing.T) {
	dir := t.TempDir()
	root := "store.storePathRootDir=" + dir
	h := startDataBroker(t, root)
	for _, topic := range []string{"Shrunk", "Deleted"} {
		resp := h.invoke(remoting.UpdateAndCreateTopic, map[string]string{"topic": topic, "readQueueNums": "8", "writeQueueNums": "8",
			"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}, nil)
		if resp.Code != remoting.Success {
			t.Fatalf("create %s: %d %s", topic, resp.Code, resp.Remark)
		}
		for q := range 8 {
			h.send(topic, q, "", "x")
		}
	}
	tc, _ := h.b.topics.Get("Shrunk")
	tc.ReadQueueNums, tc.WriteQueueNums = 2, 2
	if err := h.b.topics.Update(tc); err != nil {
		t.Fatal(err)
	}
	h.b.topics.Delete("Deleted")
	h.b.subGroups.FindOrCreate("GoneGroup")
	h.b.offsets.Commit("GoneGroup", "Shrunk", 0, 1)
	h.b.subGroups.Delete("GoneGroup")
	h.b.offsets.Commit("G", "Shrunk", 1, 99)
	h.stop()

	b := startDataBroker(t, root).b
	if tc, _ := b.topics.Get("Shrunk"); tc.ReadQueueNums != 2 || tc.WriteQueueNums != 2 {
		t.Fatalf("Shrunk after a restart: %d/%d queues, want 2/2", tc.ReadQueueNums, tc.WriteQueueNums)
	}
	if _, ok := b.topics.Get("Deleted"); ok {
		t.Fatal("a deleted topic came back")
	}
	if _, ok := b.subGroups.Get("GoneGroup"); ok {
		t.Fatal("a deleted group came back")
	}
	if off, _ := b.offsets.Query("G", "Shrunk", 1); off != 1 {
		t.Fatalf("offset beyond the queue's end: %d, want 1", off)
	}
}
