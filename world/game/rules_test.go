package game

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestScorePD(t *testing.T) {
	p := []float64{3, 0, 5, 1} // R S T P
	tests := []struct {
		moves string
		want  [2]float64
	}{
		{"CC", [2]float64{3, 3}},
		{"CD", [2]float64{0, 5}},
		{"DC", [2]float64{5, 0}},
		{"DD", [2]float64{1, 1}},
	}
	for _, tt := range tests {
		out := make([]float64, 2)
		scorePD(p, []byte(tt.moves), out)
		if out[0] != tt.want[0] || out[1] != tt.want[1] {
			t.Errorf("scorePD(%s) = %v, want %v", tt.moves, out, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	base := func(f func(c *Config)) Config {
		c := *NewConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name       string
		cfg        Config
		wantErr    []string // substrings, all must appear
		wantParams []float64
		wantMove   byte
	}{
		{name: "defaults", cfg: *NewConfig(), wantParams: []float64{3, 0, 5, 1}, wantMove: 'C'},
		{name: "empty pairing and move take defaults", cfg: base(func(c *Config) { c.Pairing, c.DefaultMove = "", "" }),
			wantParams: []float64{3, 0, 5, 1}, wantMove: 'C'},
		{name: "partial payoffs", cfg: base(func(c *Config) { c.Payoffs = map[string]float64{"T": 4.5, "S": -1} }),
			wantParams: []float64{3, -1, 4.5, 1}, wantMove: 'C'},
		{name: "default move D", cfg: base(func(c *Config) { c.DefaultMove = "D" }), wantParams: []float64{3, 0, 5, 1}, wantMove: 'D'},
		{name: "unknown game", cfg: base(func(c *Config) { c.Game = "chess" }), wantErr: []string{`game = "chess"`, "prisoners_dilemma"}},
		{name: "zero rounds", cfg: base(func(c *Config) { c.Rounds = 0 }), wantErr: []string{"rounds = 0", "at least 1"}},
		{name: "unknown pairing", cfg: base(func(c *Config) { c.Pairing = "swiss" }), wantErr: []string{`pairing = "swiss"`, "round_robin"}},
		{name: "unknown payoff", cfg: base(func(c *Config) { c.Payoffs = map[string]float64{"X": 1} }), wantErr: []string{`unknown key "X"`, "R, S, T, P"}},
		{name: "T not above R", cfg: base(func(c *Config) { c.Payoffs = map[string]float64{"T": 3} }), wantErr: []string{"T > R > P > S", "R=3 S=0 T=3 P=1", "(fails: T > R)"}},
		{name: "P not above S", cfg: base(func(c *Config) { c.Payoffs = map[string]float64{"S": 1.5, "T": 4} }), wantErr: []string{"(fails: P > S)"}},
		{name: "R not above P", cfg: base(func(c *Config) { c.Payoffs = map[string]float64{"P": 3.5} }), wantErr: []string{"(fails: R > P)"}},
		{name: "2R not above T+S", cfg: base(func(c *Config) { c.Payoffs = map[string]float64{"T": 7} }), wantErr: []string{"(fails: 2R > T + S)"}},
		{name: "bad default move", cfg: base(func(c *Config) { c.DefaultMove = "X" }), wantErr: []string{`default_move = "X"`, `"C" or "D"`}},
		{name: "all at once", cfg: base(func(c *Config) { c.Rounds, c.Pairing, c.DefaultMove = -1, "x", "c" }),
			wantErr: []string{"rounds = -1", `pairing = "x"`, `default_move = "c"`}},
		{name: "unknown game still checks the rest", cfg: base(func(c *Config) { c.Game, c.Rounds, c.Pairing = "chess", 0, "swiss" }),
			wantErr: []string{`game = "chess"`, "rounds = 0", `pairing = "swiss"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := resolve(tt.cfg)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("resolve: no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if !reflect.DeepEqual(s.params, tt.wantParams) || s.defaultMove != tt.wantMove {
				t.Errorf("params %v move %q, want %v %q", s.params, s.defaultMove, tt.wantParams, tt.wantMove)
			}
		})
	}
}

// TestResolveErrorsNameTheirSetting checks that resolve reports each
// problem as its own error saying which setting (and payoff key) it is
// about, as the scenarios package needs to place it.
func TestResolveErrorsNameTheirSetting(t *testing.T) {
	c := *NewConfig()
	c.Rounds, c.Pairing, c.DefaultMove = 0, "swiss", "Z"
	c.Payoffs = map[string]float64{"Q": 1, "T": 4}
	_, err := resolve(c)
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("resolve error %v is not a joined error", err)
	}
	var got []string
	for _, e := range multi.Unwrap() {
		var ws interface{ WorldSetting() (string, string) }
		if !errors.As(e, &ws) {
			t.Errorf("error %q names no setting", e)
			continue
		}
		name, key := ws.WorldSetting()
		got = append(got, name+"/"+key)
	}
	want := []string{"rounds/", "pairing/", "payoffs/Q", "default_move/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings named = %q, want %q", got, want)
	}

	c = *NewConfig()
	c.Payoffs = map[string]float64{"T": 2}
	_, err = resolve(c)
	var ws interface{ WorldSetting() (string, string) }
	if !errors.As(err, &ws) {
		t.Fatalf("payoff check error %v names no setting", err)
	}
	if name, key := ws.WorldSetting(); name != "payoffs" || key != "" {
		t.Errorf("payoff check names %q/%q, want payoffs/", name, key)
	}
}

// TestConfigSettingsOptional checks that every setting may be left out of
// the world block, so that NewConfig's defaults apply.
func TestConfigSettingsOptional(t *testing.T) {
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		f := ty.Field(i)
		tag, ok := f.Tag.Lookup("hcl")
		if !ok || !strings.HasSuffix(tag, ",optional") {
			t.Errorf("Config.%s has tag hcl:%q, want an optional setting", f.Name, tag)
		}
	}
}

func TestRank(t *testing.T) {
	tests := []struct {
		name   string
		scores map[string]float64
		want   string // "group:rank" in order
	}{
		{"distinct", map[string]float64{"a": 1, "b": 3, "c": 2}, "b:1 c:2 a:3"},
		{"tie for second", map[string]float64{"a": 5, "b": 7, "c": 7, "d": 1}, "b:1 c:1 a:3 d:4"},
		{"1224", map[string]float64{"w": 9, "x": 4, "y": 4, "z": 1}, "w:1 x:2 y:2 z:4"},
		{"all tied, by name", map[string]float64{"c": 0, "a": 0, "b": 0}, "a:1 b:1 c:1"},
		{"one", map[string]float64{"solo": 0}, "solo:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st []Standing
			for g, s := range tt.scores {
				st = append(st, Standing{Group: g, Score: s})
			}
			rank(st)
			var got []string
			for _, s := range st {
				got = append(got, s.Group+":"+strconv.Itoa(s.Rank))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("rank = %s, want %s", g, tt.want)
			}
		})
	}
}
