package terrarium_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/events"
	"github.com/terrarium-sim/terrarium/world"
)

// Test pools, run by the builtin runtime inside this test binary. Each
// member answers {"me":"<its id>"}, so a recorded action shows whose it is.

func meAction(agent string) json.RawMessage { return json.RawMessage(`{"me":"` + agent + `"}`) }

func init() {
	// test_pool_me fails unless every observation message holds all its
	// members (one message per tick), and answers each in one message.
	builtin.RegisterPool("test_pool_me", func(ctx context.Context, p *sdk.Pool) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-p.Done():
				return p.Err()
			case b := <-p.Batches():
				if len(b.Obs) != len(p.Members()) {
					return fmt.Errorf("tick %d: a batch of %d observations, want all %d members in one", b.Tick, len(b.Obs), len(p.Members()))
				}
				acts := make([]sdk.PoolEntry, len(b.Obs))
				for i, o := range b.Obs {
					acts[i] = sdk.PoolEntry{Agent: o.Agent, Data: meAction(o.Agent)}
				}
				if err := p.Act(b.Tick, acts); err != nil {
					return err
				}
			}
		}
	})
	// crowd-3 never answers; the rest do.
	builtin.RegisterPool("test_pool_skip_3", builtin.ServePool(func(_ context.Context, agent string, _ sdk.Observation) (any, error) {
		if agent == "crowd-3" {
			return nil, sdk.ErrNoAction
		}
		return meAction(agent), nil
	}))
	// The pool serving crowd-1 dies at tick 3.
	builtin.RegisterPool("test_pool_crash_at_3", builtin.ServePool(func(_ context.Context, agent string, obs sdk.Observation) (any, error) {
		if agent == "crowd-1" && obs.Tick == 3 {
			os.Exit(5)
		}
		return meAction(agent), nil
	}))
	// At tick 2 it also acts for "loner", an agent outside it: once inside
	// its batch (the host refuses it) and once on loner's own subject, over a
	// second connection with its own credentials (the bus refuses it).
	builtin.RegisterPool("test_pool_impostor", func(ctx context.Context, p *sdk.Pool) error {
		return p.Run(ctx, func(_ context.Context, agent string, obs sdk.Observation) (any, error) {
			if agent == p.Members()[0] && obs.Tick == 2 {
				if err := p.Act(obs.Tick, []sdk.PoolEntry{{Agent: "loner", Data: meAction("crowd-1")}}); err != nil {
					return nil, err
				}
				if err := publishAs(p, "loner", obs.Tick); err != nil {
					return nil, err
				}
			}
			return meAction(agent), nil
		})
	})
}

// publishAs publishes an act on agent id's own subject with the pool's
// credentials.
func publishAs(p *sdk.Pool, id string, t world.Tick) error {
	nc, err := nats.Connect(os.Getenv(agents.EnvNATSURL), nats.UserInfo(os.Getenv(agents.EnvNATSUser), os.Getenv(agents.EnvNATSPass)),
		nats.CustomInboxPrefix(os.Getenv(agents.EnvInboxPrefix)))
	if err != nil {
		return err
	}
	defer nc.Close()
	b, err := bus.Encode(bus.Envelope{Kind: bus.KindAct, Run: os.Getenv(agents.EnvRun), Agent: id, Tick: uint64(t), Data: meAction("crowd-1")})
	if err != nil {
		return err
	}
	if err := nc.Publish(bus.AgentSubject(os.Getenv(agents.EnvRun), id, bus.KindAct), b); err != nil {
		return err
	}
	return nc.Flush()
}

func poolScenario(command string, count, poolSize, ticks int, extra string) string {
	return fmt.Sprintf(`
scenario "pools" {
  ticks           = %d
  action_deadline = "60s"
}
world "echo" {}
agent "crowd" {
  runtime   = "pool"
  command   = %q
  count     = %d
  pool_size = %d
}
%s`, ticks, command, count, poolSize, extra)
}

// tickActions returns, per closed tick, the applied actions by agent.
func poolTickActions(t *testing.T, recs []events.Record) map[world.Tick]map[string]world.AppliedAction {
	t.Helper()
	out := map[world.Tick]map[string]world.AppliedAction{}
	for _, r := range kinds(recs, world.EventTickClosed) {
		var d struct{ Actions []world.AppliedAction }
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("tick.closed %d: %v", r.Tick, err)
		}
		m := map[string]world.AppliedAction{}
		for _, a := range d.Actions {
			m[string(a.Agent)] = a
		}
		out[world.Tick(r.Tick)] = m
	}
	return out
}

func TestPoolRunRecordsEveryMemberUnderItsOwnID(t *testing.T) {
	const ticks = 5
	res, recs, err := runScenario(t, writeScenario(t, poolScenario("test_pool_me", 100, 50, ticks, "")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != ticks {
		t.Fatalf("status %s ticks %d", res.Status, res.Ticks)
	}
	pids := map[int]int{}
	for _, r := range kinds(recs, events.AgentSpawned) {
		var d struct {
			Pid  int
			Pool string
		}
		_ = json.Unmarshal(r.Data, &d)
		if d.Pool == "" {
			t.Errorf("agent.spawned of %s names no pool: %s", r.Agent, r.Data)
		}
		pids[d.Pid]++
	}
	if len(pids) != 2 {
		t.Errorf("pool processes %v, want 2 pids with 50 members each", pids)
	}
	for _, n := range pids {
		if n != 50 {
			t.Errorf("pool processes %v, want 50 members each", pids)
		}
	}
	byTick := poolTickActions(t, recs)
	for tk := world.Tick(1); tk <= ticks; tk++ {
		acts := byTick[tk]
		if len(acts) != 100 {
			t.Fatalf("tick %d: %d actions, want 100", tk, len(acts))
		}
		for i := 1; i <= 100; i++ {
			id := fmt.Sprintf("crowd-%d", i)
			a := acts[id]
			if a.Filled != "" || string(a.Data) != string(meAction(id)) {
				t.Fatalf("tick %d agent %s: recorded %+v (data %s), want its own action %s", tk, id, a, a.Data, meAction(id))
			}
		}
	}
	for _, ar := range res.Agents {
		if ar.Actions != ticks || ar.Status != "stopped" {
			t.Errorf("agent %s: %+v, want %d actions, stopped", ar.ID, ar, ticks)
		}
	}
}

func TestPoolMemberWithoutActionGetsThePolicy(t *testing.T) {
	sc := writeScenario(t, strings.Replace(poolScenario("test_pool_skip_3", 10, 5, 3, ""), `action_deadline = "60s"`, `action_deadline = "300ms"`, 1))
	res, recs, err := runScenario(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	for tk, acts := range poolTickActions(t, recs) {
		if a := acts["crowd-3"]; a.Filled != world.PolicyDefault {
			t.Errorf("tick %d: crowd-3 recorded %+v, want filled by the default policy", tk, a)
		}
		for i := 1; i <= 10; i++ {
			id := fmt.Sprintf("crowd-%d", i)
			if id != "crowd-3" && string(acts[id].Data) != string(meAction(id)) {
				t.Errorf("tick %d: %s recorded %+v, want its own action", tk, id, acts[id])
			}
		}
	}
	missing := 0
	for _, r := range kinds(recs, world.EventActionMissing) {
		if r.Agent != "crowd-3" {
			t.Errorf("action.missing for %s", r.Agent)
		}
		missing++
	}
	if missing != 3 {
		t.Errorf("%d action.missing events, want 3", missing)
	}
	if ar := agentResult(t, res, "crowd-3"); ar.Missing != 3 || ar.Actions != 0 {
		t.Errorf("crowd-3 result %+v, want 3 missing", ar)
	}
	if ar := agentResult(t, res, "crowd-4"); ar.Actions != 3 {
		t.Errorf("crowd-4 result %+v, want 3 actions", ar)
	}
}

func TestPoolCrashExitsAllItsMembers(t *testing.T) {
	// crowd-1..5 share the pool that crashes at tick 3; crowd-6..10 play on.
	res, recs, err := runScenario(t, writeScenario(t, poolScenario("test_pool_crash_at_3", 10, 5, 5, "")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != terrarium.StatusFinished || res.Ticks != 5 {
		t.Fatalf("status %s ticks %d", res.Status, res.Ticks)
	}
	exited := map[string]bool{}
	for _, r := range kinds(recs, events.AgentExited) {
		if strings.Contains(string(r.Data), `"during_run":true`) {
			exited[string(r.Agent)] = true
		}
	}
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("crowd-%d", i)
		ar := agentResult(t, res, id)
		if i <= 5 {
			if !exited[id] || ar.Status != "exited" || ar.ExitCode != 5 || ar.Actions != 2 {
				t.Errorf("%s: exited event %v, result %+v; want exited with code 5 after 2 actions", id, exited[id], ar)
			}
		} else if exited[id] || ar.Status != "stopped" || ar.Actions != 5 {
			t.Errorf("%s: exited event %v, result %+v; want stopped after 5 actions", id, exited[id], ar)
		}
	}
	for tk, acts := range poolTickActions(t, recs) {
		if _, ok := acts["crowd-1"]; ok && tk >= 3 {
			t.Errorf("tick %d applied an action for crowd-1 after its pool died", tk)
		}
	}
}

func TestPoolCannotActForAnOutsider(t *testing.T) {
	loner := `
agent "loner" {
  runtime = "builtin"
  command = "ack"
}`
	res, recs, err := runScenario(t, writeScenario(t, poolScenario("test_pool_impostor", 4, 4, 3, loner)))
	if err != nil {
		t.Fatal(err)
	}
	var inBatch, onBus bool
	for _, r := range kinds(recs, events.Violation) {
		s := string(r.Data)
		switch {
		case strings.Contains(s, `not one of its members`) && strings.Contains(s, `"pool":"crowd-pool-1"`):
			inBatch = true
		case strings.Contains(s, `"op":"publish"`) && strings.Contains(s, bus.AgentSubject(res.Run, "loner", bus.KindAct)):
			onBus = true
		}
	}
	if !inBatch || !onBus {
		t.Errorf("violations: in the batch %v, on loner's subject %v; want both; events: %v", inBatch, onBus, kinds(recs, events.Violation))
	}
	for tk, acts := range poolTickActions(t, recs) {
		if a := acts["loner"]; string(a.Data) != `{"ok":true}` {
			t.Errorf("tick %d: loner's recorded action %s, want its own", tk, a.Data)
		}
	}
	if ar := agentResult(t, res, "loner"); ar.Rejected != 0 || ar.Actions != 3 {
		t.Errorf("loner result %+v", ar)
	}
}
