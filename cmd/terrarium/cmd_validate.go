package main

import (
	"fmt"
	"io"

	"github.com/terrarium-sim/terrarium/scenarios"
)

func init() {
	register(command{name: "validate", order: 20, usage: "validate SCENARIO.hcl...", summary: "check scenario files, report every problem", run: cmdValidate})
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "validate SCENARIO.hcl...",
		"Checks scenario files without running anything and reports every problem\nwith file:line:column. Exit code 2 if any file has errors.\n", stderr)
	var vars varFlags
	fs.Var(&vars, "var", "set a scenario variable, name=value (repeatable)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "terrarium validate: no scenario file given")
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	for _, path := range fs.Args() {
		sc, diags := scenarios.LoadWith(path, scenarios.LoadOptions{Vars: vars.values})
		if diags.HasErrors() {
			scenarios.FormatDiagnostics(stderr, diags)
			code = exitUsage
			continue
		}
		if len(diags) > 0 {
			scenarios.FormatDiagnostics(stderr, diags)
		}
		fmt.Fprintf(stdout, "%s: ok (scenario %q, world %s, %d agents)\n", path, sc.Name, sc.World.Kind, len(sc.Seats()))
	}
	return code
}
