package terrarium

// ReserveAgentUIDs holds a block of agent users and groups for n agents the
// way a run does (the first free block at or after base, 0 meaning
// DefaultAgentUIDBase; leftovers of a dead run under it are killed first),
// for programs that start agents through agents.Supervisor themselves, such
// as the benchmark baseline (package bench). Agent i runs as first+i.
// release kills whatever still runs under the block's first n UIDs and
// gives the block back; call it once.
func ReserveAgentUIDs(base uint32, n int) (first uint32, release func() error, err error) {
	if base == 0 {
		base = DefaultAgentUIDBase
	}
	b, err := reserveUIDs(base, n)
	if err != nil {
		return 0, nil, err
	}
	return b.base, func() error {
		err := b.killAll(n)
		b.release()
		return err
	}, nil
}
