package broker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqd/mqd/protocols/remoting/body"
)

func TestSubscriptionGroupFindOrCreate(t *testing.T) {
	dir := t.TempDir()
	b := newMetaBroker(t, dir)
	if _, ok := b.subGroups.Get("TOOLS_CONSUMER"); !ok {
		t.Fatal("system group TOOLS_CONSUMER missing")
	}
	c, ok := b.subGroups.FindOrCreate("CG1")
	if !ok || c != body.NewSubscriptionGroupConfig("CG1") {
		t.Fatalf("FindOrCreate = %+v, %v", c, ok)
	}
	if _, ok := b.subGroups.FindOrCreate("bad/group"); ok {
		t.Fatal("created a group with a bad name")
	}
	if _, ok := newMetaBroker(t, dir).subGroups.Get("CG1"); !ok {
		t.Fatal("CG1 not persisted")
	}

	off := newMetaBroker(t, "", "broker.autoCreateSubscriptionGroup=false")
	if _, ok := off.subGroups.FindOrCreate("CG2"); ok {
		t.Fatal("created CG2 with autoCreateSubscriptionGroup=false")
	}
	if _, ok := off.subGroups.FindOrCreate("CID_RMQ_SYS_X"); !ok {
		t.Fatal("system group not created with autoCreateSubscriptionGroup=false")
	}
}

func TestSubscriptionGroupUpdateDelete(t *testing.T) {
	dir := t.TempDir()
	b := newMetaBroker(t, dir)
	c := body.NewSubscriptionGroupConfig("G")
	c.RetryMaxTimes, c.ConsumeBroadcastEnable = 3, false
	if err := b.subGroups.Update(c); err != nil {
		t.Fatal(err)
	}
	if err := b.subGroups.Update(body.NewSubscriptionGroupConfig("")); err == nil {
		t.Fatal("group without a name accepted")
	}
	if got, _ := newMetaBroker(t, dir).subGroups.Get("G"); got != c {
		t.Fatalf("after reload %+v, want %+v", got, c)
	}
	if !b.subGroups.Delete("G") || b.subGroups.Delete("G") {
		t.Fatal("Delete result wrong")
	}
	if _, ok := newMetaBroker(t, dir).subGroups.Get("G"); ok {
		t.Fatal("G back after reload")
	}
}

func TestSubscriptionGroupFileDefaults(t *testing.T) {
	dir := t.TempDir()
	// A hand-written file with missing fields and bare keys elsewhere: missing
	// fields keep RocketMQ's defaults.
	os.WriteFile(filepath.Join(dir, subscriptionGroupFile), []byte(`{"dataVersion":{"counter":7,"timestamp":1},
		"subscriptionGroupTable":{"G1":{"groupName":"G1","retryMaxTimes":5}}}`), 0o644)
	b := newMetaBroker(t, dir)
	c, ok := b.subGroups.Get("G1")
	if !ok || c.RetryMaxTimes != 5 || c.RetryQueueNums != 1 || !c.ConsumeEnable || !c.NotifyConsumerIdsChangedEnable {
		t.Fatalf("G1 = %+v, %v", c, ok)
	}
	_, v := b.subGroups.Snapshot()
	if v.Counter != 7 {
		t.Fatalf("version %+v", v)
	}
	// The wire form of 201 is standard JSON the Go admin client decodes.
	data, err := b.subGroups.encode(false)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		SubscriptionGroupTable map[string]map[string]any `json:"subscriptionGroupTable"`
		DataVersion            struct{ Timestamp, Counter int64 }
	}
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatalf("201 body %s: %v", data, err)
	}
	if g := w.SubscriptionGroupTable["G1"]; g["consumeEnable"] != true || g["retryMaxTimes"] != 5.0 || g["whichBrokerWhenConsumeSlowly"] != 1.0 {
		t.Fatalf("G1 on the wire: %v", g)
	}
}
