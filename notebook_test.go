package terrarium_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/internal/leaktest"
	"github.com/terrarium-sim/terrarium/internal/testenv"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world/turns"
)

// scenarios/shared-notebook.hcl, shortened to 10 ticks, in both modes: the
// rogue's turns (ticks 1 and 6: seats in id order, the rogue first) are
// prevented or detected and restored; every writer's edit is committed.
func TestSharedNotebook(t *testing.T) {
	for _, mode := range leaseModes {
		t.Run(mode, func(t *testing.T) {
			users := terrarium.AgentUsersOff
			if mode == workspace.Permissions {
				if os.Geteuid() != 0 {
					testenv.Missing(t, "permissions mode needs root")
				}
				users = terrarium.AgentUsersOn
			}
			sc := loadScenario(t, filepath.Join("scenarios", "shared-notebook.hcl"))
			const ticks = 10
			sc.Ticks = ticks
			sc.World.Config.(*turns.Config).Rounds = ticks
			sc.Workspace.Enforcement = mode
			leaktest.Goroutines(t)
			h, err := terrarium.New(terrarium.Config{Scenario: sc, Logger: testLogger(t), Dir: filepath.Join(openTempDir(t), "run"), Env: raceEnv, AgentUsers: users})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := h.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := events.ReadFile(filepath.Join(res.Dir, "events.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			assertNoAgentsLeft(t, recs)
			checkDocumented(t, recs)
			ws := res.Workspace
			// Writers: one idea each per tick, plus the notebook on their
			// turns (8 of the 10 ticks; the rogue has the other 2).
			if want := 4*ticks + 8; ws.EditsCommitted != want {
				t.Errorf("edits committed %d, want %d", ws.EditsCommitted, want)
			}
			if mode == workspace.Detect {
				if ws.Violations != 2 || ws.Restored != 2 {
					t.Errorf("detect: %d violations, %d restored; want the rogue's 2 of each", ws.Violations, ws.Restored)
				}
			} else if ws.Violations != 0 {
				t.Errorf("permissions: %d violations, want none (the rogue is refused)", ws.Violations)
			}
			b, err := os.ReadFile(filepath.Join(res.Dir, "workspace", "shared", "notebook.md"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "the rogue") || strings.Count(string(b), "takes its turn") != 8 {
				t.Errorf("notebook.md:\n%s", b)
			}
			logb, _ := os.ReadFile(filepath.Join(res.Dir, "logs", "rogue.log"))
			if mode == workspace.Permissions && strings.Count(string(logb), "prevented") != 2 {
				t.Errorf("rogue log: want its 2 writes prevented:\n%s", logb)
			}
		})
	}
}
