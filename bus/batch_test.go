package bus_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium/bus"
)

func TestEachEntrySplitsLikeEncodingJSON(t *testing.T) {
	for _, data := range []string{
		`[]`,
		`[{"agent":"a-1","data":{"ok":true}}]`,
		`[{"agent":"a-1","data":1},{"agent":"a-2","data":"x}],{\"y"},{"agent":"a-3","data":[1,[2,{"z":"]"}]]},{"agent":"a-4","data":null}]`,
		`[ {"agent": "a-1", "data": {"k": 1}} ]`, // not canonical: encoding/json's path
		`[{"data":2,"agent":"a-1"}]`,
	} {
		var want []bus.Entry
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatal(err)
		}
		var got []bus.Entry
		if err := bus.EachEntry([]byte(data), func(agent string, v []byte) {
			got = append(got, bus.Entry{Agent: agent, Data: v})
		}); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, want %d", data, len(got), len(want))
		}
		for i := range want {
			var g, w any
			_ = json.Unmarshal(got[i].Data, &g)
			_ = json.Unmarshal(want[i].Data, &w)
			if got[i].Agent != want[i].Agent || !reflect.DeepEqual(g, w) || !json.Valid(got[i].Data) {
				t.Errorf("%s: entry %d = %s %s, want %s %s", data, i, got[i].Agent, got[i].Data, want[i].Agent, want[i].Data)
			}
		}
	}
}

func TestEachEntryRefusesWhatIsNoBatch(t *testing.T) {
	for _, data := range []string{`{}`, `[1]`, `[{"agent":"a"}]`, `[{"data":1}]`, `"x"`} {
		called := false
		if err := bus.EachEntry([]byte(data), func(string, []byte) { called = true }); err == nil || called {
			t.Errorf("%s: err %v, called %v; want an error and no entry", data, err, called)
		}
	}
}

func TestEncodeBatchDecodes(t *testing.T) {
	d := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	batch := []byte("[" + string(bus.AppendEntry(nil, "a-1", []byte(`{"x":1}`))) + "]")
	b, err := bus.EncodeBatch(bus.Envelope{Kind: bus.KindObs, Run: "r", Agent: "p-1", Tick: 7, Seq: 3, Deadline: &d, Data: batch})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := bus.Encode(bus.Envelope{Kind: bus.KindObs, Run: "r", Agent: "p-1", Tick: 7, Seq: 3, Deadline: &d, Data: batch})
	if string(b) != string(want) {
		t.Errorf("EncodeBatch %s\nEncode      %s", b, want)
	}
	e, err := bus.Decode(b, "r")
	if err != nil || e.Tick != 7 || string(e.Data) != string(batch) || !e.Deadline.Equal(d) {
		t.Errorf("Decode: %+v %v", e, err)
	}
}
