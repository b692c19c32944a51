package bus

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestParseClientPrefix(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		wantCID uint64
		wantMsg string
		wantOK  bool
	}{
		{"before auth", `127.0.0.1:5000 - cid:7 - authentication error`, 7, "authentication error", true},
		{"name and user", `127.0.0.1:5000 - cid:12 - "v1.56.0:go:agent A" - "$G/user:A" - Publish Violation - Subject %q`, 12, "Publish Violation - Subject %q", true},
		{"in process", `pipe - cid:5 - "v1.56.0:go:host" - "$G/user:terrarium.host" - Client connection closed`, 5, "Client connection closed", true},
		{"ipv6", `[::1]:5000 - cid:3 - hello`, 3, "hello", true},
		{"websocket", `127.0.0.1:5000 - wid:9 - "x" - msg`, 9, "msg", true},
		{"name forging a cid", `127.0.0.1:5000 - cid:4 - "v1:go:x\" - cid:1 - \"" - "$G/user:A" - Publish Violation - Subject %q`, 4, "Publish Violation - Subject %q", true},
		{"name with separators and percent", `127.0.0.1:5000 - cid:8 - "a - b %s - Subscription Violation - Subject \"x\"" - "$G/user:A" - Subscription Violation - Subject "sim.r.to.B.obs", SID 1`, 8, `Subscription Violation - Subject "sim.r.to.B.obs", SID 1`, true},
		{"server message", `Listening for client connections on %s`, 0, "", false},
		{"route", `127.0.0.1:6222 - rid:2 - Route connection created`, 0, "", false},
		{"no digits", `127.0.0.1:5000 - cid: - x`, 0, "", false},
		{"unterminated name", `127.0.0.1:5000 - cid:1 - "abc`, 0, "", false},
		{"prefix only", `127.0.0.1:5000 - cid:1`, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cid, msg, ok := parseClientPrefix(tt.format)
			if ok != tt.wantOK || cid != tt.wantCID || msg != tt.wantMsg {
				t.Fatalf("parseClientPrefix(%q) = %d, %q, %v; want %d, %q, %v", tt.format, cid, msg, ok, tt.wantCID, tt.wantMsg, tt.wantOK)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name        string
		msg         string
		args        []any
		wantOp      string
		wantSubject string
		wantUser    string
		wantOK      bool
	}{
		{"publish", "Publish Violation - Subject %q", []any{[]byte("sim.r.agent.B.act")}, OpPublish, "sim.r.agent.B.act", "", true},
		{"publish string arg", "Publish Violation - Subject %q", []any{"s"}, OpPublish, "s", "", true},
		{"reply", "Publish Violation - Reply %q", []any{[]byte("$JS.ACK.x")}, OpPublish, "$JS.ACK.x", "", true},
		{"publish without arg", "Publish Violation - Subject %q", nil, "", "", "", false},
		{"subscribe", `Subscription Violation - Subject "sim.r.to.B.obs", SID 3`, nil, OpSubscribe, "sim.r.to.B.obs", "", true},
		{"subscribe queue", `Subscription Violation - Subject "a.>", Queue: "q", SID 3`, nil, OpSubscribe, "a.>", "", true},
		{"subscribe quoted", `Subscription Violation - Subject "a\"b", SID 3`, nil, OpSubscribe, `a"b`, "", true},
		{"too many tokens", `Subscription Violation Too Many Tokens - Subject "a.b.c", SID 1`, nil, OpSubscribe, "a.b.c", "", true},
		{"auth no user", "authentication error", nil, OpAuth, "", "", true},
		{"auth with user", "%v - %s", []any{server.ErrAuthentication, `User "A"`}, OpAuth, "", "A", true},
		{"auth wrapped", "%v - %s", []any{fmt.Errorf("x: %w", server.ErrAuthentication), `User "A"`}, OpAuth, "", "A", true},
		{"auth quoted user", "%v - %s", []any{server.ErrAuthentication, `User "a\" b"`}, OpAuth, "", `a" b`, true},
		{"auth nkey", "%v - %s", []any{server.ErrAuthentication, `Nkey "UABC"`}, OpAuth, "", "", true},
		{"auth jwt", "%v - %s", []any{server.ErrAuthentication, `JWT User "UABC"`}, OpAuth, "", "", true},
		{"auth token", "%v - %s", []any{server.ErrAuthentication, `Token "[REDACTED]"`}, OpAuth, "", "", true},
		{"auth trailing text", "%v - %s", []any{server.ErrAuthentication, `User "A" x`}, OpAuth, "", "", true},
		{"auth unterminated", "%v - %s", []any{server.ErrAuthentication, `User "A`}, OpAuth, "", "", true},
		{"other error pair", "%v - %s", []any{errors.New("read error"), "x"}, "", "", "", false},
		{"other", "Client connection closed", nil, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := classify(tt.msg, tt.args)
			if ok != tt.wantOK || v.Op != tt.wantOp || v.Subject != tt.wantSubject || v.User != tt.wantUser {
				t.Fatalf("classify = %+v, %v; want op %q, subject %q, user %q, %v", v, ok, tt.wantOp, tt.wantSubject, tt.wantUser, tt.wantOK)
			}
			if v.Agent != "" {
				t.Fatalf("classify named agent %q: only the connection's login may", v.Agent)
			}
			if ok && v.Reason == "" {
				t.Fatal("empty reason")
			}
		})
	}
}
