package terrarium_test

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/terrarium-sim/terrarium/agents"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/bus"
	"github.com/terrarium-sim/terrarium/workspace"
	"github.com/terrarium-sim/terrarium/world"

	"testing"
)

func init() {
	// Sends malformed lease requests on its own connection (with its own
	// credentials) and reports the host's answers.
	builtin.Register("lease_hostile", scripted(map[world.Tick]stepFunc{
		1: func(ctx context.Context, a *sdk.Agent, r *report) error {
			nc, err := nats.Connect(os.Getenv(agents.EnvNATSURL),
				nats.UserInfo(os.Getenv(agents.EnvNATSUser), os.Getenv(agents.EnvNATSPass)),
				nats.CustomInboxPrefix(os.Getenv(agents.EnvInboxPrefix)))
			if err != nil {
				return err
			}
			defer nc.Close()
			subj := bus.AgentSubject(a.RunID(), a.ID(), bus.KindLease)
			ask := func(name string, payload []byte) {
				m, err := nc.Request(subj, payload, 10*time.Second)
				if err != nil {
					r.set(name, "error: "+err.Error())
					return
				}
				env, err := bus.Decode(m.Data, a.RunID())
				if err != nil {
					r.set(name, "bad reply: "+err.Error())
					return
				}
				var rep workspace.Reply
				_ = json.Unmarshal(env.Data, &rep)
				r.set(name, rep.Error)
				r.set(name+"_reason", rep.Reason)
			}
			envelope := func(data string) []byte {
				b, _ := bus.Encode(bus.Envelope{Kind: bus.KindLease, Run: a.RunID(), Agent: a.ID(), Data: json.RawMessage(data)})
				return b
			}
			ask("not_json", []byte("{{{"))
			ask("bad_data", envelope(`"acquire please"`))
			ask("unknown_op", envelope(`{"op":"steal","path":"x"}`))
			ask("forged_token", envelope(`{"op":"release","token":1}`))
			ask("nul_path", envelope(`{"op":"acquire","path":"a\u0000b"}`))
			return nc.Publish(subj, envelope(`{"op":"acquire","path":"x"}`)) // no reply subject
		},
	}, nil))
}

// A hostile agent's lease messages get clear refusals, and the run goes on.
func TestLeaseHostileMessages(t *testing.T) {
	lr := runLeaseCase(t, workspace.Detect, leaseCase{agents: `
agent "h" {
  runtime = "builtin"
  command = "lease_hostile"
}`})
	r := lr.report(t, "h")
	for k, want := range map[string]string{
		"not_json": workspace.CodeBadRequest, "bad_data": workspace.CodeBadRequest, "unknown_op": workspace.CodeBadRequest,
		"forged_token": workspace.CodeStaleToken, "nul_path": workspace.CodeBadPath,
	} {
		if r[k] != want || r[k+"_reason"] == "" {
			t.Errorf("%s: %v (%v), want %s with a reason", k, r[k], r[k+"_reason"], want)
		}
	}
	rejected := false
	for _, rec := range kinds(lr.recs, "message.rejected") {
		if rec.Agent == "h" {
			rejected = true
		}
	}
	if !rejected {
		t.Error("a lease message without a reply subject was not reported (message.rejected)")
	}
}
