package workspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// tokenBlock is how many fencing tokens are reserved on disk at a time:
// the counter is written once per block, not once per grant.
const tokenBlock = 1024

// tokenFile persists the fencing-token high-water mark, so a resumed run
// (a new Workspace on the same version store) never issues a token again:
// it starts after the last reserved block.
type tokenFile struct {
	path     string
	last     uint64 // at open: every token up to it may have been issued
	reserved uint64
}

type tokenRecord struct {
	Reserved uint64 `json:"reserved"`
}

func openTokenFile(path string) (*tokenFile, error) {
	t := &tokenFile{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("fencing tokens: %w", err)
	default:
		var r tokenRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("fencing tokens %s: %w", path, err)
		}
		t.last, t.reserved = r.Reserved, r.Reserved
	}
	return t, nil
}

// issue is Table.OnToken: it reserves the next block before a token past
// the reserved one is handed out.
func (t *tokenFile) issue(next uint64) error {
	if next <= t.reserved {
		return nil
	}
	r := tokenRecord{Reserved: next + tokenBlock - 1}
	b, _ := json.Marshal(r)
	tmp := t.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, t.path)
	}
	if err != nil {
		return fmt.Errorf("save fencing tokens: %w", err)
	}
	t.reserved = r.Reserved
	return nil
}
