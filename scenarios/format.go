package scenarios

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostics writes diags to w, one per line, in the form
//
//	file:line:col: error: summary; detail
//
// (a diagnostic without a position starts at "error:"). The output is plain
// text: no colour, no source snippet, line breaks inside a detail become
// spaces.
func FormatDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	var b strings.Builder
	for _, d := range diags {
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(severity(d.Severity))
		b.WriteString(": ")
		b.WriteString(oneLine(d.Summary))
		if detail := oneLine(d.Detail); detail != "" {
			b.WriteString("; ")
			b.WriteString(detail)
		}
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

func severity(s hcl.DiagnosticSeverity) string {
	if s == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
