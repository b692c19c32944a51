package sdk_test

import (
	"errors"
	"testing"

	"github.com/terrarium-sim/terrarium/agents/sdk"
	"github.com/terrarium-sim/terrarium/workspace"
)

// A refused lease operation unwraps to the sentinel of its code, so agents
// branch with errors.Is; the end-to-end behaviour is tested in the module
// root (leases_test.go), against the real host.
func TestLeaseErrorUnwraps(t *testing.T) {
	for code, want := range map[string]error{
		workspace.CodeHeld: sdk.ErrLeaseHeld, workspace.CodeStaleToken: sdk.ErrStaleToken,
		workspace.CodeBadPath: sdk.ErrBadPath, workspace.CodeExists: sdk.ErrExists, workspace.CodeHashMismatch: sdk.ErrHashMismatch,
	} {
		var err error = &sdk.LeaseError{Op: "acquire", Code: code, Reason: "because"}
		if !errors.Is(err, want) {
			t.Errorf("code %s does not unwrap to %v", code, want)
		}
		if workspace.Code(want) != code {
			t.Errorf("Code(%v) = %q, want %q", want, workspace.Code(want), code)
		}
	}
	if sdk.HashBytes([]byte("abc")) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Error("HashBytes is not SHA-256")
	}
}
