package terrarium

import (
	"runtime"
	"runtime/debug"
)

// Version is the Terrarium release; builds may set it with
// -ldflags "-X github.com/terrarium-sim/terrarium.Version=v1.2.3".
var Version = "0.1.0-dev"

// VersionString is what `terrarium version` prints: release, VCS revision when
// the binary was built from a checkout, and the Go version.
func VersionString() string {
	s := "terrarium " + Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += " (" + kv.Value[:12] + ")"
			}
		}
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
