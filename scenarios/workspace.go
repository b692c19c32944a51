package scenarios

import (
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Enforcement modes of the workspace block.
const (
	EnforcementAuto        = "auto"        // permissions when agents run as their own users, else detect
	EnforcementPermissions = "permissions" // file ownership and modes; needs agents as their own users
	EnforcementDetect      = "detect"      // detect changes without a lease and restore
)

// Workspace defaults.
const (
	DefaultLeaseTTL  = 10 * time.Second
	DefaultLockDelay = 500 * time.Millisecond
)

// Workspace is the scenario's workspace block: how the shared tree is
// guarded.
type Workspace struct {
	Enforcement string        // enforcement = "auto" (default) | "permissions" | "detect"
	Seed        string        // seed = "dir": absolute path of a directory copied into workspace/shared
	LeaseTTL    time.Duration // lease_ttl = "10s"
	LockDelay   time.Duration // lock_delay = "500ms"
}

var workspaceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "enforcement"},
		{Name: "seed"},
		{Name: "lease_ttl"},
		{Name: "lock_delay"},
	},
}

var enforcementAllowed = []string{EnforcementAuto, EnforcementPermissions, EnforcementDetect}

func defaultWorkspace() Workspace {
	return Workspace{Enforcement: EnforcementAuto, LeaseTTL: DefaultLeaseTTL, LockDelay: DefaultLockDelay}
}

// workspace decodes the workspace block.
func (d *decoder) workspace(b *hcl.Block, s *Scenario) {
	content, diags := b.Body.Content(workspaceSchema)
	d.diags = append(d.diags, diags...)
	attrs := content.Attributes
	if a := optional(attrs, "enforcement"); a != nil {
		if v, ok := d.enum(a, enforcementAllowed, nil); ok {
			s.Workspace.Enforcement = v
		}
	}
	if a := optional(attrs, "seed"); a != nil {
		if v, ok := d.str(a, `a directory, like seed = "notebook-seed"`); ok {
			p := v
			if !filepath.IsAbs(p) {
				p = filepath.Join(d.dir, p)
			}
			fi, err := os.Stat(p)
			switch {
			case v == "":
				d.errorf(a.Expr.Range(), invalid("seed"), `seed must name a directory (relative to the scenario file), like seed = "notebook-seed".`)
			case err != nil:
				d.errorf(a.Expr.Range(), invalid("seed"), "seed directory %s: %v; seed is relative to the scenario file's directory.", p, err)
			case !fi.IsDir():
				d.errorf(a.Expr.Range(), invalid("seed"), "seed %s is not a directory: name a directory whose files are copied into workspace/shared.", p)
			default:
				s.Workspace.Seed = p
			}
		}
	}
	if a := optional(attrs, "lease_ttl"); a != nil {
		if v, ok := d.duration(a); ok {
			if v < 10*time.Millisecond {
				d.errorf(a.Expr.Range(), invalid("lease_ttl"), `lease_ttl must be at least 10ms (how long a lease lives without a renewal), like lease_ttl = "10s".`)
			} else {
				s.Workspace.LeaseTTL = v
			}
		}
	}
	if a := optional(attrs, "lock_delay"); a != nil {
		if v, ok := d.duration(a); ok {
			s.Workspace.LockDelay = v
		}
	}
}
