package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// LLMUsage counts what an LLM agent's model did: turns (model calls),
// tokens and cost, as its CLI reported them in its "result" messages.
type LLMUsage struct {
	Turns               int     `json:"turns"`   // model turns: replies of the model (distinct assistant messages)
	Results             int     `json:"results"` // prompts answered (result messages)
	ErrorResults        int     `json:"error_results,omitempty"`
	InputTokens         int     `json:"input_tokens"`
	OutputTokens        int     `json:"output_tokens"`
	CacheReadTokens     int     `json:"cache_read_input_tokens,omitempty"`
	CacheCreationTokens int     `json:"cache_creation_input_tokens,omitempty"`
	CostUSD             float64 `json:"cost_usd"`
}

// Tokens is every token counted: input (with cache reads and writes) and output.
func (u LLMUsage) Tokens() int {
	return u.InputTokens + u.OutputTokens + u.CacheReadTokens + u.CacheCreationTokens
}

// Add returns u + v.
func (u LLMUsage) Add(v LLMUsage) LLMUsage {
	u.Turns += v.Turns
	u.Results += v.Results
	u.ErrorResults += v.ErrorResults
	u.InputTokens += v.InputTokens
	u.OutputTokens += v.OutputTokens
	u.CacheReadTokens += v.CacheReadTokens
	u.CacheCreationTokens += v.CacheCreationTokens
	u.CostUSD += v.CostUSD
	return u
}

// ClaudeResult is one "result" message of the claude CLI (stream-json).
type ClaudeResult struct {
	Subtype   string  `json:"subtype"` // "success", "error_max_turns", "error_during_execution", ...
	IsError   bool    `json:"is_error"`
	NumTurns  int     `json:"num_turns"`
	SessionID string  `json:"session_id"`
	TotalCost float64 `json:"total_cost_usd"` // cumulative over the process
	Result    string  `json:"result"`
	Usage     struct {
		InputTokens         int `json:"input_tokens"`
		OutputTokens        int `json:"output_tokens"`
		CacheReadTokens     int `json:"cache_read_input_tokens"`
		CacheCreationTokens int `json:"cache_creation_input_tokens"`
	} `json:"usage"`
}

// ClaudeConfig configures a ClaudeDriver.
type ClaudeConfig struct {
	// OnResult is called, from the driver's reading goroutine, for every
	// result message with what it added to the process's usage so far.
	OnResult func(r ClaudeResult, delta LLMUsage)
	// OnTurn is called for every model reply that starts while a prompt is
	// being answered (one per message id), with the turns and input tokens
	// counted since the last result: an early estimate, for budgets, of
	// what the next result will report.
	OnTurn func(liveTurns, liveInputTokens int)
	// OnSession is called with the session id when the CLI first reports it.
	OnSession func(id string)
	// CostBase is the session's cost the CLI starts from: a CLI resuming a
	// session whose last process exited cleanly reports total_cost_usd
	// including that process's cost (one that was killed starts from 0).
	CostBase float64
}

// ClaudeDriver drives one claude CLI process started with Spec.Stdio and
// `-p --input-format stream-json --output-format stream-json --verbose`:
// it writes prompts to its stdin as user messages and reads its stdout
// (system, assistant, user and result messages), counting usage.
//
// Guarantees: one prompt at a time is with the CLI; a prompt given while
// the CLI is still answering the previous one waits, and a newer prompt
// replaces a waiting one (the model always gets the newest tick). Prompt
// and Stop never block. After Stop no prompt is written and stdin is
// closed (the end of input: the CLI finishes the prompt it has and
// exits). Run returns once the process has exited and its output is read,
// or when ctx is done; its goroutines are gone then.
type ClaudeDriver struct {
	p   *Process
	cfg ClaudeConfig
	log hclog.Logger

	mu        sync.Mutex
	busy      bool   // a prompt is with the CLI
	pending   []byte // the next prompt line, or nil
	stopped   bool
	wake      chan struct{}
	usage     LLMUsage // this process's
	lastCost  float64
	session   string
	liveIDs   map[string]bool
	liveInput int
	ran       atomic.Bool
	quit      chan struct{}
	prompts   atomic.Uint64
}

// NewClaudeDriver returns the driver of p, which must have been started
// with Spec.Stdio; call Run right after Supervisor.Start.
func NewClaudeDriver(p *Process, cfg ClaudeConfig) (*ClaudeDriver, error) {
	if p.stdio == nil {
		return nil, fmt.Errorf("claude driver for agent %s: %w", p.id, ErrNotStdio)
	}
	return &ClaudeDriver{p: p, cfg: cfg, log: p.log.Named("claude"), wake: make(chan struct{}, 1), quit: make(chan struct{}), liveIDs: map[string]bool{}, lastCost: cfg.CostBase}, nil
}

type claudeUserLine struct {
	Type    string `json:"type"`
	Message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"message"`
}

// Prompt gives the CLI text as the next user message (see ClaudeDriver).
func (d *ClaudeDriver) Prompt(text string) {
	var l claudeUserLine
	l.Type = "user"
	l.Message.Role = "user"
	l.Message.Content = text
	b, err := json.Marshal(l)
	if err != nil {
		return
	}
	d.mu.Lock()
	if !d.stopped {
		d.pending = append(b, '\n')
	}
	d.mu.Unlock()
	d.poke()
}

// Stop ends the CLI's input: it finishes the prompt it has, then exits.
func (d *ClaudeDriver) Stop() {
	d.mu.Lock()
	d.stopped = true
	d.pending = nil
	d.mu.Unlock()
	d.poke()
}

// Usage is this process's usage so far (from its result messages).
func (d *ClaudeDriver) Usage() LLMUsage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.usage
}

// SessionID is the CLI's session id, once reported.
func (d *ClaudeDriver) SessionID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.session
}

// Prompts is how many prompts were written to the CLI.
func (d *ClaudeDriver) Prompts() uint64 { return d.prompts.Load() }

func (d *ClaudeDriver) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run drives the process until it has exited or ctx is done.
func (d *ClaudeDriver) Run(ctx context.Context) error {
	if !d.ran.CompareAndSwap(false, true) {
		return fmt.Errorf("claude driver for agent %s: Run called twice", d.p.id)
	}
	if !d.p.stdio.claimed.CompareAndSwap(false, true) {
		return fmt.Errorf("claude driver for agent %s: the process already has a bridge", d.p.id)
	}
	defer d.p.stdio.release()
	defer d.p.stdio.markDrained()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(d.quit)
	defer d.p.closeStdin()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.write()
	}()
	readDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(readDone)
		d.read()
	}()
	select {
	case <-readDone:
		<-d.p.done
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write is the only writer of the CLI's stdin.
func (d *ClaudeDriver) write() {
	defer d.p.closeStdin()
	for {
		select {
		case <-d.quit:
			return
		case <-d.wake:
		}
		d.mu.Lock()
		if d.stopped {
			d.mu.Unlock()
			return
		}
		var line []byte
		if !d.busy && d.pending != nil {
			line, d.pending, d.busy = d.pending, nil, true
		}
		d.mu.Unlock()
		if line == nil {
			continue
		}
		if _, err := d.p.stdin.Write(line); err != nil {
			d.log.Debug("stdin closed", "error", err)
			return
		}
		d.prompts.Add(1)
	}
}

func (d *ClaudeDriver) read() {
	lw := newLineWriter(MaxLineBytes*16, d.onLine)
	out := d.p.stdio.chunks
	for {
		select {
		case c := <-out:
			_, _ = lw.Write(c)
		case <-d.p.stdio.eof:
			for {
				select {
				case c := <-out:
					_, _ = lw.Write(c)
				default:
					_ = lw.Close()
					d.p.stdio.markDrained()
					return
				}
			}
		case <-d.quit:
			return
		}
	}
}

// claudeLine is the part of every stream-json output line the driver reads.
type claudeLine struct {
	Type      string `json:"type"`
	Subtype   string `json:"subtype"`
	SessionID string `json:"session_id"`
	Message   *struct {
		ID    string `json:"id"`
		Usage struct {
			InputTokens int `json:"input_tokens"`
		} `json:"usage"`
	} `json:"message"`
}

func (d *ClaudeDriver) onLine(line []byte, dropped int) {
	if dropped > 0 || len(bytes.TrimSpace(line)) == 0 {
		if dropped > 0 {
			d.log.Warn("stdout line over the limit discarded", "bytes", len(line)+dropped)
		}
		return
	}
	var cl claudeLine
	if err := json.Unmarshal(line, &cl); err != nil || cl.Type == "" {
		d.p.fileLog.Info(escapeLine(truncate(line, MaxLineBytes)), "stream", "stdout")
		return
	}
	// The whole conversation goes to the agent's log, as it is its output.
	d.p.fileLog.Info(escapeLine(truncate(line, MaxLineBytes)), "stream", "stdout", "type", cl.Type)
	if cl.SessionID != "" {
		d.mu.Lock()
		first := d.session == ""
		d.session = cl.SessionID
		d.mu.Unlock()
		if first && d.cfg.OnSession != nil {
			d.cfg.OnSession(cl.SessionID)
		}
	}
	switch cl.Type {
	case "assistant":
		if cl.Message == nil || cl.Message.ID == "" {
			return
		}
		d.mu.Lock()
		if d.liveIDs[cl.Message.ID] {
			d.mu.Unlock()
			return
		}
		d.liveIDs[cl.Message.ID] = true
		d.liveInput += cl.Message.Usage.InputTokens
		turns, in := len(d.liveIDs), d.liveInput
		d.mu.Unlock()
		if d.cfg.OnTurn != nil {
			d.cfg.OnTurn(turns, in)
		}
	case "result":
		var r ClaudeResult
		if err := json.Unmarshal(line, &r); err != nil {
			d.log.Warn("bad result message", "error", err)
			return
		}
		delta := LLMUsage{
			Results:     1,
			InputTokens: r.Usage.InputTokens, OutputTokens: r.Usage.OutputTokens,
			CacheReadTokens: r.Usage.CacheReadTokens, CacheCreationTokens: r.Usage.CacheCreationTokens,
		}
		if r.IsError {
			delta.ErrorResults = 1
		}
		d.mu.Lock()
		// The model's replies: the CLI's num_turns counts one more when it
		// stops a prompt at --max-turns.
		delta.Turns = len(d.liveIDs)
		if r.TotalCost >= d.lastCost {
			delta.CostUSD = r.TotalCost - d.lastCost
		} else {
			delta.CostUSD = r.TotalCost // the CLI started counting afresh
		}
		d.lastCost = r.TotalCost
		d.usage = d.usage.Add(delta)
		d.busy = false
		clear(d.liveIDs)
		d.liveInput = 0
		d.mu.Unlock()
		d.poke()
		if d.cfg.OnResult != nil {
			d.cfg.OnResult(r, delta)
		}
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
