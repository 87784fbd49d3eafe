package report

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"

	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/results"
)

// The list-append check's part of the report: which models the history
// satisfies and which anomalies rule the others out, then each anomaly with
// its meaning and its first cases, every cycle drawn as an SVG graph of its
// transactions (nodes, with the node and its role) and dependencies
// (arrows, labelled with the relation and the key).

// casesShown bounds the cases drawn per anomaly kind (results.json has up
// to ten, and the count).
const casesShown = 3

// relStyle is how a relation is drawn: colour and dash pattern.
var relStyle = map[elle.Rel]struct{ color, dash string }{
	elle.WW:       {"#1f77b4", ""},
	elle.WR:       {"#2ca02c", ""},
	elle.RW:       {"#d62728", ""},
	elle.Realtime: {"#7f7f7f", "5,4"},
	elle.Process:  {"#9467bd", "2,3"},
}

// listAppendHTML renders r for the report.
func listAppendHTML(r *elle.Result) template.HTML {
	if r == nil {
		return ""
	}
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<p>%s transactions (%s ok, %s info, %s fail) on %s keys; dependency edges: %s ww, %s wr, %s rw, %s real-time, %s process.`,
		fmtNum(int64(r.Txns)), fmtNum(int64(r.OK)), fmtNum(int64(r.Info)), fmtNum(int64(r.Fail)), fmtNum(int64(r.Keys)),
		fmtNum(int64(r.Edges.WW)), fmtNum(int64(r.Edges.WR)), fmtNum(int64(r.Edges.RW)), fmtNum(int64(r.Edges.Realtime)), fmtNum(int64(r.Edges.Process)))
	if r.FinalNode != "" {
		fmt.Fprintf(&b, ` Lost appends judged against the final read on %s.`, esc(r.FinalNode))
	}
	b.WriteString("</p>\n")
	b.WriteString(`<table class="models"><tr><th>consistency model</th><th>this history</th><th>because of</th></tr>` + "\n")
	ruled := map[string][]elle.KindCount{}
	for _, ro := range r.RulesOut {
		ruled[ro.Model] = ro.By
	}
	for _, m := range elle.Models {
		verdict, why := "satisfied", ""
		switch {
		case ruled[m.Name] != nil:
			verdict = "ruled out"
			var parts []string
			for _, kc := range ruled[m.Name] {
				parts = append(parts, fmt.Sprintf(`%s <a href="#la-%s">%s</a>`, fmtNum(int64(kc.Count)), esc(string(kc.Kind)), esc(string(kc.Kind))))
			}
			why = strings.Join(parts, ", ")
		case contains(r.Undecided, m.Name):
			verdict, why = "undecided", "a search stopped at its budget"
		}
		class := map[string]string{"satisfied": "valid", "ruled out": "invalid", "undecided": "unknown"}[verdict]
		mark := ""
		if m.Name == r.Model {
			mark = " <b>(judged)</b>"
		}
		fmt.Fprintf(&b, `<tr><td title="%s">%s%s</td><td><span class="tag %s">%s</span></td><td>%s</td></tr>`+"\n",
			esc(m.Doc), esc(m.Name), mark, class, verdict, why)
	}
	b.WriteString("</table>\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "<p class=\"note\">%s.</p>\n", esc(n))
	}
	for _, a := range r.Anomalies {
		count := fmtNum(int64(a.Count))
		if a.AtLeast {
			count = "at least " + count
		}
		fmt.Fprintf(&b, `<h4 id="la-%s">%s: %s</h4><p>%s</p>`+"\n", esc(string(a.Kind)), esc(string(a.Kind)), count, esc(a.Explanation))
		for i, c := range a.Cases[:min(len(a.Cases), casesShown)] {
			writeCase(&b, fmt.Sprintf("la-%s-%d", a.Kind, i), c)
		}
		if len(a.Cases) > casesShown {
			fmt.Fprintf(&b, "<p class=\"note\">%d more cases of %s in results.json.</p>\n", len(a.Cases)-casesShown, esc(string(a.Kind)))
		}
	}
	return template.HTML(b.String()) //nolint:gosec // every piece of text above is escaped
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// writeCase writes one case: its explanation, its drawing (for a cycle)
// and its transactions.
func writeCase(b *strings.Builder, id string, c elle.Case) {
	esc := template.HTMLEscapeString
	fmt.Fprintf(b, "<p>%s</p>\n", esc(c.Text))
	if len(c.Cycle) > 0 {
		caption := "The cycle: each arrow a dependency (ww, wr, rw: write-write, write-read, read-write; realtime, process)."
		if !c.Shortest {
			caption += " The search stopped at its budget: a shorter cycle through the first arrow may exist."
		}
		fmt.Fprintf(b, "<figure class=\"cycle\">%s<figcaption>%s</figcaption></figure>\n", cycleSVG(id, c), caption)
	}
	b.WriteString(`<table><tr><th></th><th>op #</th><th>process</th><th>node</th><th>role</th><th>outcome</th><th>invoked</th><th>completed</th><th>transaction</th></tr>` + "\n")
	for _, t := range c.Txns {
		proc := results.Process(t.Process).String()
		if t.Final {
			proc = "final read"
		}
		fmt.Fprintf(b, `<tr><td><b>%s</b></td><td class="n">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="mono">%s</td></tr>`+"\n",
			esc(t.Name), opNumbers(t.Invoke, t.Complete), esc(proc), esc(t.Node), esc(t.Role), esc(t.Type),
			fmtSecs(t.InvokeNS), fmtSecs(t.CompleteNS), esc(fmtTxn(t.Txn)))
	}
	b.WriteString("</table>\n")
}

func opNumbers(inv, comp int64) string {
	switch {
	case inv < 0:
		return strconv.FormatInt(comp, 10)
	case comp < 0:
		return strconv.FormatInt(inv, 10)
	}
	return fmt.Sprintf("%d–%d", inv, comp)
}

// fmtTxn writes micro-operations as Jepsen does: [append 3 5] [r 3 [1 5]].
func fmtTxn(txn []results.Mop) string {
	parts := make([]string, len(txn))
	for i, m := range txn {
		switch {
		case !m.IsRead():
			parts[i] = fmt.Sprintf("[%s %d %d]", m.F, m.Key, m.Value)
		case m.Read == nil:
			parts[i] = fmt.Sprintf("[r %d nil]", m.Key)
		default:
			parts[i] = fmt.Sprintf("[r %d %s]", m.Key, fmtInts(m.Read))
		}
	}
	s := strings.Join(parts, " ")
	if len(s) > 600 {
		s = s[:600] + " …"
	}
	return s
}

// cycleSVG draws a cycle: its transactions on a circle, in order, and an
// arrow for each step, bent to the right so that the two arrows between a
// pair of transactions stay apart.
func cycleSVG(id string, c elle.Case) string {
	esc := template.HTMLEscapeString
	n := len(c.Txns)
	const nodeR = 26.0
	radius := math.Max(80, 34*float64(n))
	w, h := 2*radius+260, 2*radius+120
	cx, cy := w/2, h/2
	pos := make([][2]float64, n)
	for i := range pos {
		a := -math.Pi/2 + 2*math.Pi*float64(i)/float64(n)
		pos[i] = [2]float64{cx + radius*math.Cos(a), cy + radius*math.Sin(a)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="dependency cycle">`, w, h, w, h)
	b.WriteString("<defs>")
	for _, rel := range []elle.Rel{elle.WW, elle.WR, elle.RW, elle.Realtime, elle.Process} {
		fmt.Fprintf(&b, `<marker id="%s-%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`,
			esc(id), rel, relStyle[rel].color)
	}
	b.WriteString("</defs>")
	for _, s := range c.Cycle {
		if s.From < 0 || s.From >= n || s.To < 0 || s.To >= n {
			continue
		}
		drawStep(&b, id, s, pos[s.From], pos[s.To], nodeR, [2]float64{cx, cy})
	}
	for i, t := range c.Txns {
		p := pos[i]
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.0f" fill="#fff" stroke="#1f2328" stroke-width="1.5"/>`, p[0], p[1], nodeR)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`, p[0], p[1]+5, esc(t.Name))
		where := t.Node
		if t.Role != "" {
			where += " " + t.Role
		}
		if t.Final {
			where = "final " + where
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="#57606a">%s</text>`, p[0], p[1]+nodeR+14, esc(where))
	}
	b.WriteString("</svg>")
	return b.String()
}

// drawStep draws one arrow from a to b as a quadratic curve bent away from
// the centre, labelled at its middle.
func drawStep(b *strings.Builder, id string, s elle.Step, a, z [2]float64, nodeR float64, centre [2]float64) {
	esc := template.HTMLEscapeString
	dx, dy := z[0]-a[0], z[1]-a[1]
	d := math.Hypot(dx, dy)
	if d == 0 {
		return
	}
	ux, uy := dx/d, dy/d
	// The control point: the middle, pushed to the right of the direction
	// of travel (for a pair drawn both ways, the two arrows part).
	bend := math.Min(40, d/3)
	mx, my := (a[0]+z[0])/2+uy*bend, (a[1]+z[1])/2-ux*bend
	start := toward(a, [2]float64{mx, my}, nodeR)
	end := toward(z, [2]float64{mx, my}, nodeR+2)
	st := relStyle[s.Rel]
	dash := ""
	if st.dash != "" {
		dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
	}
	fmt.Fprintf(b, `<path d="M%.1f,%.1f Q%.1f,%.1f %.1f,%.1f" fill="none" stroke="%s" stroke-width="2"%s marker-end="url(#%s-%s)"><title>%s</title></path>`,
		start[0], start[1], mx, my, end[0], end[1], st.color, dash, esc(id), s.Rel, esc(s.Text))
	label := string(s.Rel)
	if s.Key != nil {
		label += " key " + strconv.FormatInt(*s.Key, 10)
	}
	// The label sits at the curve's middle (t = 1/2 of the quadratic).
	lx, ly := (start[0]+2*mx+end[0])/4, (start[1]+2*my+end[1])/4
	anchor := "start"
	if lx < centre[0] {
		anchor = "end"
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="12" fill="%s">%s</text>`, lx, ly, anchor, st.color, esc(label))
}

// toward is the point at distance r from p on the way to q.
func toward(p, q [2]float64, r float64) [2]float64 {
	dx, dy := q[0]-p[0], q[1]-p[1]
	d := math.Hypot(dx, dy)
	if d == 0 {
		return p
	}
	return [2]float64{p[0] + dx/d*r, p[1] + dy/d*r}
}
