package agents

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		want    watchCmd
		wantErr bool
	}{
		{line: "group 1234", want: watchCmd{kind: "group", pgid: 1234}},
		{line: "  group   77  ", want: watchCmd{kind: "group", pgid: 77}},
		{line: "uids 100000 16", want: watchCmd{kind: "uids", base: 100000, n: 16}},
		{line: "uids 4294967295 1", want: watchCmd{kind: "uids", base: 1<<32 - 1, n: 1}},
		{line: "sync", want: watchCmd{kind: "sync"}},
		{line: "done", want: watchCmd{kind: "done"}},
		{line: "", wantErr: true},
		{line: "kill 12", wantErr: true},
		{line: "group", wantErr: true},
		{line: "group 12 13", wantErr: true},
		{line: "group 1", wantErr: true}, // init
		{line: "group 0", wantErr: true},
		{line: "group -5", wantErr: true},
		{line: "group x", wantErr: true},
		{line: "uids 100000", wantErr: true},
		{line: "uids 100000 0", wantErr: true},
		{line: "uids 100000 -1", wantErr: true},
		{line: "uids -1 2", wantErr: true},
		{line: "uids 4294967295 2", wantErr: true}, // past the last uid
		{line: "uids 4294967296 1", wantErr: true},
		{line: "done now", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseCommand(tt.line)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseCommand(%q) error = %v, want error %v", tt.line, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("parseCommand(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

// proc makes a table entry; start defaults to 100+pid.
func proc(pid, ppid, pgid, sid int, state byte) procInfo {
	return procInfo{procStat: procStat{pid: pid, ppid: ppid, pgid: pgid, sid: sid, state: state}, start: uint64(100 + pid)}
}

func TestTrackerUpdate(t *testing.T) {
	type step struct {
		table []procInfo
		live  []int // tracked live pids after the step
	}
	reused := proc(10, 1, 10, 10, 'S')
	reused.start = 9999
	tests := []struct {
		name   string
		groups map[int]uint64 // watched group -> leader start
		steps  []step
	}{
		{
			name:   "group, session and descendants in new sessions",
			groups: map[int]uint64{10: 110},
			steps: []step{{
				table: []procInfo{
					proc(1, 0, 1, 1, 'S'),
					proc(5, 1, 5, 5, 'S'),     // the host
					proc(10, 5, 10, 10, 'S'),  // the agent
					proc(11, 10, 10, 10, 'S'), // its child
					proc(12, 10, 12, 10, 'S'), // own group, same session
					proc(13, 11, 13, 13, 'S'), // setsid'd grandchild
					proc(14, 13, 13, 13, 'S'), // its child
					proc(15, 14, 15, 15, 'Z'), // a zombie descendant
					proc(20, 5, 20, 20, 'S'),  // another agent, not watched
					proc(21, 20, 20, 20, 'S'), // its child
					proc(60, 10, 60, 60, 'R'), // direct setsid'd child of the agent
					proc(61, 60, 60, 60, 'R'), // its child
					proc(62, 61, 62, 62, 'R'), // and grandchild, own group
					proc(65, 1, 65, 65, 'R'),  // unrelated
					proc(66, 65, 10, 10, 'R'), // session member under an unrelated parent
					proc(67, 66, 67, 67, 'R'), // and its child
				},
				live: []int{10, 11, 12, 13, 14, 60, 61, 62, 66, 67},
			}},
		},
		{
			name:   "tracked after reparenting; a dead leader's members still match",
			groups: map[int]uint64{10: 110},
			steps: []step{
				{
					table: []procInfo{proc(10, 5, 10, 10, 'S'), proc(11, 10, 10, 10, 'S'), proc(13, 10, 13, 13, 'S'), proc(14, 13, 13, 13, 'S')},
					live:  []int{10, 11, 13, 14},
				},
				{
					// The host and the agent died: 11 and 13 went to init.
					table: []procInfo{proc(11, 1, 10, 10, 'S'), proc(13, 1, 13, 13, 'S'), proc(14, 13, 13, 13, 'S'), proc(15, 13, 13, 13, 'S')},
					live:  []int{11, 13, 14, 15},
				},
			},
		},
		{
			name:   "untracked orphan in a new session is out of reach",
			groups: map[int]uint64{10: 110},
			steps: []step{{
				table: []procInfo{proc(11, 1, 10, 10, 'S'), proc(13, 1, 13, 13, 'S')},
				live:  []int{11},
			}},
		},
		{
			name:   "reused group id is dropped; its new members are not taken",
			groups: map[int]uint64{10: 110},
			steps: []step{
				{
					table: []procInfo{proc(10, 5, 10, 10, 'S'), proc(11, 10, 10, 10, 'S')},
					live:  []int{10, 11},
				},
				{
					table: []procInfo{reused, proc(12, 10, 10, 10, 'S')}, // 11 died, 10 came back as a new leader
					live:  nil,
				},
			},
		},
		{
			name:   "leader gone when watched: members match until the id comes back",
			groups: map[int]uint64{10: 0},
			steps: []step{
				{table: []procInfo{proc(11, 1, 10, 10, 'S')}, live: []int{11}},
				{table: []procInfo{reused, proc(12, 10, 10, 10, 'S')}, live: nil},
			},
		},
		{
			name:   "reused tracked pid is dropped",
			groups: map[int]uint64{10: 110},
			steps: []step{
				{table: []procInfo{proc(10, 5, 10, 10, 'S'), proc(13, 10, 13, 13, 'S')}, live: []int{10, 13}},
				{table: []procInfo{proc(10, 5, 10, 10, 'S'), func() procInfo { p := proc(13, 1, 13, 13, 'S'); p.start = 5000; return p }()}, live: []int{10}},
			},
		},
		{
			name:   "never itself nor init",
			groups: map[int]uint64{10: 110},
			steps: []step{{
				table: []procInfo{proc(1, 0, 10, 10, 'S'), proc(10, 5, 10, 10, 'S'), proc(99, 10, 10, 10, 'S')},
				live:  []int{10},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(hclog.NewNullLogger())
			tr.self = 99
			for g, s := range tt.groups {
				tr.groups[g] = s
			}
			for i, st := range tt.steps {
				var got []int
				for _, p := range tr.update(st.table) {
					got = append(got, p.pid)
				}
				if !slices.Equal(got, st.live) {
					t.Errorf("step %d: live tracked = %v, want %v", i, got, st.live)
				}
			}
		})
	}
}

func TestParseProcInfo(t *testing.T) {
	stat := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615"
	got, ok := parseProcInfo(4242, []byte(stat))
	want := procInfo{procStat: procStat{pid: 4242, ppid: 1, pgid: 4242, sid: 4242, state: 'S'}, start: 987654}
	if !ok || got != want {
		t.Errorf("parseProcInfo = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := parseProcInfo(1, []byte("1 (short) S 0 1 1 0")); ok {
		t.Error("parseProcInfo accepted a line without a start time")
	}
}

func TestParseStatusUID(t *testing.T) {
	tests := []struct {
		status         string
		uid            uint32
		zombie, wantOK bool
	}{
		{"Name:\tsleep\nState:\tS (sleeping)\nUid:\t1600000000\t1600000000\t1600000000\t1600000000\n", 1600000000, false, true},
		{"Name:\tsh\nState:\tZ (zombie)\nUid:\t7\t0\t0\t0\n", 7, true, true},
		{"Name:\tx\nState:\tR (running)\n", 0, false, false},
		{"Uid:\tbad\n", 0, false, false},
	}
	for _, tt := range tests {
		uid, zombie, ok := parseStatusUID([]byte(tt.status))
		if uid != tt.uid || zombie != tt.zombie || ok != tt.wantOK {
			t.Errorf("parseStatusUID(%q) = %d, %v, %v; want %d, %v, %v", tt.status, uid, zombie, ok, tt.uid, tt.zombie, tt.wantOK)
		}
	}
}

func TestServeWatchdogProtocol(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // replies after the hello
	}{
		{"done ends it", "sync\ndone\nsync\n", []string{"ok", "ok"}},
		{"a bad done is not done", "done now\nbogus\nuids 5 0\ndone\n", []string{
			"error done: want 1 fields, got 2", `error unknown command "bogus"`, `error uids: bad count "0"`, "ok"}},
		{"end of file with nothing watched", "uids 1600000000 0\nsync\n", []string{`error uids: bad count "0"`, "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			if err := serveWatchdog(strings.NewReader(tt.input), &out, hclog.NewNullLogger()); err != nil {
				t.Fatalf("serveWatchdog: %v", err)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			want := append([]string{watchdogHello}, tt.want...)
			if !slices.Equal(got, want) {
				t.Errorf("replies = %q, want %q", got, want)
			}
		})
	}
}
