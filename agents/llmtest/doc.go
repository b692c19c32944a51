// Package llmtest is a scripted stand-in for the Anthropic Messages API,
// for tests that run real LLM agent programs (the claude CLI) offline: the
// only test double the project allows, standing in for the model, never
// for our code.
//
// A Server answers POST /v1/messages (streaming, as server-sent events:
// message_start, content_block_start/delta/stop for text and tool_use with
// input_json_delta, message_delta with usage, message_stop; or one JSON
// message) and POST /v1/messages/count_tokens. Each request is matched to
// an agent by the "agent ID" named in its system prompt (AgentOf), and
// answered with the next Reply of that agent's Script; requests that name
// no scripted agent (the CLI's own housekeeping calls) get a short text
// answer and are not counted.
//
// Guarantees: replies of one agent are handed out in request order, one
// per request; Usage reports exactly the usage the server put in the
// replies it completed; a Hang reply holds its request until the client
// gives up or Close is called, so Close never waits on a hung request.
package llmtest
