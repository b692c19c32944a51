package echo

import (
	"encoding/json"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

func TestObserveIsJSONOfTheConfiguredSize(t *testing.T) {
	w, err := New(Config{Payload: 100})
	if err != nil {
		t.Fatal(err)
	}
	obs, ok, err := w.Observe("a", 42)
	if err != nil || !ok {
		t.Fatalf("Observe: %v %v", ok, err)
	}
	var o struct {
		Tick uint64 `json:"tick"`
		Pad  string `json:"pad"`
	}
	if err := json.Unmarshal(obs, &o); err != nil {
		t.Fatalf("observation %s: %v", obs, err)
	}
	if o.Tick != 42 || len(o.Pad) != 100 {
		t.Fatalf("observation tick %d, pad %d bytes; want 42 and 100", o.Tick, len(o.Pad))
	}
}

func TestStepCountsAndSnapshotRestores(t *testing.T) {
	w, _ := New(Config{Rounds: 2})
	acts := []world.Action{{Agent: "a", Tick: 1, Data: json.RawMessage(`{}`)}, {Agent: "b", Tick: 1, Data: json.RawMessage(`1`)}}
	if _, err := w.Step(1, acts, nil); err != nil {
		t.Fatal(err)
	}
	if w.Done() {
		t.Fatal("done after 1 of 2 rounds")
	}
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	res, _ := w.Step(2, acts[:1], nil)
	if !w.Done() || w.StateHash() != "2/3" || res.Metrics[MetricActions] != 1 {
		t.Fatalf("after 2 rounds: done %v, hash %s, metrics %v", w.Done(), w.StateHash(), res.Metrics)
	}
	w2, _ := New(Config{Rounds: 2})
	if err := w2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if w2.StateHash() != "1/2" {
		t.Fatalf("restored hash %s, want 1/2", w2.StateHash())
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{Rounds: -1}, {Payload: -1}, {Payload: MaxPayload + 1}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
