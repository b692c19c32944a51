package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/world"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

const usageHead = `terrarium hosts multi-agent simulations: an embedded NATS bus, one OS
process per agent, and a world loop stepping the shared world.

Usage:
`

const usageTail = `
Run 'terrarium COMMAND -h' for a command's flags.
Exit codes: 0 ok, 1 run failed, 2 bad usage or scenario, 130 interrupted.
`

// command is one subcommand. Each lives in its own file and registers itself
// from init, so adding one touches no other command.
type command struct {
	name    string
	order   int    // place in the usage text
	usage   string // e.g. "run [flags] SCENARIO.hcl"
	summary string // one line
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("terrarium: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func usageText() string {
	cs := make([]command, 0, len(commands))
	for _, c := range commands {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].order != cs[j].order {
			return cs[i].order < cs[j].order
		}
		return cs[i].name < cs[j].name
	})
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range cs {
		fmt.Fprintf(&b, "  terrarium %-28s %s\n", c.usage, c.summary)
	}
	b.WriteString(usageTail)
	return b.String()
}

// Main is the whole CLI; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return exitUsage
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, terrarium.VersionString())
		return exitOK
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			return Main([]string{args[1], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usageText())
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "terrarium: unknown command %q\n\n%s", args[0], usageText())
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func init() {
	register(command{name: "version", order: 100, usage: "version", summary: "print the version"})
}

// logFlags are the logging flags every command has.
type logFlags struct {
	level string
	json  bool
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "warn", "log level: trace, debug, info, warn, error, off")
	fs.BoolVar(&l.json, "log-json", false, "write logs as JSON lines")
}

func (l *logFlags) logger(w io.Writer) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(l.level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("unknown --log-level %q (trace, debug, info, warn, error, off)", l.level)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "terrarium", Level: lvl, Output: w, JSONFormat: l.json,
		Color: hclog.ColorOff, TimeFormat: "15:04:05.000",
	}), nil
}

func newFlagSet(name, synopsis, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: terrarium %s\n\n%s", synopsis, help)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(stderr, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags, which may come before or after the arguments
// ("run x.hcl --quiet"); "--" ends the flags. It returns ok=false with the
// exit code to use.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK, false
			}
			return exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse the collected arguments again so fs.Args() returns them.
	_ = fs.Parse(append([]string{"--"}, positional...))
	return 0, true
}

func printTable(w io.Writer, t world.Table) {
	if t.Title != "" {
		fmt.Fprintf(w, "\n%s\n", t.Title)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Columns, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}
