package terrarium

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Metric names with CSV's special characters survive a round trip (the
// first version quoted them Go-style, which CSV readers do not undo).
func TestMetricsCSVRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.csv")
	names := []string{"plain", "with,comma", `with "quotes"`}
	m, err := createMetrics(path, names)
	if err != nil {
		t.Fatal(err)
	}
	m.row(1, map[string]float64{"plain": 0.5, "with,comma": 2})
	m.row(2, map[string]float64{`with "quotes"`: 1e-9})
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"tick", "plain", "with,comma", `with "quotes"`}, {"1", "0.5", "2", ""}, {"2", "", "", "1e-09"}}
	if len(rows) != len(want) {
		t.Fatalf("rows %q, want %q", rows, want)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
}
