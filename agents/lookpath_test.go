package agents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	bin1, bin2, ws := filepath.Join(root, "bin1"), filepath.Join(root, "bin2"), filepath.Join(root, "ws")
	for _, d := range []string{bin1, bin2, ws, filepath.Join(ws, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(bin1, "tool"), 0o644) // not executable: skipped
	write(filepath.Join(bin2, "tool"), 0o755)
	write(filepath.Join(ws, "sub", "agent"), 0o755)
	if err := os.Symlink(filepath.Join(bin2, "tool"), filepath.Join(ws, "link")); err != nil {
		t.Fatal(err)
	}
	path := bin1 + ":" + "relative" + "::" + bin2

	tests := []struct {
		command, pathEnv string
		want             string // result, or error substring when wantErr
		wantErr          bool
	}{
		{"tool", path, filepath.Join(bin2, "tool"), false},
		{"./sub/agent", "", filepath.Join(ws, "sub", "agent"), false},
		{"sub/agent", "", filepath.Join(ws, "sub", "agent"), false},
		{filepath.Join(bin2, "tool"), "", filepath.Join(bin2, "tool"), false},
		{"./link", "", filepath.Join(ws, "link"), false},
		{"tool", bin1, `command "tool" not found in PATH ("` + bin1 + `"); ` + filepath.Join(bin1, "tool") + " is not executable", true},
		{"nope", path, `command "nope" not found in PATH ("` + path + `")`, true},
		{"nope", "", `command "nope" not found: PATH is empty`, true},
		{"", path, "no command given", true},
		{"./sub", "", "is a directory", true},
		{"../ws/missing", "", filepath.Join(ws, "missing") + " does not exist", true},
	}
	for _, tt := range tests {
		got, err := LookPath(tt.command, ws, tt.pathEnv)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("LookPath(%q, %q) = %q, want error %q", tt.command, tt.pathEnv, got, tt.want)
		case tt.wantErr && !strings.Contains(err.Error(), tt.want):
			t.Errorf("LookPath(%q, %q) error %q, want it to contain %q", tt.command, tt.pathEnv, err, tt.want)
		case !tt.wantErr && (err != nil || got != tt.want):
			t.Errorf("LookPath(%q, %q) = %q, %v; want %q", tt.command, tt.pathEnv, got, err, tt.want)
		}
	}
}
