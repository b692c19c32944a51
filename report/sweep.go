package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Sweep is what a report shows of a sweep directory (terrarium sweep's
// output: sweep.csv and a run directory per point).
type Sweep struct {
	Dir      string
	Name     string   // the scenario's name, from a run's result.json
	Vars     []string // the swept variables, sweep.csv's columns before "seed"
	Runs     []SweepRun
	Key      []string // the key results: the columns charted and tabled
	Same     []string // result columns with one value in every finished run
	Scenario string   // the first run's scenario.hcl
}

// SweepRun is one row of sweep.csv.
type SweepRun struct {
	Vars   []string // values, in Sweep.Vars order
	Seed   string
	Status string
	Ticks  string
	Error  string
	Dir    string
	Values map[string]string // result columns by name
}

// figureColumn reports whether a sweep.csv column is a result worth showing:
// the world's figures (world.*), except the bookkeeping of its per-metric
// summaries (from, ticks, sum, sum_sq) and their spread (sd, min, max),
// which stay in sweep.csv.
func figureColumn(name string) bool {
	if !strings.HasPrefix(name, "world.") {
		return false
	}
	for _, s := range []string{".from", ".ticks", ".sum", ".sum_sq", ".sd", ".min", ".max"} {
		if strings.HasPrefix(name, "world.metrics.") && strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// IsSweep reports whether dir is a sweep directory (it has sweep.csv).
func IsSweep(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "sweep.csv"))
	return err == nil
}

// LoadSweep reads a sweep directory's sweep.csv and, for the scenario's
// name and text, its first run.
func LoadSweep(dir string) (*Sweep, error) {
	path := filepath.Join(dir, "sweep.csv")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("report: %s is empty", path)
	}
	head := rows[0]
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, need := range []string{"seed", "status", "ticks", "state_hash", "duration_ms", "error", "dir"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("report: %s has no column %q (is it a sweep.csv?)", path, need)
		}
	}
	s := &Sweep{Dir: dir, Vars: head[:col["seed"]]}
	// Results: the world's figures, then each metric's last value (the
	// columns between state_hash and duration_ms): a world whose figures
	// are only its settings (the repeated game's payoffs) still has its
	// metrics charted.
	var results []string
	for _, h := range head[col["dir"]+1:] {
		if figureColumn(h) {
			results = append(results, h)
		}
	}
	results = append(results, head[col["state_hash"]+1:col["duration_ms"]]...)
	for i, r := range rows[1:] {
		if len(r) != len(head) {
			return nil, fmt.Errorf("report: %s:%d: %d fields, the header has %d", path, i+2, len(r), len(head))
		}
		run := SweepRun{Vars: r[:col["seed"]], Seed: r[col["seed"]], Status: r[col["status"]], Ticks: r[col["ticks"]],
			Error: r[col["error"]], Dir: r[col["dir"]], Values: map[string]string{}}
		for _, k := range results {
			run.Values[k] = r[col[k]]
		}
		s.Runs = append(s.Runs, run)
	}
	// A result with one value in every finished run (a setting, a count
	// that never moved) is listed once; the others are the key results.
	for _, k := range results {
		seen, finished := map[string]bool{}, 0
		for _, r := range s.Runs {
			if r.Status == "finished" {
				seen[r.Values[k]] = true
				finished++
			}
		}
		if finished > 1 && len(seen) == 1 {
			s.Same = append(s.Same, k)
		} else {
			s.Key = append(s.Key, k)
		}
	}
	for _, r := range s.Runs {
		if r.Dir == "" {
			continue
		}
		rd := r.Dir
		if !filepath.IsAbs(rd) {
			if _, err := os.Stat(rd); err != nil {
				rd = filepath.Join(dir, filepath.Base(filepath.Dir(rd)), filepath.Base(rd))
			}
		}
		if b, err := os.ReadFile(filepath.Join(rd, "scenario.hcl")); err == nil {
			s.Scenario = string(b)
		}
		if b, err := os.ReadFile(filepath.Join(rd, "result.json")); err == nil {
			var res struct {
				Scenario string `json:"scenario"`
			}
			if json.Unmarshal(b, &res) == nil {
				s.Name = res.Scenario
			}
		}
		if s.Scenario != "" {
			break
		}
	}
	return s, nil
}

var sweepPage = template.Must(template.Must(template.New("sweep").Parse(`{{define "extraCSS"}}table { font-size: .85em; } td, th { padding: 2px 6px; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }{{end}}`)).Parse(pageHead + `
<body>
<h1>{{.Title}}</h1>
<h2>Parameters</h2>
{{.Params}}
<h2>Key results against {{.Against}}</h2>
<p>Each chart: the mean over the seeds (line), their range, min to max (band), and every seed's value (dots); finished runs only. A result with values at fewer than two points of the axis is in the table of runs only.</p>
{{if .Charts}}<div class="charts">{{range .Charts}}<figure>{{.}}</figure>{{end}}</div>{{else}}<p>No finished run has a result to chart.</p>{{end}}
<h2>Runs</h2>
{{.Runs}}
{{if .Same}}<h2>The same in every finished run</h2>
{{.Same}}{{end}}
<h2>Scenario</h2>
<pre>{{.Scenario}}</pre>
</body>
</html>
`))

// WriteSweep renders the report of a sweep directory into dir/report.html
// and returns its path.
func WriteSweep(dir string) (string, error) {
	s, err := LoadSweep(dir)
	if err != nil {
		return "", err
	}
	return writePage(dir, func(w io.Writer) error { return RenderSweep(w, s) })
}

// RenderSweep writes s's page to w.
func RenderSweep(w io.Writer, s *Sweep) error {
	name := s.Name
	if name == "" {
		name = filepath.Base(s.Dir)
	}
	xVar, lineVars := s.axes()
	against := "the seed"
	if xVar >= 0 {
		against = html.EscapeString(s.Vars[xVar])
	}
	data := struct {
		Title, Scenario string
		Against         template.HTML
		Params, Runs    template.HTML
		Same            template.HTML
		Charts          []template.HTML
	}{Title: "Terrarium sweep report: " + name, Scenario: s.Scenario, Against: template.HTML(against)}
	data.Params = s.params()
	data.Runs = s.runsTable()
	if len(s.Same) > 0 {
		var b strings.Builder
		b.WriteString("<table>")
		for _, k := range s.Same {
			v := ""
			for _, r := range s.Runs {
				if r.Status == "finished" {
					v = r.Values[k]
					break
				}
			}
			fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>", html.EscapeString(strings.TrimPrefix(k, "world.")), html.EscapeString(v))
		}
		b.WriteString("</table>")
		data.Same = template.HTML(b.String())
	}
	for _, k := range s.Key {
		if c, ok := s.chart(k, xVar, lineVars); ok {
			data.Charts = append(data.Charts, template.HTML(c))
		}
	}
	return sweepPage.Execute(w, data)
}

// axes picks the chart's x: the first variable with two or more values
// (-1: none, the seed is the x), and the variables whose combinations make
// the lines (the other variables with two or more values).
func (s *Sweep) axes() (x int, lines []int) {
	x = -1
	for i := range s.Vars {
		vals := map[string]bool{}
		for _, r := range s.Runs {
			vals[r.Vars[i]] = true
		}
		if len(vals) < 2 {
			continue
		}
		if x < 0 {
			x = i
		} else {
			lines = append(lines, i)
		}
	}
	return x, lines
}

func (s *Sweep) params() template.HTML {
	var b strings.Builder
	b.WriteString("<table>")
	row := func(k, v string) {
		fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>", html.EscapeString(k), html.EscapeString(v))
	}
	row("scenario", s.Name)
	row("directory", s.Dir)
	for i, v := range s.Vars {
		row("variable "+v, strings.Join(distinct(s.Runs, func(r SweepRun) string { return r.Vars[i] }), ", "))
	}
	row("seeds", strings.Join(distinct(s.Runs, func(r SweepRun) string { return r.Seed }), ", "))
	counts := map[string]int{}
	for _, r := range s.Runs {
		counts[r.Status]++
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	row("runs", fmt.Sprintf("%d (%s)", len(s.Runs), strings.Join(parts, ", ")))
	b.WriteString("</table>")
	return template.HTML(b.String())
}

func (s *Sweep) runsTable() template.HTML {
	var b strings.Builder
	b.WriteString("<table><tr>")
	for _, v := range s.Vars {
		fmt.Fprintf(&b, "<th>%s</th>", html.EscapeString(v))
	}
	b.WriteString("<th>seed</th><th>status</th><th>ticks</th>")
	for _, k := range s.Key {
		fmt.Fprintf(&b, "<th>%s</th>", html.EscapeString(strings.TrimPrefix(k, "world.")))
	}
	b.WriteString("<th>error</th></tr>")
	for _, r := range s.Runs {
		b.WriteString("<tr>")
		for _, v := range r.Vars {
			fmt.Fprintf(&b, "<td>%s</td>", html.EscapeString(v))
		}
		bad := ""
		if r.Status != "finished" {
			bad = ` class="bad"`
		}
		fmt.Fprintf(&b, "<td>%s</td><td%s>%s</td><td>%s</td>", html.EscapeString(r.Seed), bad, html.EscapeString(r.Status), html.EscapeString(r.Ticks))
		for _, k := range s.Key {
			fmt.Fprintf(&b, "<td>%s</td>", html.EscapeString(short(r.Values[k])))
		}
		fmt.Fprintf(&b, "<td>%s</td></tr>", html.EscapeString(r.Error))
	}
	b.WriteString("</table>")
	return template.HTML(b.String())
}

// short rounds a long decimal for the table (sweep.csv keeps every digit).
func short(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || len(v) <= 8 {
		return v
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

func distinct(runs []SweepRun, key func(SweepRun) string) []string {
	var out []string
	for _, r := range runs {
		if k := key(r); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sweepLine is one line of a sweep chart: per x position, the seeds' values.
type sweepLine struct {
	label string
	ys    map[int][]float64 // x index -> values
}

// chart draws result k against the x variable (or the seed): per line,
// the mean over the seeds as a polyline, the min-max band as a polygon and
// every value as a dot. ok is false when no finished run has a number, or
// a line would have fewer than two points.
func (s *Sweep) chart(k string, xVar int, lineVars []int) (string, bool) {
	xOf := func(r SweepRun) string { return r.Seed }
	if xVar >= 0 {
		xOf = func(r SweepRun) string { return r.Vars[xVar] }
	}
	xs := distinct(s.Runs, xOf)
	xpos := make([]float64, len(xs))
	numeric := true
	for i, x := range xs {
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			numeric = false
			break
		}
		xpos[i] = f
	}
	if !numeric {
		for i := range xpos {
			xpos[i] = float64(i)
		}
	}
	var lines []*sweepLine
	byLabel := map[string]*sweepLine{}
	n := 0
	for _, r := range s.Runs {
		if r.Status != "finished" {
			continue
		}
		v, err := strconv.ParseFloat(r.Values[k], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		var parts []string
		for _, i := range lineVars {
			parts = append(parts, s.Vars[i]+"="+r.Vars[i])
		}
		label := strings.Join(parts, ", ")
		l := byLabel[label]
		if l == nil {
			l = &sweepLine{label: label, ys: map[int][]float64{}}
			byLabel[label] = l
			lines = append(lines, l)
		}
		xi := slices.Index(xs, xOf(r))
		l.ys[xi] = append(l.ys[xi], v)
		n++
	}
	if n == 0 {
		return "", false
	}
	for _, l := range lines {
		if len(l.ys) < 2 {
			return "", false // a line needs two points: the runs table has it
		}
	}
	const w, h, ml, mr, mt, mb = 480.0, 220.0, 56.0, 12.0, 24.0, 44.0
	x0, x1 := minMax(xpos)
	var all []float64
	for _, l := range lines {
		for _, v := range l.ys {
			all = append(all, v...)
		}
	}
	y0, y1 := minMax(all)
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	if y1 == y0 {
		y0, y1 = y0-1, y1+1
	}
	px := func(x float64) float64 { return ml + (x-x0)/(x1-x0)*(w-ml-mr) }
	py := func(y float64) float64 { return h - mb - (y-y0)/(y1-y0)*(h-mt-mb) }
	title := strings.TrimPrefix(k, "world.")
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart sweep" data-metric="%s" xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g">`,
		html.EscapeString(title), w, h, w, h)
	fmt.Fprintf(&b, `<text x="%g" y="16" font-size="13" font-weight="bold">%s</text>`, ml, html.EscapeString(title))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`, ml, mt, w-ml-mr, h-mt-mb)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, ml-4, mt+10, num(y1))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, ml-4, h-mb, num(y0))
	for i, x := range xs {
		fmt.Fprintf(&b, `<text x="%.2f" y="%g" font-size="11" text-anchor="middle">%s</text>`, px(xpos[i]), h-mb+14, html.EscapeString(x))
	}
	axis := "seed"
	if xVar >= 0 {
		axis = s.Vars[xVar]
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="middle">%s</text>`, (ml+w-mr)/2, h-6, html.EscapeString(axis))
	for li, l := range lines {
		col := palette[li%len(palette)]
		idx := sortedIdx(l.ys, xpos)
		// the band: max along x, then min back
		if len(idx) > 1 {
			b.WriteString(`<polygon class="band" fill="` + col + `" fill-opacity="0.15" stroke="none" points="`)
			for _, i := range idx {
				_, hi := minMax(l.ys[i])
				fmt.Fprintf(&b, "%.2f,%.2f ", px(xpos[i]), py(hi))
			}
			for j := len(idx) - 1; j >= 0; j-- {
				lo, _ := minMax(l.ys[idx[j]])
				fmt.Fprintf(&b, "%.2f,%.2f ", px(xpos[idx[j]]), py(lo))
			}
			b.WriteString(`"/>`)
		}
		fmt.Fprintf(&b, `<polyline class="series" data-line="%s" fill="none" stroke="%s" stroke-width="1.5" points="`, html.EscapeString(l.label), col)
		for j, i := range idx {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.2f,%.2f", px(xpos[i]), py(mean(l.ys[i])))
		}
		b.WriteString(`"/>`)
		for _, i := range idx {
			for _, v := range l.ys[i] {
				fmt.Fprintf(&b, `<circle class="seed" cx="%.2f" cy="%.2f" r="2" fill="%s" fill-opacity="0.6"/>`, px(xpos[i]), py(v), col)
			}
		}
		if l.label != "" {
			fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="%s" text-anchor="end">%s</text>`, w-mr-4, mt+14+13*float64(li), col, html.EscapeString(l.label))
		}
	}
	b.WriteString(`</svg>`)
	return b.String(), true
}

// sortedIdx lists the x indices that have values, by x position.
func sortedIdx(ys map[int][]float64, xpos []float64) []int {
	var idx []int
	for i := range ys {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return xpos[idx[a]] < xpos[idx[b]] })
	return idx
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// writePage renders into dir/report.html atomically.
func writePage(dir string, render func(io.Writer) error) (string, error) {
	path := filepath.Join(dir, "report.html")
	tmp, err := os.CreateTemp(dir, ".report.html.tmp-*")
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", fmt.Errorf("report: write %s: %w", path, err)
	}
	if err := render(tmp); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("report: %w", err)
	}
	return path, nil
}
