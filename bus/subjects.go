package bus

// Subject names, all in one place. Every subject of a run starts with
// "sim.<run>." so one run's traffic never mixes with another's.
//
//	agent -> host   sim.<run>.agent.<id>.{hello,act,lease,bye}
//	host -> agent   sim.<run>.to.<id>.{obs,stop}
//	host -> all     sim.<run>.world.{tick,end}
//	events          sim.<run>.events.<kind>
//	agent inboxes   _INBOX.<run>.<id>.>
//
// An agent may publish only under AgentPrefix and subscribe only to ToPrefix,
// WorldPrefix and its InboxPrefix (see Server.AddAgent).

// Message kinds carried in Envelope.Kind, also the last subject token.
const (
	KindHello = "hello" // agent -> host, a request: "my subscriptions are in place"
	KindAct   = "act"   // agent -> host: the action for Envelope.Tick
	KindBye   = "bye"   // agent -> host: "I am leaving"
	KindLease = "lease" // agent -> host, a request: a lease operation (docs/protocol.md, "Leases")
	KindObs   = "obs"   // host -> agent: the observation for Envelope.Tick
	KindStop  = "stop"  // host -> agent: "finish and exit"
	KindTick  = "tick"  // host -> all: tick Envelope.Tick started
	KindEnd   = "end"   // host -> all: the run is over
)

// Root is the prefix of every subject of a run.
func Root(run string) string { return "sim." + run }

// AgentSubject is where agent id publishes messages of kind.
func AgentSubject(run, id, kind string) string { return "sim." + run + ".agent." + id + "." + kind }

// AgentPrefix is the wildcard covering everything agent id may publish.
func AgentPrefix(run, id string) string { return "sim." + run + ".agent." + id + ".>" }

// AllAgents is the wildcard the host subscribes to for messages of kind from every agent.
func AllAgents(run, kind string) string { return "sim." + run + ".agent.*." + kind }

// ToSubject is where the host sends agent id messages of kind.
func ToSubject(run, id, kind string) string { return "sim." + run + ".to." + id + "." + kind }

// ToPrefix is the wildcard covering every message addressed to agent id.
func ToPrefix(run, id string) string { return "sim." + run + ".to." + id + ".>" }

// WorldSubject is where the host broadcasts messages of kind to every agent.
func WorldSubject(run, kind string) string { return "sim." + run + ".world." + kind }

// WorldPrefix is the wildcard covering every broadcast.
func WorldPrefix(run string) string { return "sim." + run + ".world.>" }

// EventSubject is where events of kind are published.
func EventSubject(run, kind string) string { return "sim." + run + ".events." + kind }

// EventPrefix covers every event of a run.
func EventPrefix(run string) string { return "sim." + run + ".events.>" }

// InboxPrefix is agent id's reply inbox prefix (nats.CustomInboxPrefix).
func InboxPrefix(run, id string) string { return "_INBOX." + run + "." + id }

// AgentFromSubject returns the agent id and kind of a subject made by
// AgentSubject for run, or ok=false when it is not one.
func AgentFromSubject(run, subject string) (id, kind string, ok bool) {
	p := "sim." + run + ".agent."
	if len(subject) <= len(p) || subject[:len(p)] != p {
		return "", "", false
	}
	rest := subject[len(p):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			id, kind = rest[:i], rest[i+1:]
			if id == "" || kind == "" {
				return "", "", false
			}
			return id, kind, true
		}
	}
	return "", "", false
}

// Pool subjects (runtime "pool": one process serves many agent ids). A
// pool's subjects live under their own tokens ("pool", "topool"), so no
// agent id can name them, and its inbox under its own root.
//
//	pool -> host    sim.<run>.pool.<pool>.{hello,acts,bye}
//	host -> pool    sim.<run>.topool.<pool>.{obs,stop}
//	pool inbox      _PINBOX.<run>.<pool>.>
const (
	KindActs = "acts" // pool -> host: its members' actions for Envelope.Tick, [{"agent","data"}...]
)

// PoolSubject is where pool id publishes messages of kind.
func PoolSubject(run, id, kind string) string { return "sim." + run + ".pool." + id + "." + kind }

// PoolPrefix covers everything pool id may publish.
func PoolPrefix(run, id string) string { return "sim." + run + ".pool." + id + ".>" }

// ToPoolSubject is where the host sends pool id messages of kind.
func ToPoolSubject(run, id, kind string) string { return "sim." + run + ".topool." + id + "." + kind }

// ToPoolPrefix covers every message addressed to pool id.
func ToPoolPrefix(run, id string) string { return "sim." + run + ".topool." + id + ".>" }

// PoolInboxPrefix is pool id's reply inbox prefix (nats.CustomInboxPrefix).
func PoolInboxPrefix(run, id string) string { return "_PINBOX." + run + "." + id }

// PoolUser is the login of pool id. The dot keeps it apart from every
// agent id (ids have no dots) and from the host's login.
func PoolUser(id string) string { return "pool." + id }
