package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// palette colours the agent groups of a grid.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// pageHead starts both pages (a run's and a sweep's): the title and the
// styles they share; each adds its own rules in extraCSS.
const pageHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
pre { background: #f8f8f8; padding: 1em; overflow-x: auto; font-size: .85em; }
figure { margin: 0; } figcaption { font-size: .85em; color: #555; }
.bad { color: #b00; font-weight: bold; }
{{template "extraCSS"}}
</style>
</head>`

var page = template.Must(template.Must(template.New("report").Parse(`{{define "extraCSS"}}table { font-size: .9em; } td, th { padding: 2px 8px; }
.charts, .grids { display: flex; flex-wrap: wrap; gap: 1em; }{{end}}`)).Parse(pageHead + `
<body>
<h1>{{.Title}}</h1>
{{.Summary}}
<h2>Key results</h2>
{{.Results}}
<h2>Metrics over ticks</h2>
{{if .Charts}}<div class="charts">{{range .Charts}}<figure>{{.}}</figure>{{end}}</div>{{else}}<p>No metrics were recorded.</p>{{end}}
{{if .Grids}}<h2>Grid snapshots</h2>
<div class="grids">{{range .Grids}}<figure>{{.}}</figure>{{end}}</div>{{end}}
<h2>Scenario</h2>
<pre>{{.Scenario}}</pre>
</body>
</html>
`))

// Render writes r's page to w.
func Render(w io.Writer, r *Run) error {
	name, _ := r.Result["scenario"].(string)
	if name == "" {
		name = "run"
	}
	data := struct {
		Title    string
		Summary  template.HTML
		Results  template.HTML
		Charts   []template.HTML
		Grids    []template.HTML
		Scenario string
	}{Title: "Terrarium report: " + name, Scenario: r.Scenario}
	data.Summary = summary(r)
	if wr, ok := r.Result["world"]; ok {
		data.Results = template.HTML(value(wr, 0))
	} else {
		data.Results = template.HTML(`<p>No result.json: the run did not finish writing it.</p>`)
	}
	for _, s := range r.Metrics {
		data.Charts = append(data.Charts, template.HTML(Chart(s)))
	}
	for _, g := range r.Grids {
		data.Grids = append(data.Grids, template.HTML(GridSVG(g)))
	}
	return page.Execute(w, data)
}

func summary(r *Run) template.HTML {
	var b strings.Builder
	b.WriteString("<table>")
	row := func(k string, v any) {
		if v == nil {
			return
		}
		fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>", html.EscapeString(k), html.EscapeString(scalar(v)))
	}
	for _, k := range []string{"run", "scenario", "status", "error", "seed", "ticks", "state_hash", "isolation", "started", "finished", "duration_ms"} {
		row(k, r.Result[k])
	}
	row("directory", r.Dir)
	chain := "intact"
	if r.ChainErr != nil {
		chain = "BROKEN: " + r.ChainErr.Error()
	}
	fmt.Fprintf(&b, "<tr><th>event log</th><td%s>%s</td></tr>", map[bool]string{true: ` class="bad"`}[r.ChainErr != nil], html.EscapeString(chain))
	b.WriteString("</table>")
	return template.HTML(b.String())
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', 6, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// value renders a decoded JSON value: objects as key/value tables, lists
// of objects as tables with a column per key, other lists inline.
func value(v any, depth int) string {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return "<em>none</em>"
		}
		if depth > 4 {
			return "…"
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if rows, ok := namedRecords(x, keys); ok {
			return objectTable(rows, depth)
		}
		var b strings.Builder
		b.WriteString("<table>")
		for _, k := range keys {
			fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>", html.EscapeString(k), value(x[k], depth+1))
		}
		b.WriteString("</table>")
		return b.String()
	case []any:
		if len(x) == 0 {
			return "<em>none</em>"
		}
		if rows, ok := objects(x); ok && depth <= 4 {
			return objectTable(rows, depth)
		}
		parts := make([]string, 0, min(len(x), 50))
		for i, e := range x {
			if i == 50 {
				parts = append(parts, fmt.Sprintf("… (%d in all)", len(x)))
				break
			}
			if _, nested := e.([]any); nested {
				parts = append(parts, "["+html.EscapeString(fmt.Sprint(e))+"]")
			} else {
				parts = append(parts, value(e, depth+1))
			}
		}
		return strings.Join(parts, ", ")
	default:
		return html.EscapeString(scalar(x))
	}
}

// namedRecords turns an object whose values are all objects of scalars
// (metric summaries) into rows with the key in a "name" column.
func namedRecords(x map[string]any, keys []string) ([]map[string]any, bool) {
	rows := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		m, ok := x[k].(map[string]any)
		if !ok {
			return nil, false
		}
		row := map[string]any{" name": k}
		for f, v := range m {
			switch v.(type) {
			case map[string]any, []any:
				return nil, false
			}
			row[f] = v
		}
		rows = append(rows, row)
	}
	return rows, true
}

func objects(list []any) ([]map[string]any, bool) {
	out := make([]map[string]any, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		out[i] = m
	}
	return out, true
}

func objectTable(rows []map[string]any, depth int) string {
	seen := map[string]bool{}
	var cols []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	sort.Strings(cols)
	var b strings.Builder
	b.WriteString("<table><tr>")
	for _, c := range cols {
		fmt.Fprintf(&b, "<th>%s</th>", html.EscapeString(c))
	}
	b.WriteString("</tr>")
	for i, r := range rows {
		if i == 200 {
			fmt.Fprintf(&b, "<tr><td colspan=\"%d\">… %d rows in all</td></tr>", len(cols), len(rows))
			break
		}
		b.WriteString("<tr>")
		for _, c := range cols {
			fmt.Fprintf(&b, "<td>%s</td>", value(r[c], depth+1))
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table>")
	return b.String()
}

// Chart is the inline SVG of one metric over the ticks: one polyline.
func Chart(s Series) string {
	const w, h, ml, mr, mt, mb = 480.0, 200.0, 56.0, 12.0, 24.0, 28.0
	xs, ys := thin(s.Ticks, s.Values)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" data-metric="%s" xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g">`,
		html.EscapeString(s.Name), w, h, w, h)
	fmt.Fprintf(&b, `<text x="%g" y="16" font-size="13" font-weight="bold">%s</text>`, ml, html.EscapeString(s.Name))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`, ml, mt, w-ml-mr, h-mt-mb)
	if len(xs) == 0 {
		b.WriteString(`<text x="200" y="110" font-size="12">no values</text></svg>`)
		return b.String()
	}
	x0, x1 := minMax(xs)
	y0, y1 := minMax(ys)
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	if y1 == y0 {
		y0, y1 = y0-1, y1+1
	}
	px := func(x float64) float64 { return ml + (x-x0)/(x1-x0)*(w-ml-mr) }
	py := func(y float64) float64 { return h - mb - (y-y0)/(y1-y0)*(h-mt-mb) }
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, ml-4, mt+10, num(y1))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, ml-4, h-mb, num(y0))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11">tick %s</text>`, ml, h-8, num(x0))
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" text-anchor="end">%s</text>`, w-mr, h-8, num(x1))
	b.WriteString(`<polyline class="series" fill="none" stroke="#1f77b4" stroke-width="1.5" points="`)
	for i := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.2f,%.2f", px(xs[i]), py(ys[i]))
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}

func num(v float64) string { return html.EscapeString(strconv.FormatFloat(v, 'g', 4, 64)) }

func minMax(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if lo > hi {
		return 0, 0
	}
	return lo, hi
}

// thin keeps at most MaxPoints finite points, the first and last included.
func thin(xs, ys []float64) ([]float64, []float64) {
	var fx, fy []float64
	for i := range xs {
		if !math.IsNaN(ys[i]) && !math.IsInf(ys[i], 0) {
			fx, fy = append(fx, xs[i]), append(fy, ys[i])
		}
	}
	if len(fx) <= MaxPoints {
		return fx, fy
	}
	step := float64(len(fx)-1) / float64(MaxPoints-1)
	ox, oy := make([]float64, 0, MaxPoints), make([]float64, 0, MaxPoints)
	for k := range MaxPoints {
		i := int(math.Round(float64(k) * step))
		ox, oy = append(ox, fx[i]), append(oy, fy[i])
	}
	return ox, oy
}

// GridSVG draws one grid snapshot: agents as squares coloured by group,
// live cells (life) in black, grown grass (predator_prey) green and eaten
// grass brown.
func GridSVG(g Grid) string {
	const side = 300.0
	cell := side / float64(max(g.Width, g.Height, 1))
	w, h := cell*float64(g.Width), cell*float64(g.Height)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="grid" data-tick="%d" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %g %g">`,
		g.At, w, h+20, w, h+20)
	bg := "#fff"
	if _, grass := g.Layers["regrow"]; grass {
		bg = "#9fd89f"
	}
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%g" height="%g" fill="%s" stroke="#999"/>`, w, h, bg)
	for _, c := range g.Layers["regrow"] {
		fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#c8a165"/>`, float64(c[0])*cell, float64(c[1])*cell, cell, cell)
	}
	for _, c := range g.Layers["alive"] {
		fmt.Fprintf(&b, `<rect class="cell" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#222"/>`, float64(c[0])*cell, float64(c[1])*cell, cell, cell)
	}
	if g.Rules != "life" {
		for _, a := range g.Agents {
			col := palette[((a[2]%len(palette))+len(palette))%len(palette)]
			fmt.Fprintf(&b, `<rect class="agent" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s" fill-opacity="0.8"/>`,
				float64(a[0])*cell+cell*0.1, float64(a[1])*cell+cell*0.1, cell*0.8, cell*0.8, col)
		}
	}
	var legend []string
	if g.Rules != "life" {
		for i, name := range g.Groups {
			legend = append(legend, fmt.Sprintf(`<tspan fill="%s">■ %s</tspan>`, palette[i%len(palette)], html.EscapeString(name)))
		}
	}
	fmt.Fprintf(&b, `<text x="0" y="%g" font-size="12">tick %d %s</text></svg>`, h+15, g.At, strings.Join(legend, " "))
	return b.String()
}
