// Command npc-arena is a small game server that embeds Terrarium: a grid
// arena where chasers hunt runners and traders swap goods. Chasers are
// processes (the builtin runtime re-executes this binary), runners and
// traders an in-process crowd. The game owns its tick loop: it calls
// Host.Step once per frame and draws the arena in the terminal.
//
//	go run ./cmd/npc-arena                 # live view until Ctrl-C
//	go run ./cmd/npc-arena --frames 100    # headless: 100 frames, then a summary
//
// When ANTHROPIC_API_KEY is set (or with --llm N), LLM NPCs join: chasers
// played by a model through the claude runtime (the claude CLI, playing
// through the host's MCP tools; docs/llm-agents.md), drawn as L. In
// realtime a frame never waits for them: a model's move lands at the frame
// where it arrives, recorded with its lateness. Their spending is capped
// by --llm-max-cost.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/terrarium-sim/terrarium"
	"github.com/terrarium-sim/terrarium/agents/builtin"
	"github.com/terrarium-sim/terrarium/agents/inproc"
	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/scenarios"
	"github.com/terrarium-sim/terrarium/world"
)

func init() {
	// The chasers' program, run in their own processes.
	builtin.Register("arena_chaser", builtin.Respond(func(_ context.Context, obs sdk.Observation) (any, error) {
		return decide(obs.Data)
	}))
}

func main() {
	builtin.Main() // the builtin runtime re-executes this binary as a chaser
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	frames           int
	fps              float64
	stepping         string
	seed             uint64
	out, runs        string
	chasers, runners int
	traders          int
	width, height    int
	logLevel         string
	llm              int     // LLM NPCs (runtime claude)
	claude           string  // the claude CLI they run
	model            string  // their model
	llmMaxCost       float64 // US dollars for all of them together
}

// llmEnv are the host variables the LLM NPCs get (nothing else of the
// host's environment reaches them): the key, and the CLI's own settings
// for where the API is and how long to wait for it.
var llmEnv = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "API_TIMEOUT_MS", "CLAUDE_CODE_MAX_RETRIES"}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "npc-arena", Output: stderr, Level: hclog.LevelFromString(o.logLevel)})
	if err := play(ctx, o, log, stdout); err != nil {
		if errors.Is(err, context.Canceled) {
			return 130 // Ctrl-C: the summary says "interrupted"
		}
		fmt.Fprintln(stderr, "npc-arena:", err)
		return 1
	}
	return 0
}

// parseFlags parses and checks the command line; errors are written to
// stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	defaultLLM := 0
	if os.Getenv("ANTHROPIC_API_KEY") != "" {
		defaultLLM = 1
	}
	fs := flag.NewFlagSet("npc-arena", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.frames, "frames", 0, "run this many frames headless, then print a summary (0: live view until Ctrl-C)")
	fs.Float64Var(&o.fps, "fps", 10, "frames (ticks) per second")
	fs.StringVar(&o.stepping, "stepping", scenarios.SteppingRealtime, `"realtime" (a frame never waits for an NPC) or "lockstep" (each frame waits for every NPC)`)
	fs.Uint64Var(&o.seed, "seed", 1, "the scenario seed")
	fs.StringVar(&o.out, "out", "", "the run directory (default RUNS/<run id>)")
	fs.StringVar(&o.runs, "runs", "runs", "where run directories are made")
	fs.IntVar(&o.chasers, "chasers", 3, "chaser NPCs (processes)")
	fs.IntVar(&o.runners, "runners", 16, "runner NPCs (in-process)")
	fs.IntVar(&o.traders, "traders", 4, "trader NPCs (in-process)")
	fs.IntVar(&o.width, "width", 32, "arena width")
	fs.IntVar(&o.height, "height", 12, "arena height")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level (trace, debug, info, warn, error)")
	fs.IntVar(&o.llm, "llm", defaultLLM, "LLM NPCs: chasers played by a model through the claude runtime (default 1 when ANTHROPIC_API_KEY is set)")
	fs.StringVar(&o.claude, "claude", scenarios.DefaultClaudeCommand, "the claude CLI the LLM NPCs run, a path or a name in PATH (default: claude in PATH, else "+pinnedClaude+", which bash .ci/deps/claude.sh installs)")
	fs.StringVar(&o.model, "model", scenarios.DefaultModel, "the LLM NPCs' model")
	fs.Float64Var(&o.llmMaxCost, "llm-max-cost", 1, "stop the LLM NPCs once they have cost this many US dollars together")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if !explicit["claude"] {
		o.claude = findClaude()
	}
	if o.llm > 0 && !explicit["llm"] {
		if _, err := exec.LookPath(o.claude); err != nil {
			// The key alone does not make a game fail: it plays on without them.
			fmt.Fprintf(stderr, "npc-arena: ANTHROPIC_API_KEY is set, but there is no claude CLI (%v): playing without LLM NPCs (install it: bash .ci/deps/claude.sh, or name one with --claude)\n", err)
			o.llm = 0
		}
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "npc-arena:", err)
		return o, err
	}
	return o, nil
}

func (o options) check() error {
	switch {
	case o.frames < 0:
		return errors.New("--frames must be >= 0")
	case o.fps <= 0 || o.fps > scenarios.MaxTickRate:
		return fmt.Errorf("--fps must be above 0 and at most %g", scenarios.MaxTickRate)
	case o.stepping != scenarios.SteppingRealtime && o.stepping != scenarios.SteppingLockstep:
		return errors.New(`--stepping must be "realtime" or "lockstep"`)
	case o.chasers < 1 || o.runners < 1 || o.traders < 0:
		return errors.New("an arena needs at least one chaser and one runner")
	case o.width < 4 || o.height < 4 || o.width > 200 || o.height > 100:
		return errors.New("--width must be 4 to 200 and --height 4 to 100")
	case o.llm < 0 || o.llm > 20:
		return errors.New("--llm must be 0 to 20")
	case o.llm > 0 && (o.claude == "" || o.model == "" || o.llmMaxCost <= 0):
		return errors.New("LLM NPCs need --claude, --model and an --llm-max-cost above 0")
	}
	return nil
}

// pinnedClaude is where bash .ci/deps/claude.sh installs the pinned claude
// CLI, relative to the repository's root.
const pinnedClaude = "agents/claude/cli/node_modules/.bin/claude"

// findClaude is the default claude CLI: "claude" in PATH, else the pinned
// one when the game runs from the repository's root.
func findClaude() string {
	if _, err := exec.LookPath(scenarios.DefaultClaudeCommand); err == nil {
		return scenarios.DefaultClaudeCommand
	}
	if p, err := filepath.Abs(pinnedClaude); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return scenarios.DefaultClaudeCommand
}

// llmPrompt is the LLM NPCs' persona, after the host's own lines.
const llmPrompt = `You are a chaser in a grid arena game. Each tick's observation is JSON: "w" and "h" are the grid's size (x grows to the east, y to the south), "me" is you (id, role, x, y) and "others" every other NPC (role "chaser", "runner" or "trader"). A runner that ends a tick within one step of a chaser (|dx|+|dy| <= 1) is caught. Each tick, call the act tool once with the action {"move": M}, where M is "N" (y-1), "S" (y+1), "E" (x+1), "W" (x-1) or "" (stay): move toward the nearest runner. Do nothing else and keep your replies short.`

// scenario declares the arena's NPCs in Go.
func (o options) scenario() *scenarios.Scenario {
	sc := scenarios.New("npc-arena")
	sc.Seed = o.seed
	if o.stepping == scenarios.SteppingRealtime {
		sc.Realtime(o.fps)
	}
	sc.Ticks = uint64(o.frames)         // headless: the run finishes with the last frame
	sc.ActionDeadline = 2 * time.Second // lockstep: a frame waits at most this long
	chaser := scenarios.NewAgent(roleChaser, scenarios.RuntimeBuiltin, "arena_chaser")
	chaser.Count, chaser.Restart = o.chasers, scenarios.RestartOnFailure
	runner := scenarios.NewAgent(roleRunner, scenarios.RuntimeInProc, roleRunner)
	runner.Count = o.runners
	sc.Add(chaser, runner)
	if o.traders > 0 {
		trader := scenarios.NewAgent(roleTrader, scenarios.RuntimeInProc, roleTrader)
		trader.Count = o.traders
		sc.Add(trader)
	}
	if o.llm > 0 {
		// A model's move takes seconds; its CLI takes a while to start.
		sc.ActionDeadline, sc.ReadyTimeout = 60*time.Second, 2*time.Minute
		sc.Budget.MaxCostUSD = o.llmMaxCost
		llm := scenarios.NewAgent(groupLLM, scenarios.RuntimeClaude, o.claude)
		llm.Count, llm.Env = o.llm, llmEnv
		llm.LLM.Model, llm.LLM.SystemPrompt = o.model, llmPrompt
		sc.Add(llm)
	}
	return sc
}

// brain is an in-process NPC: the same decide as the chasers' processes.
func brain(world.Seat) inproc.Agent {
	return inproc.Func(func(_ context.Context, obs inproc.Observation) (any, error) { return decide(obs.Data) })
}

func play(ctx context.Context, o options, log hclog.Logger, stdout io.Writer) error {
	sc := o.scenario()
	if err := sc.Check(); err != nil {
		return err
	}
	ar := newArena(o.width, o.height, sc.Seats(), o.seed)
	role := map[world.AgentID]string{} // the game's own copy: the world belongs to the loop
	for _, s := range sc.Seats() {
		role[s.ID] = s.Group
	}
	h, err := terrarium.New(terrarium.Config{
		Scenario: sc, World: ar, Logger: log, Dir: o.out, RunsDir: o.runs,
		InProc:       map[string]inproc.Factory{roleRunner: brain, roleTrader: brain},
		StepManually: true,
	})
	if err != nil {
		return err
	}
	defer h.Close()
	headless := o.frames > 0
	if o.llm > 0 && !headless {
		fmt.Fprintf(stdout, "Starting %d LLM NPCs (%s, %s)...\n", o.llm, o.claude, o.model)
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	frame := time.NewTicker(time.Duration(float64(time.Second) / o.fps))
	defer frame.Stop()
	var answered = map[string]int{}
	var frames int
loop:
	for o.frames == 0 || frames < o.frames {
		select {
		case <-ctx.Done():
			break loop // Ctrl-C: the summary, then exit 130
		case <-frame.C:
		}
		rep, err := h.Step(ctx)
		if err != nil {
			return fmt.Errorf("frame %d: %w", frames+1, err)
		}
		frames++
		for _, id := range rep.Answered {
			answered[role[id]]++
		}
		if !headless {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J", ar.Frame())
			fmt.Fprintf(stdout, "%d chasers (processes), %d runners and %d traders (in-process), %d LLM chasers (L); %.0f fps, %s. Ctrl-C ends.\n",
				o.chasers, o.runners, o.traders, o.llm, o.fps, o.stepping)
		}
	}
	if o.frames == 0 || frames < o.frames {
		_ = h.Close() // interrupted; otherwise the run finished with the last frame
	}
	res, err := h.Wait()
	if res == nil {
		return err
	}
	fmt.Fprint(stdout, ar.Frame())
	fmt.Fprintf(stdout, "frames %d  ticks %d  answered: chaser %d runner %d trader %d llm %d\n",
		frames, res.Ticks, answered[roleChaser], answered[roleRunner], answered[roleTrader], answered[groupLLM])
	if u := res.LLM; u != nil {
		fmt.Fprintf(stdout, "LLM NPCs: %d model turns, %d tokens, $%.4f\n", u.Turns, u.Tokens(), u.CostUSD)
	}
	fmt.Fprintf(stdout, "status %s; results in %s\n", res.Status, res.Dir)
	return err
}
