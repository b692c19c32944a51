package workspace

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; check them with errors.Is. Every error the lessor
// returns wraps one of them with a reason.
var (
	// ErrBadPath: the path is not a lease path (absolute, "..", a symlink,
	// outside the shared tree, missing, of the wrong kind).
	ErrBadPath = errors.New("bad lease path")
	// ErrLeaseHeld: another agent holds (or is first in line for) an
	// overlapping lease, and the request did not wait (or waited in vain).
	ErrLeaseHeld = errors.New("lease held")
	// ErrStaleToken: the token is not a live lease of the caller's (it
	// expired, was released, was revoked when its holder died, or never was).
	ErrStaleToken = errors.New("stale fencing token")
	// ErrExists: Create of a path that exists.
	ErrExists = errors.New("path exists")
	// ErrHashMismatch: Commit's content hash is not the file's content.
	ErrHashMismatch = errors.New("content hash mismatch")
	// ErrClosed: the workspace is closed (the run is over).
	ErrClosed = errors.New("workspace closed")
	// ErrUndone: a commit or release found nothing new to record while a
	// change made in the lease's scope under it had been undone (it could
	// not be told to be the holder's): reporting success would lose it.
	ErrUndone = errors.New("change undone")
)

// Lease is one granted lease.
type Lease struct {
	Path    string    `json:"path"`   // cleaned, relative to the shared tree
	Prefix  bool      `json:"prefix"` // a directory prefix: everything under Path
	Agent   string    `json:"agent"`
	Token   uint64    `json:"token"` // the fencing token
	Granted time.Time `json:"granted"`
	Expires time.Time `json:"expires"`
}

// covers reports whether the lease allows writing p.
func (l Lease) covers(p string) bool {
	if l.Prefix {
		return within(p, l.Path)
	}
	return p == l.Path
}

// request is one waiting acquire.
type request struct {
	id       uint64
	agent    string
	path     string
	prefix   bool
	deadline time.Time // when it gives up
	asked    time.Time
}

// Table is the lease state machine. It is pure: it never reads the clock
// (every call gets now) and starts nothing; Lessor drives it. Not safe for
// concurrent use.
//
// Rules: leases are exclusive on their scope (a file, or a directory and
// everything under it); a request waits behind every held lease and every
// earlier waiting request it overlaps (first come, first served, no
// overtaking); tokens only grow; a lease lives until Release, Renew moves
// its expiry, expiry or its holder's death revokes it; a path whose holder
// expired or died is blocked for the lock delay before the next grant.
type Table struct {
	TTL       time.Duration
	LockDelay time.Duration

	token   uint64 // last issued
	reqID   uint64
	held    map[uint64]*Lease // by token
	waiting []*request        // in arrival order
	blocked []blockedScope
	// OnToken, if set, is called with each token before it is issued; an
	// error refuses the grant (the Lessor persists the counter there).
	OnToken func(uint64) error
}

type blockedScope struct {
	path   string
	prefix bool
	until  time.Time
}

// NewTable makes a table whose first token is after last.
func NewTable(ttl, lockDelay time.Duration, last uint64) *Table {
	return &Table{TTL: ttl, LockDelay: lockDelay, token: last, held: map[uint64]*Lease{}}
}

// LastToken is the last token issued.
func (t *Table) LastToken() uint64 { return t.token }

// Held lists the live leases.
func (t *Table) Held() []Lease {
	out := make([]Lease, 0, len(t.held))
	for _, l := range t.held {
		out = append(out, *l)
	}
	return out
}

// Covering returns the live lease whose scope includes p.
func (t *Table) Covering(p string) (Lease, bool) {
	for _, l := range t.held {
		if l.covers(p) {
			return *l, true
		}
	}
	return Lease{}, false
}

// conflict returns the first held lease overlapping the scope.
func (t *Table) conflict(p string, prefix bool) *Lease {
	for _, l := range t.held {
		if overlaps(l.Path, l.Prefix, p, prefix) {
			return l
		}
	}
	return nil
}

func (t *Table) blockedUntil(now time.Time, p string, prefix bool) (time.Time, bool) {
	for _, b := range t.blocked {
		if now.Before(b.until) && overlaps(b.path, b.prefix, p, prefix) {
			return b.until, true
		}
	}
	return time.Time{}, false
}

func (t *Table) grant(now time.Time, agent, p string, prefix bool) (Lease, error) {
	next := t.token + 1
	if t.OnToken != nil {
		if err := t.OnToken(next); err != nil {
			return Lease{}, fmt.Errorf("issue fencing token: %w", err)
		}
	}
	t.token = next
	l := &Lease{Path: p, Prefix: prefix, Agent: agent, Token: next, Granted: now, Expires: now.Add(t.TTL)}
	t.held[next] = l
	return *l, nil
}

// Acquire asks for a lease on p (cleaned). It is granted at once when
// nothing overlapping is held, blocked or waiting ahead; otherwise, with
// wait > 0, the request queues (queued = true, id names it; its outcome
// comes from Advance, Release or Dead) and with wait = 0 it fails with
// ErrLeaseHeld. An agent asking again for exactly a lease it holds gets
// that lease back, renewed.
func (t *Table) Acquire(now time.Time, agent, p string, prefix bool, wait time.Duration) (l Lease, id uint64, queued bool, err error) {
	if c := t.conflict(p, prefix); c != nil && c.Agent == agent {
		if c.Path == p && c.Prefix == prefix {
			c.Expires = now.Add(t.TTL)
			return *c, 0, false, nil
		}
		return Lease{}, 0, false, fmt.Errorf("%w: %s overlaps %s, which you hold (token %d)", ErrLeaseHeld, p, c.Path, c.Token)
	}
	c := t.conflict(p, prefix)
	_, blocked := t.blockedUntil(now, p, prefix)
	ahead := t.waiterAhead(len(t.waiting), p, prefix)
	if c == nil && !blocked && ahead == nil {
		l, err := t.grant(now, agent, p, prefix)
		return l, 0, false, err
	}
	if wait <= 0 {
		switch {
		case c != nil:
			return Lease{}, 0, false, fmt.Errorf("%w: %s is held by %s (token %d) until %s at the latest", ErrLeaseHeld, c.Path, c.Agent, c.Token, c.Expires.UTC().Format(time.RFC3339Nano))
		case blocked:
			return Lease{}, 0, false, fmt.Errorf("%w: %s is in its lock delay (its last holder did not release it)", ErrLeaseHeld, p)
		default:
			return Lease{}, 0, false, fmt.Errorf("%w: %s: %s is waiting for it already", ErrLeaseHeld, p, ahead.agent)
		}
	}
	t.reqID++
	t.waiting = append(t.waiting, &request{id: t.reqID, agent: agent, path: p, prefix: prefix, deadline: now.Add(wait), asked: now})
	return Lease{}, t.reqID, true, nil
}

// waiterAhead returns the first of the first n waiting requests that
// overlaps the scope.
func (t *Table) waiterAhead(n int, p string, prefix bool) *request {
	for _, r := range t.waiting[:n] {
		if overlaps(r.path, r.prefix, p, prefix) {
			return r
		}
	}
	return nil
}

// find returns the caller's live lease with that token.
func (t *Table) find(agent string, token uint64) (*Lease, error) {
	l := t.held[token]
	if l == nil || l.Agent != agent {
		return nil, fmt.Errorf("%w: token %d is not a live lease of %s", ErrStaleToken, token, agent)
	}
	return l, nil
}

// Lookup returns the caller's live lease with that token, or ErrStaleToken.
func (t *Table) Lookup(agent string, token uint64) (Lease, error) {
	l, err := t.find(agent, token)
	if err != nil {
		return Lease{}, err
	}
	return *l, nil
}

// Renew moves the lease's expiry to now + TTL.
func (t *Table) Renew(now time.Time, agent string, token uint64) (Lease, error) {
	l, err := t.find(agent, token)
	if err != nil {
		return Lease{}, err
	}
	l.Expires = now.Add(t.TTL)
	return *l, nil
}

// Outcome is what happened to waiting requests and leases as time passed or
// a lease was let go.
type Outcome struct {
	Granted  map[uint64]Lease // request id -> its lease
	TimedOut []uint64         // request ids that waited in vain
	Expired  []Lease          // leases whose TTL passed
}

// Release ends the caller's lease and serves the waiters it was holding up.
func (t *Table) Release(now time.Time, agent string, token uint64) (Lease, Outcome, error) {
	l, err := t.find(agent, token)
	if err != nil {
		return Lease{}, Outcome{}, err
	}
	delete(t.held, token)
	return *l, t.serve(now), nil
}

// Dead revokes every lease of agent (its process is gone) and drops its
// waiting requests; their scopes are blocked for the lock delay.
func (t *Table) Dead(now time.Time, agent string) (revoked []Lease, dropped []uint64, out Outcome) {
	for tok, l := range t.held {
		if l.Agent == agent {
			revoked = append(revoked, *l)
			delete(t.held, tok)
			t.block(now, l)
		}
	}
	kept := t.waiting[:0]
	for _, r := range t.waiting {
		if r.agent == agent {
			dropped = append(dropped, r.id)
			continue
		}
		kept = append(kept, r)
	}
	t.waiting = kept
	return revoked, dropped, t.serve(now)
}

func (t *Table) block(now time.Time, l *Lease) {
	if t.LockDelay > 0 {
		t.blocked = append(t.blocked, blockedScope{path: l.Path, prefix: l.Prefix, until: now.Add(t.LockDelay)})
	}
}

// Advance expires leases whose TTL has passed (their scopes enter the lock
// delay), ends lock delays, times out waiters and grants what it can.
func (t *Table) Advance(now time.Time) Outcome {
	var expired []Lease
	for tok, l := range t.held {
		if !now.Before(l.Expires) {
			expired = append(expired, *l)
			delete(t.held, tok)
			t.block(now, l)
		}
	}
	out := t.serve(now)
	out.Expired = expired
	return out
}

// serve drops finished lock delays, times out waiters, and grants, in
// arrival order, each waiting request that overlaps nothing held, blocked
// or waiting ahead of it.
func (t *Table) serve(now time.Time) Outcome {
	out := Outcome{Granted: map[uint64]Lease{}}
	kb := t.blocked[:0]
	for _, b := range t.blocked {
		if now.Before(b.until) {
			kb = append(kb, b)
		}
	}
	t.blocked = kb
	kept := t.waiting[:0]
	for _, r := range t.waiting {
		if !now.Before(r.deadline) {
			out.TimedOut = append(out.TimedOut, r.id)
			continue
		}
		kept = append(kept, r)
	}
	t.waiting = kept
	for i := 0; i < len(t.waiting); i++ {
		r := t.waiting[i]
		if t.conflict(r.path, r.prefix) != nil || t.waiterAhead(i, r.path, r.prefix) != nil {
			continue
		}
		if _, b := t.blockedUntil(now, r.path, r.prefix); b {
			continue
		}
		l, err := t.grant(now, r.agent, r.path, r.prefix)
		if err != nil {
			continue // the counter could not be saved: it stays waiting
		}
		out.Granted[r.id] = l
		t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
		i--
	}
	return out
}

// Cancel drops a waiting request (its caller gave up).
func (t *Table) Cancel(id uint64) {
	for i, r := range t.waiting {
		if r.id == id {
			t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
			return
		}
	}
}

// Next is when Advance should next run: the earliest expiry, end of a lock
// delay or waiter deadline; zero when there is none.
func (t *Table) Next() time.Time {
	var next time.Time
	min := func(x time.Time) {
		if next.IsZero() || x.Before(next) {
			next = x
		}
	}
	for _, l := range t.held {
		min(l.Expires)
	}
	for _, b := range t.blocked {
		min(b.until)
	}
	for _, r := range t.waiting {
		min(r.deadline)
	}
	return next
}
