package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
)

// natsLogger routes nats-server logs into hclog (server.Logger, installed
// with SetLoggerV2) and turns the permission and authentication errors it
// logs for agent connections into Violations.
type natsLogger struct {
	log hclog.Logger
	s   *Server
}

var _ server.Logger = (*natsLogger)(nil)

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Trace(fmt.Sprintf(format, v...)) }

// Fatalf is logged as an error: the embedded server must never exit the
// process; Start reports a server that does not come up.
func (l *natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("fatal: " + fmt.Sprintf(format, v...))
}

func (l *natsLogger) Errorf(format string, v ...any) {
	if l.violation(format, v) {
		return
	}
	l.log.Error(fmt.Sprintf(format, v...))
}

// violation reports the log call as a Violation if it is one, and says so.
// It runs on server goroutines that may hold server locks, so it only
// takes the authenticator's lock and queues the report.
func (l *natsLogger) violation(format string, v []any) bool {
	cid, msg, ok := parseClientPrefix(format)
	if !ok {
		return false
	}
	op, subject, reason, ok := classify(msg, v)
	if !ok {
		return false
	}
	if op == OpAuth {
		if l.s.auth.authReported(cid) {
			// Check refused this login and reported it with its reason.
			l.log.Debug(fmt.Sprintf(format, v...))
			return true
		}
		// Refused after Check accepted it (for example a client naming
		// an account in CONNECT), or before Check ran (a protocol
		// message before CONNECT).
	}
	l.s.report(Violation{Agent: l.s.auth.agentOf(cid), Op: op, Subject: subject, Reason: reason})
	return true
}

// parseClientPrefix splits a client-scoped server log format into the
// connection id and the message. nats-server prefixes those as
//
//	<addr> - cid:<N>[ - "<client name and version>"][ - "<account>/<user>"] - <message>
//
// (wid: for websocket clients, mid: for MQTT). Everything the client
// controls (its name) is Go-quoted, so the prefix parses unambiguously and
// a client cannot forge another connection's cid.
func parseClientPrefix(format string) (cid uint64, msg string, ok bool) {
	i := strings.Index(format, " - ")
	if i < 0 {
		return 0, "", false
	}
	rest := format[i+3:]
	var tag string
	for _, t := range []string{"cid:", "wid:", "mid:", "mid_ws:"} {
		if strings.HasPrefix(rest, t) {
			tag = t
			break
		}
	}
	if tag == "" {
		return 0, "", false
	}
	rest = rest[len(tag):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	cid, err := strconv.ParseUint(rest[:n], 10, 64)
	if err != nil {
		return 0, "", false
	}
	rest = rest[n:]
	for strings.HasPrefix(rest, ` - "`) {
		q, err := strconv.QuotedPrefix(rest[3:])
		if err != nil {
			return 0, "", false
		}
		rest = rest[3+len(q):]
	}
	if !strings.HasPrefix(rest, " - ") {
		return 0, "", false
	}
	return cid, rest[3:], true
}

// classify recognises the permission and authentication errors
// nats-server logs for a client (server/client.go pubPermissionViolation,
// replySubjectViolation, subPermissionViolation, maxTokensViolation,
// authViolation). msg is the format after the client prefix; args are the
// log call's arguments.
func classify(msg string, args []any) (op, subject, reason string, ok bool) {
	last := func() (string, bool) {
		if len(args) == 0 {
			return "", false
		}
		switch a := args[len(args)-1].(type) {
		case []byte:
			return string(a), true
		case string:
			return a, true
		}
		return "", false
	}
	switch {
	case msg == "Publish Violation - Subject %q", msg == "Publish Violation - Reply %q":
		s, ok := last()
		if !ok {
			return "", "", "", false
		}
		return OpPublish, s, fmt.Sprintf(msg, s), true
	case strings.HasPrefix(msg, "Subscription Violation"):
		const subj = "Subject "
		i := strings.Index(msg, subj)
		if i < 0 {
			return "", "", "", false
		}
		q, err := strconv.QuotedPrefix(msg[i+len(subj):])
		if err != nil {
			return "", "", "", false
		}
		s, err := strconv.Unquote(q)
		if err != nil {
			return "", "", "", false
		}
		return OpSubscribe, s, msg, true
	case strings.HasPrefix(msg, server.ErrAuthentication.Error()):
		return OpAuth, "", msg, true
	case msg == "%v - %s" && len(args) == 2:
		if err, isErr := args[0].(error); isErr && errors.Is(err, server.ErrAuthentication) {
			return OpAuth, "", fmt.Sprintf(msg, args...), true
		}
	}
	return "", "", "", false
}
