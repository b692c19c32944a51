package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/terrarium-sim/terrarium/agents/mcpserver"
	"github.com/terrarium-sim/terrarium/agents/sdk"
)

func init() {
	register(command{name: "mcp", order: 45, usage: "mcp", summary: "serve the world to one agent as MCP tools over stdio (started by an agent's MCP config)", run: cmdMCP})
}

func cmdMCP(args []string, _, stderr io.Writer) int {
	fs := newFlagSet("mcp", "mcp",
		"Serves the world to one agent as MCP tools (observe, act, say and the world's\nown) on stdin and stdout. It acts as the agent whose bus credentials are in its\nenvironment (TERRARIUM_NATS_URL, TERRARIUM_NATS_USER, ..., as in the MCP config\nfile the host writes into each claude and mcp agent's workspace), never as\nanother: it takes no agent flag. See docs/llm-agents.md.\n", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "terrarium mcp: takes no arguments")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	a, err := sdk.Connect(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "terrarium mcp:", err)
		return exitFailed
	}
	err = mcpserver.Main(ctx, a)
	err = errors.Join(err, a.Close())
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "terrarium mcp:", err)
		return exitFailed
	}
	return exitOK
}
