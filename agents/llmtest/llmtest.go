package llmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Reply is one scripted answer of the model.
type Reply struct {
	// Text is a text block (sent before the tool call, if both are set).
	Text string
	// Tool, when set, is a tool_use block calling that tool (as the client
	// names it, e.g. "mcp__terrarium__act") with Input (marshalled to JSON).
	Tool  string
	Input any
	// Usage is what the reply reports (default DefaultUsage).
	Usage *Usage
	// Status, when not 0, answers with that HTTP status and an error body
	// of ErrorType (default "api_error") instead of a message.
	Status    int
	ErrorType string
	// Hang holds the request open without answering until the client gives
	// up or the server closes.
	Hang bool
}

// Usage is a reply's token usage, as the Messages API reports it.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// DefaultUsage is the usage of a reply that names none.
var DefaultUsage = Usage{InputTokens: 100, OutputTokens: 20}

// Call is one request of an agent, handed to its Script.
type Call struct {
	Agent string
	// N counts this agent's requests, from 1.
	N int
	// Request is the decoded request body.
	Request Request
}

// LastToolResult is the text of the last tool_result block of the last
// message, and whether there is one (the result of the tool the model
// called in its previous reply).
func (c *Call) LastToolResult() (string, bool) {
	if len(c.Request.Messages) == 0 {
		return "", false
	}
	m := c.Request.Messages[len(c.Request.Messages)-1]
	for i := len(m.Content) - 1; i >= 0; i-- {
		b := m.Content[i]
		if b.Type == "tool_result" {
			return b.Text(), true
		}
	}
	return "", false
}

// LastToolUse is the name of the tool the model called in its last reply
// of the request's messages, or "" (a new turn, or a text reply).
func (c *Call) LastToolUse() string {
	for i := len(c.Request.Messages) - 1; i >= 0; i-- {
		m := c.Request.Messages[i]
		if m.Role != "assistant" {
			continue
		}
		for j := len(m.Content) - 1; j >= 0; j-- {
			if m.Content[j].Type == "tool_use" {
				return m.Content[j].Name
			}
		}
		return ""
	}
	return ""
}

// LastUserText is the text of the last user message's text blocks (the
// prompt the turn started with, when the last message is not a tool result).
func (c *Call) LastUserText() string {
	for i := len(c.Request.Messages) - 1; i >= 0; i-- {
		m := c.Request.Messages[i]
		if m.Role != "user" {
			continue
		}
		var sb strings.Builder
		for _, b := range m.Content {
			if b.Type == "text" {
				sb.WriteString(b.TextValue)
			}
		}
		if sb.Len() > 0 {
			return sb.String()
		}
	}
	return ""
}

// Script gives an agent's reply to each of its requests.
type Script func(c *Call) Reply

// Steps plays replies in order, one per request; after the last one it
// answers every request with the last reply.
func Steps(replies ...Reply) Script {
	return func(c *Call) Reply {
		if c.N <= len(replies) {
			return replies[c.N-1]
		}
		return replies[len(replies)-1]
	}
}

// Cycle plays replies in order, again and again.
func Cycle(replies ...Reply) Script {
	return func(c *Call) Reply { return replies[(c.N-1)%len(replies)] }
}

// Request is the part of a Messages API request the server looks at.
type Request struct {
	Model     string    `json:"model"`
	MaxTokens int       `json:"max_tokens"`
	Stream    bool      `json:"stream"`
	System    Content   `json:"system"`
	Messages  []Message `json:"messages"`
	Tools     []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

// SystemText is the whole system prompt as text.
func (r *Request) SystemText() string { return r.System.Text() }

// ToolNames lists the tools the request offers the model.
func (r *Request) ToolNames() []string {
	out := make([]string, len(r.Tools))
	for i, t := range r.Tools {
		out[i] = t.Name
	}
	return out
}

// Message is one message of a request.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content is a string or a list of blocks; either decodes into blocks.
type Content []Block

// UnmarshalJSON accepts a plain string or a list of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = Content{{Type: "text", TextValue: s}}
		return nil
	}
	var blocks []Block
	if err := json.Unmarshal(b, &blocks); err != nil {
		return err
	}
	*c = blocks
	return nil
}

// Text joins the text of the blocks.
func (c Content) Text() string {
	var sb strings.Builder
	for _, b := range c {
		sb.WriteString(b.Text())
	}
	return sb.String()
}

// Block is one content block.
type Block struct {
	Type      string          `json:"type"`
	TextValue string          `json:"text,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	Content   Content         `json:"content,omitempty"` // tool_result
	IsError   bool            `json:"is_error,omitempty"`
}

// Text is the block's text (a tool_result's joined content).
func (b Block) Text() string {
	if b.Type == "tool_result" {
		return b.Content.Text()
	}
	return b.TextValue
}

var agentPattern = regexp.MustCompile(`\bagent ([A-Za-z0-9_-]+)`)

// AgentOf returns the agent a system prompt names ("... agent ID ..."; the
// claude runtime's prompt says "You are agent ID"), or "".
func AgentOf(system string) string {
	if m := agentPattern.FindStringSubmatch(system); m != nil {
		return m[1]
	}
	return ""
}

// Server is a running scripted Messages API server.
type Server struct {
	// URL is the base URL to give clients (ANTHROPIC_BASE_URL).
	URL string

	srv  *http.Server
	ln   net.Listener
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	scripts map[string]Script
	calls   map[string]int
	usage   map[string]Usage
	reqs    map[string][]Request
	other   int
	closed  bool
}

// Start starts a server on a loopback port playing scripts (keyed by agent id).
func Start(scripts map[string]Script) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("llmtest: listen: %w", err)
	}
	s := &Server{
		URL:     "http://" + ln.Addr().String(),
		ln:      ln,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		scripts: map[string]Script{},
		calls:   map[string]int{},
		usage:   map[string]Usage{},
		reqs:    map[string][]Request{},
	}
	for k, v := range scripts {
		s.scripts[k] = v
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", s.messages)
	mux.HandleFunc("POST /v1/messages/count_tokens", s.countTokens)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"type":"error","error":{"type":"not_found_error","message":"not scripted"}}`, http.StatusNotFound)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// SetScript sets (or replaces) an agent's script; its request count goes on.
func (s *Server) SetScript(agent string, sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[agent] = sc
}

// Calls is how many requests the agent has made.
func (s *Server) Calls(agent string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[agent]
}

// Usage is the total usage of the replies the server completed for agent.
func (s *Server) Usage(agent string) Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage[agent]
}

// Requests returns a copy of the agent's requests so far.
func (s *Server) Requests(agent string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs[agent]...)
}

// Close stops the server; hung requests are released.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}

func (s *Server) countTokens(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"input_tokens": max(1, len(b)/4)})
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "bad JSON: "+err.Error())
		return
	}
	agent := AgentOf(req.SystemText())
	s.mu.Lock()
	script, ok := s.scripts[agent]
	var call Call
	if ok {
		s.calls[agent]++
		s.reqs[agent] = append(s.reqs[agent], req)
		call = Call{Agent: agent, N: s.calls[agent], Request: req}
	} else {
		s.other++
	}
	s.mu.Unlock()
	reply := Reply{Text: "ok", Usage: &Usage{InputTokens: 1, OutputTokens: 1}}
	if ok {
		reply = script(&call)
	}
	if reply.Hang {
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
		return
	}
	if reply.Status != 0 {
		typ := reply.ErrorType
		if typ == "" {
			typ = "api_error"
		}
		apiError(w, reply.Status, typ, "scripted error")
		return
	}
	u := DefaultUsage
	if reply.Usage != nil {
		u = *reply.Usage
	}
	var input json.RawMessage
	if reply.Tool != "" {
		in := reply.Input
		if in == nil {
			in = map[string]any{}
		}
		if input, err = json.Marshal(in); err != nil {
			apiError(w, http.StatusInternalServerError, "api_error", "script input: "+err.Error())
			return
		}
	}
	id := fmt.Sprintf("msg_%s_%d", agent, call.N)
	if req.Stream {
		err = stream(w, id, req.Model, reply, input, u)
	} else {
		err = whole(w, id, req.Model, reply, input, u)
	}
	if err == nil && ok {
		s.mu.Lock()
		t := s.usage[agent]
		t.InputTokens += u.InputTokens
		t.OutputTokens += u.OutputTokens
		s.usage[agent] = t
		s.mu.Unlock()
	}
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	// No retry-after: the client's own backoff applies (kept short in tests).
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
}

func stopReason(reply Reply) string {
	if reply.Tool != "" {
		return "tool_use"
	}
	return "end_turn"
}

func blocks(id string, reply Reply, input json.RawMessage) []map[string]any {
	var out []map[string]any
	if reply.Text != "" || reply.Tool == "" {
		out = append(out, map[string]any{"type": "text", "text": reply.Text})
	}
	if reply.Tool != "" {
		out = append(out, map[string]any{"type": "tool_use", "id": "toolu_" + id, "name": reply.Tool, "input": input})
	}
	return out
}

func whole(w http.ResponseWriter, id, model string, reply Reply, input json.RawMessage, u Usage) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model,
		"content": blocks(id, reply, input), "stop_reason": stopReason(reply), "stop_sequence": nil,
		"usage": u,
	})
}

// sse is one server-sent event.
type sse struct {
	name string
	data map[string]any
}

func stream(w http.ResponseWriter, id, model string, reply Reply, input json.RawMessage, u Usage) error {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data map[string]any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
	evs := []sse{{"message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": u.InputTokens, "output_tokens": 1},
	}}}}
	for i, b := range blocks(id, reply, input) {
		switch b["type"] {
		case "text":
			evs = append(evs, sse{"content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "text", "text": ""}}})
			// Two deltas, so clients join them.
			text := reply.Text
			half := len(text) / 2
			for _, part := range []string{text[:half], text[half:]} {
				evs = append(evs, sse{"content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "text_delta", "text": part}}})
			}
		case "tool_use":
			evs = append(evs, sse{"content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "tool_use", "id": b["id"], "name": b["name"], "input": map[string]any{}}}})
			js := string(input)
			half := len(js) / 2
			for _, part := range []string{js[:half], js[half:]} {
				evs = append(evs, sse{"content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": part}}})
			}
		}
		evs = append(evs, sse{"content_block_stop", map[string]any{"type": "content_block_stop", "index": i}})
	}
	evs = append(evs, sse{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stopReason(reply), "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": u.OutputTokens}}})
	evs = append(evs, sse{"message_stop", map[string]any{"type": "message_stop"}})
	for _, e := range evs {
		if err := send(e.name, e.data); err != nil {
			return err
		}
	}
	return nil
}
