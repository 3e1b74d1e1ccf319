package profile

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
)

// palette colours the profiles in charts, in cluster order.
var palette = []string{"#d1495b", "#2e86ab", "#66a182", "#edae49", "#8d6a9f", "#00798c", "#f26419", "#4d4d4d"}

// maxScatterPoints bounds the points drawn in the scatter plot; larger
// tables are thinned evenly so the page stays small.
const maxScatterPoints = 4000

// ReportInfo describes the run for the report header.
type ReportInfo struct {
	Title  string // default "classpulse learner profiles"
	Source string // the input file
	Seed   uint64
}

// WriteReport writes a self-contained HTML page: the profiles with their
// group means, the elbow curve, a 2-D PCA scatter, a radar chart per
// profile and, when prediction ran, the model comparison with per-class and
// per-profile figures. Every chart is inline SVG; the page loads nothing.
func WriteReport(w io.Writer, res *Result, info ReportInfo) error {
	if info.Title == "" {
		info.Title = "classpulse learner profiles"
	}
	ordered := slices.Clone(res.Profiles)
	slices.SortStableFunc(ordered, func(a, b Profile) int { return cmp.Compare(a.Score, b.Score) })
	data := map[string]any{
		"Ordered": ordered,
		"Info":    info,
		"Res":     res,
		"Rows":    len(res.Assign),
		"Cols":    len(res.Columns),
		"Groups":  FeatureGroups,
		"Scatter": template.HTML(scatterSVG(res)),
		"Elbow":   template.HTML(elbowSVG(res.Elbow, res.K)),
		"Radars":  radarSVGs(res),
		"Explained": func() string {
			if res.PCA == nil || len(res.PCA.Explained) == 0 {
				return ""
			}
			total := 0.0
			for _, e := range res.PCA.Explained {
				total += e
			}
			return fmt.Sprintf("%.1f %%", 100*total)
		}(),
	}
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   func(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) },
	"f3":    func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"f2":    func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"color": func(c int) string { return palette[c%len(palette)] },
	"group": func(m map[Group]float64, g Group) string {
		v, ok := m[g]
		if !ok {
			return "–"
		}
		return fmt.Sprintf("%.3f", v)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Info.Title}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle;margin-right:.3em}
.radars{display:flex;flex-wrap:wrap;gap:1em}.radars figure{margin:0}
figcaption{text-align:center;font-weight:600}.note{color:#666;font-size:.9em}
</style></head><body>
<h1>{{.Info.Title}}</h1>
<p>{{.Rows}} students, {{.Cols}} feature columns{{if .Info.Source}}, from <code>{{.Info.Source}}</code>{{end}};
seed {{.Info.Seed}}; {{.Res.Imputed}} missing cells filled with the column median.
Features are min–max normalised to [0, 1]; group means count confused, bored and frustrated as 1 − x.</p>

<h2>Profiles (k = {{.Res.K}})</h2>
<table><tr><th>profile</th><th>students</th><th>share</th>{{range .Groups}}<th>{{.}}</th>{{end}}<th>vs overall</th></tr>
{{range .Ordered}}<tr><td><span class="sw" style="background:{{color .Cluster}}"></span>{{.Name}}</td><td>{{.Size}}</td><td>{{pct .Share}}</td>
{{$p := .}}{{range $.Groups}}<td>{{group $p.Groups .}}</td>{{end}}<td>{{printf "%+.3f" .Score}}</td></tr>
{{end}}<tr><td>overall</td><td>{{.Rows}}</td><td>100 %</td>{{$o := .Res.Overall}}{{range .Groups}}<td>{{group $o .}}</td>{{end}}<td></td></tr>
</table>
<p class="note">A profile whose mean over the groups lies below the overall mean is marginal, above it diligent, and near it balanced.</p>
{{if .Res.Elbow}}<h2>Elbow</h2>{{.Elbow}}{{end}}

<h2>Profiles on two principal components ({{.Explained}} of the variance)</h2>
{{.Scatter}}

<h2>Radar charts</h2>
<div class="radars">{{range .Radars}}{{.}}{{end}}</div>

{{with .Res.Prediction}}
<h2>Grade prediction (A ≥ 90, B ≥ 80, C ≥ 60, D &lt; 60)</h2>
<p>{{len .Train}} students for training, {{len .Test}} held out (stratified); every model sees the same split.</p>
<table><tr><th>model</th><th>accuracy</th><th>macro F1</th><th>weighted F1</th><th>training s</th></tr>
{{range .Results}}<tr><td>{{.Name}}</td><td>{{pct .Metrics.Accuracy}}</td><td>{{f3 .Metrics.MacroF1}}</td><td>{{f3 .Metrics.Weighted}}</td><td>{{f2 .Seconds}}</td></tr>
{{end}}</table>
<h3>Per class</h3>
<table><tr><th>model</th>{{range .Classes}}<th colspan="3">{{.}}</th>{{end}}</tr>
<tr><th></th>{{range .Classes}}<th>P</th><th>R</th><th>F1</th>{{end}}</tr>
{{range .Results}}<tr><td>{{.Name}}</td>{{range .Metrics.PerClass}}<td>{{f3 .Precision}}</td><td>{{f3 .Recall}}</td><td>{{f3 .F1}}</td>{{end}}</tr>
{{end}}</table>
{{$first := index .Results 0}}
<h3>Confusion matrix, {{$first.Name}} (rows: true grade)</h3>
<table><tr><th></th>{{range .Classes}}<th>{{.}}</th>{{end}}</tr>
{{$cls := .Classes}}{{range $i, $row := $first.Metrics.Confusion}}<tr><th>{{index $cls $i}}</th>{{range $row}}<td>{{.}}</td>{{end}}</tr>{{end}}
</table>
{{end}}
{{if .Res.PerProfile}}<h3>Accuracy per profile (held-out students)</h3>
<table><tr><th>model</th><th>profile</th><th>students</th><th>accuracy</th></tr>
{{range .Res.PerProfile}}<tr><td>{{.Model}}</td><td>{{.Profile}}</td><td>{{.Rows}}</td><td>{{if .Rows}}{{pct .Accuracy}}{{else}}–{{end}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

// scatterSVG draws every row (thinned to maxScatterPoints) on the two
// principal components, coloured by profile.
func scatterSVG(res *Result) string {
	const W, H, pad = 720.0, 480.0, 40.0
	if len(res.Coords) == 0 {
		return ""
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, c := range res.Coords {
		minX, maxX = min(minX, c[0]), max(maxX, c[0])
		minY, maxY = min(minY, c[1]), max(maxY, c[1])
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		maxY = minY + 1
	}
	sx := func(v float64) float64 { return pad + (v-minX)/(maxX-minX)*(W-2*pad) }
	sy := func(v float64) float64 { return H - pad - (v-minY)/(maxY-minY)*(H-2*pad) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="PCA scatter">`, W+160, H, W+160, H)
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#ccc"/>`, pad, pad, W-2*pad, H-2*pad)
	ex := [2]float64{}
	if res.PCA != nil {
		copy(ex[:], res.PCA.Explained)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-size="12">PC1 (%.1f %%)</text>`, W/2, H-10, 100*ex[0])
	fmt.Fprintf(&b, `<text x="12" y="%.0f" font-size="12" transform="rotate(-90 12 %.0f)" text-anchor="middle">PC2 (%.1f %%)</text>`, H/2, H/2, 100*ex[1])
	step := max(1, len(res.Coords)/maxScatterPoints)
	for i := 0; i < len(res.Coords); i += step {
		c := res.Coords[i]
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.2" fill="%s" fill-opacity="0.55"/>`, sx(c[0]), sy(c[1]), palette[res.Assign[i]%len(palette)])
	}
	for c, p := range res.Profiles {
		y := pad + 20*float64(c)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/>`, W+10, y, palette[c%len(palette)])
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12">%s (%d)</text>`, W+28, y+10, html.EscapeString(p.Name), p.Size)
	}
	if step > 1 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="#666">every %d. student drawn</text>`, pad, pad-8, step)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// elbowSVG draws the inertia curve with the chosen k marked.
func elbowSVG(curve []float64, k int) string {
	if len(curve) < 2 {
		return ""
	}
	const W, H, pad = 420.0, 220.0, 36.0
	top := curve[0]
	if top <= 0 {
		top = 1
	}
	sx := func(i int) float64 { return pad + float64(i)/float64(len(curve)-1)*(W-2*pad) }
	sy := func(v float64) float64 { return H - pad - v/top*(H-2*pad) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" role="img" aria-label="elbow curve">`, W, H)
	b.WriteString(`<polyline fill="none" stroke="#2e86ab" stroke-width="2" points="`)
	for i, v := range curve {
		fmt.Fprintf(&b, "%.1f,%.1f ", sx(i), sy(v))
	}
	b.WriteString(`"/>`)
	for i, v := range curve {
		r, fill := 3.0, "#2e86ab"
		if i+1 == k {
			r, fill = 6, "#d1495b"
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.0f" fill="%s"/><text x="%.1f" y="%.0f" font-size="11" text-anchor="middle">%d</text>`, sx(i), sy(v), r, fill, sx(i), H-pad+16, i+1)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="14" font-size="12">inertia by k; elbow at k = %d</text></svg>`, pad, k)
	return b.String()
}

// radarAxes condenses the columns to at most 24 radar axes: each column
// not a windowed click count is one axis; the windowed counts become one
// axis per window (their mean). Values are oriented (1−x for negative
// features).
func radarAxes(res *Result) (names []string, pick func(row []float64) []float64) {
	type axis struct {
		name string
		cols []int
	}
	var axes []axis
	windows := map[int]int{} // window → axis index
	for j, c := range res.Columns {
		if _, w, ok := parseWindowFeature(c); ok {
			a, seen := windows[w]
			if !seen {
				a = len(axes)
				windows[w] = a
				axes = append(axes, axis{name: fmt.Sprintf("clicks w%d", w)})
			}
			axes[a].cols = append(axes[a].cols, j)
			continue
		}
		axes = append(axes, axis{name: c, cols: []int{j}})
	}
	if len(axes) > 24 {
		axes = axes[:24]
	}
	for _, a := range axes {
		names = append(names, a.name)
	}
	pick = func(row []float64) []float64 {
		out := make([]float64, len(axes))
		for k, a := range axes {
			s := 0.0
			for _, j := range a.cols {
				v := row[j]
				if negativeFeatures[res.Columns[j]] {
					v = 1 - v
				}
				s += v
			}
			out[k] = s / float64(len(a.cols))
		}
		return out
	}
	return names, pick
}

// radarSVGs draws one radar chart per profile with the overall mean as a
// dashed outline.
func radarSVGs(res *Result) []template.HTML {
	names, pick := radarAxes(res)
	if len(names) < 3 {
		return nil
	}
	mean := make([]float64, len(res.Columns))
	for _, r := range res.Normalised {
		for j, v := range r {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(max(1, len(res.Normalised)))
	}
	overall := pick(mean)
	const W, S, R = 420.0, 340.0, 105.0
	cx, cy := W/2, S/2
	n := len(names)
	pt := func(k int, v float64) (float64, float64) {
		a := 2*math.Pi*float64(k)/float64(n) - math.Pi/2
		return cx + R*v*math.Cos(a), cy + R*v*math.Sin(a)
	}
	poly := func(vals []float64) string {
		var b strings.Builder
		for k, v := range vals {
			x, y := pt(k, min(1, max(0, v)))
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		return b.String()
	}
	var out []template.HTML
	for c, p := range res.Profiles {
		var b strings.Builder
		fmt.Fprintf(&b, `<figure><svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" role="img" aria-label="radar %s">`, W, S, html.EscapeString(p.Name))
		for _, ring := range []float64{0.25, 0.5, 0.75, 1} {
			ringVals := make([]float64, n)
			for k := range ringVals {
				ringVals[k] = ring
			}
			fmt.Fprintf(&b, `<polygon points="%s" fill="none" stroke="#ddd"/>`, poly(ringVals))
		}
		for k, name := range names {
			x, y := pt(k, 1)
			lx, ly := pt(k, 1.18)
			anchor := "middle"
			if lx < cx-5 {
				anchor = "end"
			} else if lx > cx+5 {
				anchor = "start"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, cx, cy, x, y)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="%s">%s</text>`, lx, ly+3, anchor, html.EscapeString(name))
		}
		fmt.Fprintf(&b, `<polygon points="%s" fill="none" stroke="#555" stroke-dasharray="4 3"/>`, poly(overall))
		col := palette[c%len(palette)]
		fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="0.3" stroke="%s" stroke-width="2"/>`, poly(pick(p.Centroid)), col, col)
		fmt.Fprintf(&b, `</svg><figcaption>%s — %d students (dashed: overall)</figcaption></figure>`, html.EscapeString(p.Name), p.Size)
		out = append(out, template.HTML(b.String()))
	}
	return out
}
