package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/terrarium-sim/terrarium/agents/sdk"
)

// The shared-notebook agents (scenarios/shared-notebook.hcl) play the
// "turns" world: their work is in the shared tree.
//
//   - notebook_writer: on its turn appends a line to notebook.md, and every
//     tick an idea to ideas.md (all writers queue for that lease, first
//     come first served): each time it takes the lease (waiting for it),
//     appends, commits with the hash of what it wrote and releases. A
//     commit refused because the file holds something else (someone wrote
//     into it) is retried with the writer's own content.
//   - notebook_rogue: on its turn writes into notebook.md without a lease,
//     alternating an in-place append with a replace (a temporary file
//     renamed over it). With enforcement "permissions" it is refused
//     (EACCES); with "detect" the host restores the last committed version.
func init() {
	Register("notebook_writer", notebookWriter)
	Register("notebook_rogue", notebookRogue)
}

// notebookFiles are the shared files the notebook agents extend.
var notebookFiles = []string{"notebook.md", "ideas.md"}

type turnsObs struct {
	Tick uint64 `json:"tick"`
	Turn string `json:"turn"`
}

func notebookWriter(ctx context.Context, a *sdk.Agent) error {
	log := hclogFor(a)
	return a.Run(ctx, func(ctx context.Context, obs sdk.Observation) (any, error) {
		var o turnsObs
		if err := json.Unmarshal(obs.Data, &o); err != nil {
			return nil, fmt.Errorf("observation: %w", err)
		}
		if o.Turn == a.ID() {
			line := fmt.Sprintf("- tick %d: %s takes its turn\n", o.Tick, a.ID())
			if err := appendUnderLease(ctx, a, notebookFiles[0], line); err != nil {
				log(fmt.Sprintf("tick %d: %s: %v", o.Tick, notebookFiles[0], err))
			}
		}
		// Every writer adds an idea every tick: they queue for its lease.
		line := fmt.Sprintf("- tick %d: an idea from %s\n", o.Tick, a.ID())
		if err := appendUnderLease(ctx, a, notebookFiles[1], line); err != nil {
			log(fmt.Sprintf("tick %d: %s: %v", o.Tick, notebookFiles[1], err))
		}
		return map[string]any{}, nil
	})
}

// appendUnderLease appends line to the shared file rel under its lease.
func appendUnderLease(ctx context.Context, a *sdk.Agent, rel, line string) error {
	l, err := a.Acquire(ctx, rel, sdk.AcquireOptions{Wait: 3 * time.Second})
	if err != nil {
		return err
	}
	path := filepath.Join(a.Shared(), rel)
	old, err := os.ReadFile(path)
	if err != nil {
		_, _ = a.Release(ctx, l.Token)
		return err
	}
	want := append(old, line...)
	var cerr error
	for attempt := 0; attempt < 5; attempt++ {
		if err := os.WriteFile(path, want, 0o664); err != nil { // in place: the lease opens the file, not the directory
			cerr = err
			break
		}
		// The hash of what it wrote, not of what the file holds: if anyone
		// else wrote into the file meanwhile, the host refuses the commit.
		sum := sdk.HashBytes(want)
		if _, cerr = a.Commit(ctx, l.Token, "", sum); !errors.Is(cerr, sdk.ErrHashMismatch) {
			break
		}
		time.Sleep(20 * time.Millisecond) // someone wrote into it: write ours again
	}
	if _, err := a.Release(ctx, l.Token); err != nil && cerr == nil {
		cerr = err
	}
	return cerr
}

func notebookRogue(ctx context.Context, a *sdk.Agent) error {
	log := hclogFor(a)
	attempt := 0
	return a.Run(ctx, func(ctx context.Context, obs sdk.Observation) (any, error) {
		var o turnsObs
		if err := json.Unmarshal(obs.Data, &o); err != nil {
			return nil, fmt.Errorf("observation: %w", err)
		}
		if o.Turn != a.ID() {
			return map[string]any{}, nil
		}
		attempt++
		path := filepath.Join(a.Shared(), notebookFiles[0])
		var err error
		if attempt%2 == 1 {
			var f *os.File
			if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				_, err = fmt.Fprintf(f, "- tick %d: the rogue scribbles here\n", o.Tick)
				f.Close()
			}
		} else {
			tmp := path + ".tmp"
			if err = os.WriteFile(tmp, []byte("the rogue replaced everything\n"), 0o644); err == nil {
				err = os.Rename(tmp, path)
			}
		}
		if err != nil {
			log(fmt.Sprintf("tick %d: write without a lease prevented: %v", o.Tick, err))
		} else {
			log(fmt.Sprintf("tick %d: wrote without a lease", o.Tick))
		}
		return map[string]any{}, nil
	})
}

// hclogFor prints a line on the agent's stderr (its log file).
func hclogFor(a *sdk.Agent) func(string) {
	return func(s string) { fmt.Fprintf(os.Stderr, "%s: %s\n", a.ID(), s) }
}
