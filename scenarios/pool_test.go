package scenarios_test

import (
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/scenarios"
)

const poolWorld = `
scenario "p" {
  ticks = 1
}
world "test_kind" {}
`

func TestPoolBlockSplitsIntoPools(t *testing.T) {
	s, diags := scenarios.Parse([]byte(poolWorld+`
agent "crowd" {
  runtime   = "pool"
  command   = "ack-pool"
  count     = 2500
  pool_size = 1000
}
agent "small" {
  runtime = "pool"
  command = "ack-pool"
  count   = 3
}`), "p.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	pools := s.Agents[0].Pools()
	if len(pools) != 3 || len(pools[0]) != 1000 || len(pools[2]) != 500 || pools[0][0] != "crowd-1" || pools[2][499] != "crowd-2500" {
		t.Errorf("crowd pools: %d, sizes %d..%d", len(pools), len(pools[0]), len(pools[len(pools)-1]))
	}
	if s.Agents[0].PoolID(3) != "crowd-pool-3" {
		t.Errorf("PoolID(3) = %s", s.Agents[0].PoolID(3))
	}
	if p := s.Agents[1].Pools(); len(p) != 1 || len(p[0]) != 3 || s.Agents[1].PoolSize != 3 {
		t.Errorf("small: default pool_size %d, pools %v; want one pool of 3", s.Agents[1].PoolSize, p)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	// HCL round trip keeps pool_size.
	s2, diags := scenarios.Parse(s.HCL(), "again.hcl")
	if diags.HasErrors() || s2.Agents[0].PoolSize != 1000 {
		t.Errorf("round trip: pool_size %v, %s", s2, diags)
	}
}

func TestPoolBlockMistakes(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`runtime = "builtin"
  command = "ack"
  pool_size = 10`, `pool_size needs runtime "pool"`},
		{`runtime = "pool"
  command = "ack-pool"
  pool_size = 0`, "pool_size"},
		{`runtime = "pool"
  command = "ack-pool"
  restart = "always"`, `restart is not supported for runtime "pool"`},
		{`runtime = "pool"
  command = "ack-pool"
  max_turns = 3`, `max_turns is not supported for runtime "pool"`},
		{`runtime = "pool"
  command = "./no-such-pool"`, "no-such-pool"},
	} {
		_, diags := scenarios.Parse([]byte(poolWorld+"agent \"crowd\" {\n  "+c.body+"\n}\n"), "p.hcl")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) {
			t.Errorf("%s: diagnostics %q, want an error mentioning %q", c.body, diags.Error(), c.want)
		} else if !strings.Contains(diags.Error(), "p.hcl:") {
			t.Errorf("%s: %q has no file:line", c.body, diags.Error())
		}
	}
}
