package terrarium_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
	"github.com/terrarium-sim/terrarium/world/game"
)

// protoVictim is the agent test_proto_forger tries to act as and spy on.
const protoVictim = "victim"

func init() {
	builtin.Register("test_proto_forger", protoForger)
}

// protoForger plays all C, except that at tick 2 it also opens a second
// connection with its own credentials, publishes an all-D action on
// protoVictim's act subject and subscribes to protoVictim's observations.
// It answers tick 2 only after the server has refused both (the -ERRs come
// back on that connection), and it fails (exit 1) if the refusals do not
// come before the tick's deadline or if any of protoVictim's messages ever
// reach it.
func protoForger(ctx context.Context, a *sdk.Agent) error {
	run := a.RunID()
	refused := make(chan error, 16)
	nc, err := nats.Connect(os.Getenv(agents.EnvNATSURL),
		nats.Name(a.ID()+"-forger"),
		nats.UserInfo(os.Getenv(agents.EnvNATSUser), os.Getenv(agents.EnvNATSPass)),
		nats.CustomInboxPrefix(os.Getenv(agents.EnvInboxPrefix)),
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				select {
				case refused <- err:
				default:
				}
			}
		}))
	if err != nil {
		return fmt.Errorf("second connection: %w", err)
	}
	defer nc.Close()
	snooped := make(chan string, 64)

	forge := func(obs sdk.Observation) error {
		if _, err := nc.Subscribe(bus.ToSubject(run, protoVictim, bus.KindObs), func(m *nats.Msg) {
			select {
			case snooped <- m.Subject:
			default:
			}
		}); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		forged, err := bus.Encode(bus.Envelope{Kind: bus.KindAct, Run: run, Agent: protoVictim, Tick: uint64(obs.Tick), Seq: 1, Data: allMoves(obs, "D")})
		if err != nil {
			return err
		}
		if err := nc.Publish(bus.AgentSubject(run, protoVictim, bus.KindAct), forged); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if err := nc.Flush(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		deadline := time.NewTimer(time.Until(obs.Deadline))
		defer deadline.Stop()
		var pub, sub bool
		for !pub || !sub {
			select {
			case err := <-refused:
				pub = pub || strings.Contains(err.Error(), "Publish to")
				sub = sub || strings.Contains(err.Error(), "Subscription to")
			case <-deadline.C:
				return fmt.Errorf("tick %d: the server did not refuse both (publish %v, subscribe %v)", obs.Tick, pub, sub)
			case <-a.Done():
				return a.Err()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	err = serve(ctx, a, func(obs sdk.Observation) error {
		if obs.Tick == 2 {
			if err := forge(obs); err != nil {
				return err
			}
		}
		return a.Act(obs.Tick, allMoves(obs, "C"))
	})
	select {
	case s := <-snooped:
		return errors.Join(err, fmt.Errorf("received a message for %s on %s", protoVictim, s))
	default:
	}
	return err
}

// buildExample builds the standalone Go example agent into a temp dir.
func buildExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tit_for_tat")
	cmd := exec.Command("go", "build", "-o", bin, "./agents/examples/go/tit_for_tat")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the example agent: %v\n%s", err, out)
	}
	return bin
}

func TestNATSRuntimeGoAgent(t *testing.T) {
	bin := buildExample(t)
	sc := writeScenario(t, fmt.Sprintf(`
scenario "nats_go" {
  ticks           = 20
  action_deadline = "5s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = 20
}
agent "tft" {
  runtime = "nats"
  command = %q
}
agent "defector" {
  runtime = "builtin"
  command = "defector"
}
agent "cooperator" {
  runtime = "builtin"
  command = "cooperator"
}
`, bin))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	checkTFTRun(t, res)
	var spawned bool
	for _, r := range kinds(recs, events.AgentSpawned) {
		if r.Agent == "tft" {
			spawned = true
			var d struct{ Runtime, Command string }
			if err := json.Unmarshal(r.Data, &d); err != nil || d.Runtime != "nats" || d.Command != bin {
				t.Errorf("agent.spawned for tft: %s, want runtime nats, command %s", r.Data, bin)
			}
		}
	}
	if !spawned {
		t.Error("no agent.spawned event for tft")
	}
}

func TestAgentCannotImpersonateOrSnoop(t *testing.T) {
	const rounds = 10
	sc := writeScenario(t, fmt.Sprintf(`
scenario "forgery" {
  ticks           = %d
  action_deadline = "5s"
}
world "repeated_game" {
  game   = "prisoners_dilemma"
  rounds = %d
}
agent "forger" {
  runtime = "builtin"
  command = "test_proto_forger"
}
agent %q {
  runtime = "builtin"
  command = "cooperator"
}
`, rounds, rounds, protoVictim))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != rounds {
		t.Fatalf("status %s after %d ticks, want finished after %d", res.Status, res.Ticks, rounds)
	}
	if fin := kinds(recs, events.RunFinished); len(fin) != 1 || !strings.Contains(string(fin[0].Data), `"status":"finished"`) {
		t.Errorf("run.finished = %+v", fin)
	}

	// Both refusals are violations of the forger, naming the victim's subjects.
	// The forger answered tick 2 only after both -ERRs reached it, and the
	// server queues a violation report right after sending the -ERR, so the
	// reports reach the event log during the run, ticks before its end.
	run := res.Run
	wantViolations := map[string]string{
		bus.OpPublish:   bus.AgentSubject(run, protoVictim, bus.KindAct),
		bus.OpSubscribe: bus.ToSubject(run, protoVictim, bus.KindObs),
	}
	seen := map[string]bool{}
	for _, r := range kinds(recs, events.Violation) {
		var d struct{ Op, Subject, Reason string }
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		if r.Agent != "forger" || wantViolations[d.Op] != d.Subject {
			t.Errorf("unexpected violation: agent %q %s", r.Agent, r.Data)
			continue
		}
		seen[d.Op] = true
	}
	for op, subj := range wantViolations {
		if !seen[op] {
			t.Errorf("no %s violation of forger on %s", op, subj)
		}
	}

	// The victim's applied actions are its own: C in its one match, every tick.
	closed := kinds(recs, world.EventTickClosed)
	if len(closed) != rounds {
		t.Fatalf("%d tick.closed events, want %d", len(closed), rounds)
	}
	for _, r := range closed {
		var d struct {
			Actions []struct {
				Agent  string          `json:"agent"`
				Filled string          `json:"filled"`
				Data   json.RawMessage `json:"data"`
			} `json:"actions"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, a := range d.Actions {
			if a.Agent != protoVictim {
				continue
			}
			found = true
			var act game.Action
			if err := json.Unmarshal(a.Data, &act); err != nil || a.Filled != "" || len(act.Moves) != 1 || act.Moves["m01"] != "C" {
				t.Errorf("tick %d: victim's applied action %s (filled %q), want its own {\"moves\":{\"m01\":\"C\"}}", r.Tick, a.Data, a.Filled)
			}
		}
		if !found {
			t.Errorf("tick %d: no action of the victim applied", r.Tick)
		}
	}
	// All C against all C: R=3 a round each. A forged D applied at tick 2
	// would have given the victim 3*rounds+2 and the forger 3*rounds-3.
	if got := scores(t, res); got[protoVictim] != 3*rounds || got["forger"] != 3*rounds {
		t.Errorf("scores %v, want %d each", got, 3*rounds)
	}
	for _, a := range res.Agents {
		if a.Actions != rounds || a.Missing != 0 || a.Late != 0 || a.Rejected != 0 {
			t.Errorf("agent %s: %+v, want %d clean actions", a.ID, a.AgentStats, rounds)
		}
	}
	// The forger saw both refusals and none of the victim's messages.
	if f := agentResult(t, res, "forger"); f.Status != "stopped" || f.ExitCode != 0 {
		t.Errorf("forger: status %s exit %d, want stopped with 0 (its stderr is in the test log)", f.Status, f.ExitCode)
	}
}

// checkTFTRun checks a 20-round run of an external tit-for-tat agent "tft"
// against builtin defector and cooperator: exact scores, clean actions,
// normal stops.
func checkTFTRun(t *testing.T, res *terrarium.Result) {
	t.Helper()
	if res.Status != terrarium.StatusFinished || res.Ticks != 20 {
		t.Fatalf("status %s after %d ticks, want finished after 20", res.Status, res.Ticks)
	}
	// Payoffs R=3 (C,C), S=0 (C against D), T=5 (D against C), P=1 (D,D).
	// tft vs defector: tft plays C then copies D: round 1 S/T, rounds 2-20 P/P.
	// tft vs cooperator: C,C every round: R/R. defector vs cooperator: T/S.
	want := map[string]float64{
		"tft":        (0 + 19*1) + 20*3, // 79
		"defector":   (5 + 19*1) + 20*5, // 124
		"cooperator": 20*3 + 20*0,       // 60
	}
	if got := scores(t, res); len(got) != len(want) || got["tft"] != want["tft"] || got["defector"] != want["defector"] || got["cooperator"] != want["cooperator"] {
		t.Errorf("scores %v, want %v", got, want)
	}
	for _, a := range res.Agents {
		if a.Actions != 20 || a.Missing != 0 || a.Late != 0 || a.Rejected != 0 {
			t.Errorf("agent %s: %+v, want 20 clean actions", a.ID, a.AgentStats)
		}
		if a.Status != "stopped" || a.ExitCode != 0 {
			t.Errorf("agent %s: status %s exit %d, want stopped with 0", a.ID, a.Status, a.ExitCode)
		}
	}
}
