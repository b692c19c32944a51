package scenarios_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/terrarium-sim/terrarium/scenarios"
)

func TestFormatDiagnostics(t *testing.T) {
	rng := &hcl.Range{Filename: "s.hcl", Start: hcl.Pos{Line: 3, Column: 5, Byte: 20}, End: hcl.Pos{Line: 3, Column: 9, Byte: 24}}
	tests := []struct {
		name  string
		diags hcl.Diagnostics
		want  string
	}{
		{"none", nil, ""},
		{"error with position", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid seed", Detail: "seed must be >= 0.", Subject: rng}},
			"s.hcl:3:5: error: Invalid seed; seed must be >= 0.\n"},
		{"no position, no detail", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read"}},
			"error: Cannot read\n"},
		{"warning, multi-line detail", hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Odd", Detail: "first\n  second", Subject: rng}},
			"s.hcl:3:5: warning: Odd; first second\n"},
		{"several", hcl.Diagnostics{
			{Severity: hcl.DiagError, Summary: "A", Subject: rng},
			{Severity: hcl.DiagError, Summary: "B", Detail: "b."},
		}, "s.hcl:3:5: error: A\nerror: B; b.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := scenarios.FormatDiagnostics(&b, tt.diags); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestFormatDiagnosticsFromParse(t *testing.T) {
	_, diags := scenarios.Parse([]byte("scenario \"s\" {\n  seed = -1\n}\n"), "x.hcl")
	var b strings.Builder
	if err := scenarios.FormatDiagnostics(&b, diags); err != nil {
		t.Fatal(err)
	}
	want := "x.hcl:1:1: error: Missing world block;"
	if !strings.HasPrefix(b.String(), "x.hcl:1:1: error: Missing") || !strings.Contains(b.String(), "x.hcl:2:10: error: Invalid seed; seed must be") {
		t.Errorf("got\n%s\nwant lines like %q", b.String(), want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatDiagnosticsWriteError(t *testing.T) {
	err := scenarios.FormatDiagnostics(failWriter{}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "A"}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v", err)
	}
}
