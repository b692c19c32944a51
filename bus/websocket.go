package bus

import (
	"fmt"
	"net"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
)

// websocketOpts turns Options.Websocket ("host:port", port 0 for a random
// one, host empty for 127.0.0.1) into the server's websocket listener. It
// serves plain ws:// (no TLS), so the host must be a loopback address: a
// browser on the same machine, or a TLS proxy in front of it.
func websocketOpts(addr string) (server.WebsocketOpts, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return server.WebsocketOpts{}, fmt.Errorf("websocket address %q: want HOST:PORT, e.g. 127.0.0.1:0: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if err := checkLoopback(host); err != nil {
		return server.WebsocketOpts{}, fmt.Errorf("websocket address %q: %w (it serves ws:// without TLS)", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return server.WebsocketOpts{}, fmt.Errorf("websocket address %q: port %q: want 0 (random) to 65535", addr, portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return server.WebsocketOpts{Host: host, Port: port, NoTLS: true}, nil
}

// WebsocketURL is the websocket listener's URL (ws://127.0.0.1:PORT), or ""
// when Options.Websocket was not set.
func (s *Server) WebsocketURL() string {
	if !s.ws {
		return ""
	}
	return s.ns.WebsocketURL()
}
