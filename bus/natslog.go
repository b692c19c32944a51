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
func (l *natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if quietWarning(msg) {
		l.log.Info(msg)
		return
	}
	l.log.Warn(msg)
}

// quietWarning tells the server's warnings that say nothing a user of
// Terrarium should act on: the websocket listener is plain ws:// on
// purpose (loopback, read-only observers), and a read loop that took a
// while is a busy machine's doing (the run's own figures show it). They
// are logged at info level.
func quietWarning(msg string) bool {
	return strings.Contains(msg, "Websocket not configured with TLS") ||
		strings.Contains(msg, "Readloop processing time")
}
func (l *natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any) { l.log.Trace(fmt.Sprintf(format, v...)) }

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
	viol, ok := classify(msg, v)
	if !ok {
		return false
	}
	if viol.Op == OpAuth {
		if l.s.auth.authReported(cid) {
			// Check refused this login and reported it with its reason.
			l.log.Debug(fmt.Sprintf(format, v...))
			return true
		}
		// Refused after Check accepted it (for example a client naming
		// an account in CONNECT), or before Check ran (a protocol
		// message before CONNECT). Either way the login failed: it
		// names a user (from the log line), never an agent.
	} else {
		viol.Agent = l.s.auth.agentOf(cid)
		viol.User = l.s.auth.userOf(cid) // the agent's id, or an observer's user
	}
	l.s.report(viol)
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
// authViolation) and returns them without Agent. msg is the format after
// the client prefix; args are the log call's arguments. For OpAuth, User
// is the user name the client presented when the line names one
// (authViolation logs it as `User "<name>"`), else "".
func classify(msg string, args []any) (Violation, bool) {
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
			return Violation{}, false
		}
		return Violation{Op: OpPublish, Subject: s, Reason: fmt.Sprintf(msg, s)}, true
	case strings.HasPrefix(msg, "Subscription Violation"):
		const subj = "Subject "
		i := strings.Index(msg, subj)
		if i < 0 {
			return Violation{}, false
		}
		q, err := strconv.QuotedPrefix(msg[i+len(subj):])
		if err != nil {
			return Violation{}, false
		}
		s, err := strconv.Unquote(q)
		if err != nil {
			return Violation{}, false
		}
		return Violation{Op: OpSubscribe, Subject: s, Reason: msg}, true
	case strings.HasPrefix(msg, server.ErrAuthentication.Error()):
		return Violation{Op: OpAuth, Reason: msg}, true
	case msg == "%v - %s" && len(args) == 2:
		if err, isErr := args[0].(error); isErr && errors.Is(err, server.ErrAuthentication) {
			who, _ := args[1].(string)
			return Violation{Op: OpAuth, User: authUser(who), Reason: fmt.Sprintf(msg, args...)}, true
		}
	}
	return Violation{}, false
}

// authUser returns the user name in the way authViolation logs a client's
// credentials (server/client.go getAuthUser): `User "<name>"`. Other
// credentials (an nkey, a JWT, a token) are not user names: "".
func authUser(who string) string {
	const prefix = "User "
	if !strings.HasPrefix(who, prefix) {
		return ""
	}
	q, err := strconv.QuotedPrefix(who[len(prefix):])
	if err != nil || len(q) != len(who)-len(prefix) {
		return ""
	}
	u, err := strconv.Unquote(q)
	if err != nil {
		return ""
	}
	return u
}
