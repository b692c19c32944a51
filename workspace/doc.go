// Package workspace is a run's shared file tree: the lessor (grant, renew,
// release, expire, fencing tokens), its enforcement, the fsnotify watcher
// and the content-addressed version store. It knows neither the bus nor
// the world: the host passes requests in (Acquire, Create, Renew, Release,
// Commit, AgentGone) and receives events through Config.Emit. See
// docs/workspace.md for what users see.
//
// Guarantees:
//
//   - Leases are exclusive on their scope (a file, or a directory and
//     everything under it). Waiting requests are granted in arrival order;
//     none overtakes an earlier overlapping one. Fencing tokens strictly
//     grow, across restarts of the host on the same version store too (the
//     counter is reserved on disk in blocks before a token is handed out).
//   - A lease ends by Release (which commits first), by expiry after TTL
//     without Renew, or by AgentGone; in the last two cases its files are
//     put back to their last committed versions and its scope stays blocked
//     for LockDelay. An operation with a token that is not the caller's
//     live lease fails with ErrStaleToken.
//   - Nothing is lost: every content the host sees in the tree (committed,
//     pending, or put there without a lease) is stored before it is
//     replaced; a version is logged (and synced) before Commit returns.
//   - The host never follows a link in the tree: every operation walks
//     paths element by element with O_NOFOLLOW from a descriptor of the
//     tree's root and acts on descriptors.
//   - Every settled change is accounted for: by a valid holder it is
//     reported pending (file.changed); otherwise it is a violation and
//     undone. Watcher overflows trigger a full rescan, and one runs
//     periodically and on Sync.
//
// Concurrency: every method is safe for concurrent use; one lock guards the
// state, and Emit is called with it held (in order). Acquire may block
// while it waits; the other methods do not wait for other agents. Run
// drives the watcher and the timers until its context is done; call Close
// after Run returned (a second Close does nothing; later calls fail with
// ErrClosed).
//
// Confine and ConfineExec apply Landlock rules to an agent process in
// detect mode (see landlock.go); builtin.Main calls ConfineExec first.
package workspace
