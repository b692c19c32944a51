package agents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// detectCgroups on the layouts of testdata/cgroups/<layout>: mountinfo and
// cgroup are a process's /proc/self/mountinfo and /proc/self/cgroup, fs
// holds the cgroup files it reads. Each controller is where its v2 group
// enables it, else in its own v1 hierarchy, else nowhere with the reason.
func TestDetectCgroupLayouts(t *testing.T) {
	for _, tt := range []struct {
		layout string
		want   map[string]string // controller -> "v1 DIR" | "v2 DIR" | "none: <part of why>"
	}{
		{"mixed", map[string]string{ // this machine kind: v1 hierarchies and an empty v2
			"memory":  "v1 /sys/fs/cgroup/memory/process_api/34baed87826b2bd4765387e805132497",
			"pids":    "v1 /sys/fs/cgroup/pids",
			"cpu":     "v1 /sys/fs/cgroup/cpu",
			"freezer": "v1 /sys/fs/cgroup/freezer",
		}},
		{"v1", map[string]string{
			"memory":  "v1 /sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope",
			"pids":    "v1 /sys/fs/cgroup/pids/user.slice/user-1000.slice/session-2.scope",
			"cpu":     "v1 /sys/fs/cgroup/cpu,cpuacct/user.slice",
			"freezer": "v1 /sys/fs/cgroup/freezer",
		}},
		{"v1-container", map[string]string{ // mounts show the container's subtree; a mount point with spaces
			"memory":  "v1 /sys/fs/cgroup/memory",
			"pids":    "v1 /sys/fs/cgroup/pids/worker",
			"cpu":     "v1 /sys/fs/cgroup/cpu and acct",
			"freezer": "none: no cgroup file system with the freezer controller is mounted",
		}},
		{"v2", map[string]string{
			"memory":  "v2 /sys/fs/cgroup/user.slice/session-3.scope",
			"pids":    "v2 /sys/fs/cgroup/user.slice/session-3.scope",
			"cpu":     "v2 /sys/fs/cgroup/user.slice/session-3.scope",
			"freezer": "v2 /sys/fs/cgroup/user.slice/session-3.scope",
		}},
		{"hybrid", map[string]string{ // v2 where it enables the controller, v1 for the rest
			"memory":  "v2 /sys/fs/cgroup/unified/system.slice/app.service",
			"pids":    "v2 /sys/fs/cgroup/unified/system.slice/app.service",
			"cpu":     "v1 /sys/fs/cgroup/cpu,cpuacct/system.slice/app.service",
			"freezer": "v1 /sys/fs/cgroup/freezer/system.slice/app.service",
		}},
		{"unlisted", map[string]string{
			"memory":  "none: the memory controller is neither enabled in this process's cgroup v2 group (/sys/fs/cgroup/unified/cgroup.controllers) nor mounted",
			"pids":    "none: /proc/self/cgroup names no pids group",
			"cpu":     "none: the cpu controller is neither enabled",
			"freezer": "none: the freezer controller is neither enabled",
		}},
		{"none", map[string]string{
			"memory":  "none: no cgroup file system with the memory controller is mounted",
			"pids":    "none: no cgroup file system with the pids controller is mounted",
			"cpu":     "none: no cgroup file system with the cpu controller is mounted",
			"freezer": "none: no cgroup file system with the freezer controller is mounted",
		}},
	} {
		t.Run(tt.layout, func(t *testing.T) {
			dir := filepath.Join("testdata", "cgroups", tt.layout)
			read := func(name string) []byte {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			ctrl, why := detectCgroups(read("mountinfo"), read("cgroup"), filepath.Join(dir, "fs"))
			for ctl, want := range tt.want {
				got := "none: " + why[ctl]
				if h := ctrl[ctl]; h != nil {
					got = "v1 " + h.self
					if h.v2 {
						got = "v2 " + h.self
					}
					if why[ctl] != "" {
						t.Errorf("%s: usable at %s, and also a reason it is not: %s", ctl, h.self, why[ctl])
					}
				}
				if strings.HasPrefix(want, "none: ") && !strings.HasPrefix(got, want) || !strings.HasPrefix(want, "none: ") && got != want {
					t.Errorf("%s: %q, want %q", ctl, got, want)
				}
			}
		})
	}
}

// mountinfo escapes spaces, tabs, newlines and backslashes in paths.
func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/sys/fs/cgroup/cpu\040and\040acct`: "/sys/fs/cgroup/cpu and acct",
		`/a\011b\012c\134d`:                 "/a\tb\nc\\d",
		`/plain`:                            "/plain",
		`/trailing\04`:                      `/trailing\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
