package bus

import (
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// observerUserPrefix starts every observer's user name. The dot keeps it
// apart from agent ids, which have none.
const observerUserPrefix = "observer."

// DefaultObserver is the name of the observer the host registers at start
// (its credentials go into observer.json).
const DefaultObserver = "default"

func isObserverUser(user string) bool { return strings.HasPrefix(user, observerUserPrefix) }

// ObserverInboxPrefix is observer name's reply inbox prefix
// (nats.CustomInboxPrefix, natscli --inbox-prefix). It is not under
// _INBOX, so no agent's inbox permission (_INBOX.<run>.<id>.>) covers it.
func ObserverInboxPrefix(run, name string) string { return "_OBSERVER." + run + "." + name }

// observerPermissions is what an observer of run may do: create and read
// its own consumers on the run's event stream, and read its own inbox.
// Nothing else: no publishing on the run's subjects, no stream deletion,
// purge or update, no consumer deletion, no other JetStream API, no $SYS.
func observerPermissions(run, name string) *server.Permissions {
	s := StreamName(run)
	api := "$JS.API."
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{
				api + "STREAM.INFO." + s,
				api + "CONSUMER.CREATE." + s,        // an ephemeral consumer (older clients)
				api + "CONSUMER.CREATE." + s + ".>", // a named consumer, with or without a filter
				api + "CONSUMER.DURABLE.CREATE." + s + ".*",
				api + "CONSUMER.INFO." + s + ".*",
				api + "CONSUMER.MSG.NEXT." + s + ".*",
				"$JS.ACK." + s + ".>",
			},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{ObserverInboxPrefix(run, name) + ".>"},
		},
	}
}

// ObserverCredentials are what an observer needs to connect and read the
// run's event stream.
type ObserverCredentials struct {
	User        string `json:"user"`
	Password    string `json:"password"`
	InboxPrefix string `json:"inbox_prefix"`
	Stream      string `json:"stream"`
	Subjects    string `json:"subjects"`
}

// AddObserver registers observer name (an id: [A-Za-z0-9_-]+) and returns
// its fresh credentials: user "observer.<name>", a 256-bit random
// password, its inbox prefix, the stream and its subjects. Adding the
// same name again gives new credentials; the old ones stop working for
// new logins.
func (s *Server) AddObserver(name string) (ObserverCredentials, error) {
	if !idPattern.MatchString(name) {
		return ObserverCredentials{}, fmt.Errorf("add observer %q: %w (want %s)", name, ErrBadID, idPattern)
	}
	if s.closed.Load() {
		return ObserverCredentials{}, fmt.Errorf("add observer %s: %w", name, ErrClosed)
	}
	pass, err := randomSecret(secretBytes)
	if err != nil {
		return ObserverCredentials{}, fmt.Errorf("add observer %s: %w", name, err)
	}
	user := observerUserPrefix + name
	s.auth.mu.Lock()
	s.auth.obsUsers[user] = []byte(pass)
	s.auth.mu.Unlock()
	return ObserverCredentials{
		User: user, Password: pass, InboxPrefix: ObserverInboxPrefix(s.run, name),
		Stream: StreamName(s.run), Subjects: EventPrefix(s.run),
	}, nil
}

// checkObserver logs in an observer, or refuses it.
func (a *authenticator) checkObserver(c server.ClientAuthentication, cid uint64, user, pass string) bool {
	a.mu.Lock()
	want, ok := a.obsUsers[user]
	if ok && subtle.ConstantTimeCompare([]byte(pass), want) == 1 {
		a.cids[cid] = user // for the user name of its violations (userOf)
		a.mu.Unlock()
	} else {
		a.mu.Unlock()
		if !ok {
			a.refuse(cid, user, fmt.Sprintf("unknown observer %q", user))
		} else {
			a.refuse(cid, user, "wrong password for the observer")
		}
		return false
	}
	c.RegisterUser(&server.User{Username: user, Permissions: observerPermissions(a.run, strings.TrimPrefix(user, observerUserPrefix))})
	return true
}

// userOf returns the user a connection id logged in as (an agent id or an
// observer's user), or "".
func (a *authenticator) userOf(cid uint64) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cids[cid]
}
