package bus

import (
	"crypto/subtle"
	"fmt"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// hostUser is the host's own login. It cannot collide with an agent id: a
// dot is not allowed in ids.
const hostUser = "terrarium.host"

// secretBytes is the entropy of every password (256 bits).
const secretBytes = 32

// Credentials are what an agent process needs to connect: its user name
// (its agent id), its password, and the inbox prefix it must use for
// replies (nats.CustomInboxPrefix); other inboxes are not readable to it.
type Credentials struct {
	User, Password, InboxPrefix string
}

// agentEntry is one registered agent.
type agentEntry struct {
	password []byte
	conns    map[uint64]struct{} // cids logged in with these credentials
	perms    *server.Permissions // nil: an agent's (permissions)
}

// authenticator is the server's CustomClientAuthentication: it checks
// every client login against the agents registered at run time and the
// host's credentials, grants each agent its permissions, and remembers
// which agent each connection id (cid) belongs to, so violations the
// server logs can be attributed.
type authenticator struct {
	run      string
	hostUser string
	hostPass string
	ns       *server.Server  // set before the server starts
	report   func(Violation) // set before the server starts
	mu       sync.Mutex      // guards the fields below; never held while calling the server
	agents   map[string]*agentEntry
	obsUsers map[string][]byte   // observer user -> password (observer.go)
	removed  map[string]struct{} // ids removed and not added again, for clearer reasons
	cids     map[uint64]string   // cid -> agent id, for agent connections
	authSeen map[uint64]struct{} // cids whose failed login Check already reported
	pruneAt  int                 // prune cids when it grows past this
}

func newAuthenticator(run string) (*authenticator, error) {
	pass, err := randomSecret(secretBytes)
	if err != nil {
		return nil, fmt.Errorf("host credentials: %w", err)
	}
	return &authenticator{
		run:      run,
		hostUser: hostUser,
		hostPass: pass,
		agents:   map[string]*agentEntry{},
		obsUsers: map[string][]byte{},
		removed:  map[string]struct{}{},
		cids:     map[uint64]string{},
		authSeen: map[uint64]struct{}{},
		pruneAt:  64,
	}, nil
}

// permissions is what agent id may do in run.
func permissions(run, id string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{AgentPrefix(run, id)},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{ToPrefix(run, id), WorldPrefix(run), InboxPrefix(run, id) + ".>"},
		},
		// No Response permission: agents answer no requests, so a reply
		// subject an agent receives grants it nothing.
	}
}

// Check implements server.Authentication. The server calls it on the
// connection's own goroutine, without server locks held.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	o := c.GetOpts()
	user, pass := o.Username, o.Password
	cid := c.GetID()

	if user == a.hostUser {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(a.hostPass)) == 1 {
			c.RegisterUser(&server.User{Username: user})
			return true
		}
		a.refuse(cid, user, "wrong password for the host user")
		return false
	}

	if isObserverUser(user) {
		return a.checkObserver(c, cid, user, pass)
	}

	a.mu.Lock()
	e, ok := a.agents[user]
	if !ok {
		_, wasRemoved := a.removed[user]
		a.mu.Unlock()
		if wasRemoved {
			a.refuse(cid, user, "agent removed")
		} else {
			a.refuse(cid, user, fmt.Sprintf("unknown user %q", user))
		}
		return false
	}
	if subtle.ConstantTimeCompare([]byte(pass), e.password) != 1 {
		a.mu.Unlock()
		a.refuse(cid, user, "wrong password")
		return false
	}
	// Record the cid under the same lock that proved the agent registered,
	// so a concurrent RemoveAgent either sees this cid or refused us.
	e.conns[cid] = struct{}{}
	a.cids[cid] = user
	prune := len(a.cids) > a.pruneAt
	a.mu.Unlock()

	perms := e.perms
	if perms == nil {
		perms = permissions(a.run, user)
	}
	c.RegisterUser(&server.User{Username: user, Permissions: perms})
	if prune {
		a.prune()
	}
	return true
}

// refuse reports a failed login by the user name the client presented
// and remembers that it did, so the server's own "Authentication Error"
// log line for cid is not reported twice. The login proved nothing, so
// the violation names no agent, even when user is a registered one.
func (a *authenticator) refuse(cid uint64, user, reason string) {
	a.mu.Lock()
	a.authSeen[cid] = struct{}{}
	a.mu.Unlock()
	a.report(Violation{User: user, Op: OpAuth, Reason: reason})
}

// agentOf returns the agent a connection id belongs to, or "".
func (a *authenticator) agentOf(cid uint64) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id := a.cids[cid]; !isObserverUser(id) {
		return id
	}
	return "" // an observer is not an agent
}

// authReported reports whether Check already reported cid's failed login,
// forgetting it.
func (a *authenticator) authReported(cid uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.authSeen[cid]
	delete(a.authSeen, cid)
	return ok
}

// prune forgets connections the server no longer has, so the cid map
// stays proportional to the open connections (amortised: it runs when the
// map has doubled since the last prune).
func (a *authenticator) prune() {
	a.mu.Lock()
	ids := make([]uint64, 0, len(a.cids)+len(a.authSeen))
	for cid := range a.cids {
		ids = append(ids, cid)
	}
	for cid := range a.authSeen {
		ids = append(ids, cid)
	}
	a.mu.Unlock()

	var gone []uint64
	for _, cid := range ids {
		if a.ns.GetClient(cid) == nil { // takes server locks: ours is not held
			gone = append(gone, cid)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cid := range gone {
		if id, ok := a.cids[cid]; ok {
			if e := a.agents[id]; e != nil {
				delete(e.conns, cid)
			}
			delete(a.cids, cid)
		}
		delete(a.authSeen, cid)
	}
	a.pruneAt = max(64, 2*len(a.cids))
}

// AddAgent registers agent id and returns its fresh credentials. The
// password is 256 random bits. An id removed with RemoveAgent may be added
// again (with new credentials).
func (s *Server) AddAgent(id string) (Credentials, error) {
	if !idPattern.MatchString(id) {
		return Credentials{}, fmt.Errorf("add agent %q: %w (want %s)", id, ErrBadID, idPattern)
	}
	if s.closed.Load() {
		return Credentials{}, fmt.Errorf("add agent %s: %w", id, ErrClosed)
	}
	pass, err := randomSecret(secretBytes)
	if err != nil {
		return Credentials{}, fmt.Errorf("add agent %s: %w", id, err)
	}
	a := s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.agents[id]; dup {
		return Credentials{}, fmt.Errorf("add agent %s: %w", id, ErrAgentExists)
	}
	a.agents[id] = &agentEntry{password: []byte(pass), conns: map[uint64]struct{}{}}
	delete(a.removed, id)
	return Credentials{User: id, Password: pass, InboxPrefix: InboxPrefix(s.run, id)}, nil
}

// RemoveAgent revokes agent id: new logins with its credentials are
// refused, and its open connections are closed. Removing an unknown id
// does nothing.
func (s *Server) RemoveAgent(id string) {
	a := s.auth
	a.mu.Lock()
	e, ok := a.agents[id]
	if !ok {
		a.mu.Unlock()
		return
	}
	delete(a.agents, id)
	a.removed[id] = struct{}{}
	cids := make([]uint64, 0, len(e.conns))
	for cid := range e.conns {
		// a.cids keeps cid -> id until the connection is gone (prune), so
		// a violation logged while it closes is still attributed.
		cids = append(cids, cid)
	}
	a.mu.Unlock()

	for _, cid := range cids {
		// An error means the connection is already gone.
		_ = s.ns.DisconnectClientByID(cid)
	}
	s.log.Debug("agent removed", "agent", id, "connections_closed", len(cids))
}

// poolPermissions is what pool id may do in run: its own subjects only.
// The members' ids travel inside its messages; the host checks them.
func poolPermissions(run, id string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{PoolPrefix(run, id)},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{ToPoolPrefix(run, id), WorldPrefix(run), PoolInboxPrefix(run, id) + ".>"},
		},
	}
}

// AddPool registers pool id (runtime "pool") and returns its credentials:
// user PoolUser(id), which may publish only under PoolPrefix and subscribe
// only to ToPoolPrefix, WorldPrefix and its PoolInboxPrefix. Which agents
// the pool may act for is the host's business (it checks every action's
// agent against the pool's members). RemoveAgent(PoolUser(id)) revokes it.
func (s *Server) AddPool(id string) (Credentials, error) {
	if !idPattern.MatchString(id) {
		return Credentials{}, fmt.Errorf("add pool %q: %w (want %s)", id, ErrBadID, idPattern)
	}
	if s.closed.Load() {
		return Credentials{}, fmt.Errorf("add pool %s: %w", id, ErrClosed)
	}
	pass, err := randomSecret(secretBytes)
	if err != nil {
		return Credentials{}, fmt.Errorf("add pool %s: %w", id, err)
	}
	user := PoolUser(id)
	a := s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.agents[user]; dup {
		return Credentials{}, fmt.Errorf("add pool %s: %w", id, ErrAgentExists)
	}
	a.agents[user] = &agentEntry{password: []byte(pass), conns: map[uint64]struct{}{}, perms: poolPermissions(s.run, id)}
	delete(a.removed, user)
	return Credentials{User: user, Password: pass, InboxPrefix: PoolInboxPrefix(s.run, id)}, nil
}
