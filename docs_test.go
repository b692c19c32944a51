package terrarium_test

import (
	"os"
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"
)

// Every event kind the code emits has its section in docs/events.md.
func TestEveryEventKindIsDocumented(t *testing.T) {
	b, err := os.ReadFile("docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, k := range []string{
		events.RunStarted, events.RunFinished, events.AgentSpawned, events.AgentReady,
		events.AgentExited, events.AgentRestarting, events.AgentFailed, events.AgentUnhealthy, events.AgentSpent, terrarium.EventAgentLimits, terrarium.EventAgentLimitHit, events.Violation, events.BadMessage, events.MessagesDropped,
		events.LLMResult, events.LLMSession, events.LLMStopped,
		world.EventTickClosed, world.EventTickLag, world.EventRunPaused, world.EventRunUnpaused, world.EventActionLate, world.EventActionRejected, world.EventActionMissing,
		events.RunResumed, events.CheckpointWritten, events.CheckpointFailed,
		workspace.EventLeaseRequested, workspace.EventLeaseGranted, workspace.EventLeaseRenewed, workspace.EventLeaseReleased,
		workspace.EventLeaseExpired, workspace.EventLeaseRefused, workspace.EventFileChanged, workspace.EventFileCommitted,
		workspace.EventFileVersion, workspace.EventFileRestored, workspace.EventViolation, workspace.EventRescan,
	} {
		if !strings.Contains(doc, "### `"+k+"`") {
			t.Errorf("docs/events.md has no section for %q", k)
		}
	}
}
