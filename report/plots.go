package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/strongcheck/strongcheck/results"
)

// Plot sizes and limits. A scatter of more than maxSVGPoints points (after
// thinning) is drawn as a PNG: an SVG glyph costs about 100 bytes and the
// browser's time, a PNG's size does not grow with the points.
const (
	plotW        = 10 * vg.Inch
	plotH        = 3.6 * vg.Inch
	pngDPI       = 110
	maxSVGPoints = 6000
	// thinCells is the thinning grid: at most one point per outcome per
	// cell of about 2x2 pixels, which is below what the eye can tell apart
	// with glyphs of this size, so outliers are never dropped.
	thinCellsX = 550
	thinCellsY = 200
)

var (
	outcomeColors = [nOutcomes]color.NRGBA{
		outOK:   {R: 0x1f, G: 0x77, B: 0xb4, A: 0xb0}, // blue
		outFail: {R: 0xd6, G: 0x27, B: 0x28, A: 0xe0}, // red
		outInfo: {R: 0xff, G: 0x8c, B: 0x00, A: 0xe0}, // orange
	}
	bandColor      = color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x30}
	bandLabelColor = color.NRGBA{R: 0x30, G: 0x30, B: 0x30, A: 0xff}
	labelBoxColor  = color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xc0}
	nodeColors     = []color.NRGBA{
		{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
		{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
		{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	}
)

// figure is one rendered plot: an inline SVG or a PNG data URI.
type figure struct {
	// SVG is the plot as inline SVG (gonum escapes the text it draws).
	SVG template.HTML
	// PNG is a data: URI, when the plot has too many points for SVG.
	PNG template.URL
	// Title is the plot's title, also its alt text.
	Title string
	// Note says how the data was drawn (thinning, format).
	Note string
}

// faultBands draws fault windows as shaded bands across the whole data
// area; with labels set it draws instead each window's label at its top, on
// a light box, so that the labels go on top of the data and the bands
// below it. It takes no part in the axis ranges.
type faultBands struct {
	windows []window
	endNS   int64 // where an open window ends
	labels  bool
	style   draw.TextStyle
}

// Plot implements plot.Plotter.
func (b faultBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for i, w := range b.windows {
		stop := w.StopNS
		if stop < 0 {
			stop = b.endNS
		}
		x0 := max(trX(seconds(w.StartNS)), c.Min.X)
		x1 := min(trX(seconds(stop)), c.Max.X)
		if x0 >= c.Max.X {
			continue
		}
		if x1 < x0+1 {
			x1 = x0 + 1
		}
		if !b.labels {
			c.SetColor(bandColor)
			c.Fill(rect(x0, c.Min.Y, x1, c.Max.Y))
			continue
		}
		txt := w.label()
		h := b.style.Height(txt)
		pt := vg.Point{X: x0 + 2, Y: c.Max.Y - h*vg.Length(1+i%3) - 2}
		c.SetColor(labelBoxColor)
		c.Fill(rect(pt.X-1, pt.Y-1, pt.X+b.style.Width(txt)+1, pt.Y+h))
		c.FillText(b.style, pt, txt)
	}
}

func rect(x0, y0, x1, y1 vg.Length) vg.Path {
	var path vg.Path
	path.Move(vg.Point{X: x0, Y: y0})
	path.Line(vg.Point{X: x1, Y: y0})
	path.Line(vg.Point{X: x1, Y: y1})
	path.Line(vg.Point{X: x0, Y: y1})
	path.Close()
	return path
}

// addBands adds the fault windows' shading to p; call it before adding
// the data. It returns the labels, to add after the data.
func addBands(p *plot.Plot, ws []window, endNS int64) faultBands {
	sty := p.X.Tick.Label
	sty.Font.Size = vg.Points(7.5)
	sty.Color = bandLabelColor
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YBottom
	p.Add(faultBands{windows: ws, endNS: endNS, style: sty})
	return faultBands{windows: ws, endNS: endNS, style: sty, labels: true}
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }

func newPlot(title, ylabel string, durationNS int64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = ylabel
	p.X.Min = 0
	p.X.Max = math.Max(seconds(durationNS), 1e-3)
	p.Legend.Top = true
	p.Legend.Left = false
	for _, sty := range []*draw.TextStyle{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		sty.Font.Variant = "Sans"
	}
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Add(plotter.NewGrid())
	return p
}

// latencyFigure plots each client operation's latency at its invoke time,
// log scale, coloured by outcome, over the fault windows.
func latencyFigure(tl *timeline) (figure, error) {
	const title = "Latency of every client operation"
	p := newPlot(title, "latency (ms, log)", tl.durationNS)
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	labels := addBands(p, tl.windows, tl.durationNS)

	const minMS = 1e-3 // 1 µs: a log scale cannot show 0
	var pts [nOutcomes]plotter.XYs
	loY, hiY := math.Inf(1), math.Inf(-1)
	for _, c := range tl.completions {
		y := math.Max(float64(c.latencyNS)/1e6, minMS)
		pts[c.out] = append(pts[c.out], plotter.XY{X: seconds(c.invokeNS), Y: y})
		loY, hiY = math.Min(loY, y), math.Max(hiY, y)
	}
	total := tl.counts[outOK] + tl.counts[outFail] + tl.counts[outInfo]
	drawn := len(tl.completions)
	if drawn > maxSVGPoints {
		drawn = 0
		for o := range pts {
			pts[o] = thin(pts[o], p.X.Max, math.Log(loY), math.Log(hiY))
			drawn += len(pts[o])
		}
	}
	// ok first so that failures and infos are drawn on top of them.
	for _, o := range []outcome{outOK, outInfo, outFail} {
		if len(pts[o]) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts[o])
		if err != nil {
			return figure{}, fmt.Errorf("latency plot: %w", err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: outcomeColors[o], Radius: vg.Points(1.4), Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%s (%d)", outcomeNames[o], tl.counts[o]), s)
	}
	if total == 0 {
		p.Y.Min, p.Y.Max = minMS, 1
	} else {
		// Pin the log axis to the data, widened: with every point at one
		// latency gonum would pad the range below zero, which a log
		// scale cannot draw.
		p.Y.Min, p.Y.Max = loY/2, hiY*2
	}
	p.Add(labels)
	f, err := render(p, drawn > maxSVGPoints)
	if err != nil {
		return figure{}, fmt.Errorf("latency plot: %w", err)
	}
	f.Title = title
	if drawn < total {
		f.Note = fmt.Sprintf("%d operations drawn as %d points: one point per outcome per ~2-pixel cell, so no outlier is left out.", total, drawn)
	}
	if f.PNG != "" {
		f.Note += " Drawn as PNG: too many points for SVG."
	}
	return f, nil
}

// thin keeps one point per cell of a thinCellsX x thinCellsY grid over
// [0,xmax] x [logLo,logHi] (y on a log scale), in the original order.
func thin(xys plotter.XYs, xmax, logLo, logHi float64) plotter.XYs {
	if len(xys) == 0 {
		return xys
	}
	xspan := math.Max(xmax, 1e-9)
	yspan := math.Max(logHi-logLo, 1e-9)
	seen := make(map[int32]struct{}, 4096)
	out := make(plotter.XYs, 0, 4096)
	for _, pt := range xys {
		cx := int32(math.Min(pt.X/xspan*thinCellsX, thinCellsX))
		cy := int32(math.Min((math.Log(pt.Y)-logLo)/yspan*thinCellsY, thinCellsY))
		k := cx*(thinCellsY+1) + cy
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, pt)
	}
	return out
}

// throughputFigure plots completions per second by outcome, in bins of a
// round width giving about 150 bins.
func throughputFigure(tl *timeline) (figure, error) {
	const title = "Throughput: completed client operations per second"
	p := newPlot(title, "operations / s", tl.durationNS)
	p.Y.Min = 0
	labels := addBands(p, tl.windows, tl.durationNS)
	bin := max(binWidth(tl.durationNS), tl.rate.widthNS)
	n := int(tl.durationNS/bin) + 1
	var counts [nOutcomes][]float64
	for o := range counts {
		counts[o] = make([]float64, n)
		// Fine bins go to the figure's bin their start falls in.
		for j, c := range tl.rate.counts[o] {
			if i := int(int64(j) * tl.rate.widthNS / bin); i < n {
				counts[o][i] += float64(c)
			}
		}
	}
	perSec := 1e9 / float64(bin)
	for _, o := range []outcome{outOK, outInfo, outFail} {
		if tl.counts[o] == 0 {
			continue
		}
		xys := make(plotter.XYs, n+1)
		for i := 0; i <= n; i++ {
			v := 0.0
			if i < n {
				v = counts[o][i] * perSec
			} else {
				v = counts[o][n-1] * perSec
			}
			xys[i] = plotter.XY{X: seconds(int64(i) * bin), Y: v}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return figure{}, fmt.Errorf("throughput plot: %w", err)
		}
		l.StepStyle = plotter.PostStep
		l.LineStyle.Color = outcomeColors[o]
		l.LineStyle.Width = vg.Points(1)
		p.Add(l)
		p.Legend.Add(outcomeNames[o], l)
	}
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	p.Add(labels)
	f, err := render(p, false)
	if err != nil {
		return figure{}, fmt.Errorf("throughput plot: %w", err)
	}
	f.Title = title
	f.Note = fmt.Sprintf("Bins of %s.", fmtDur(bin))
	return f, nil
}

// binWidth picks a round bin width giving about 150 bins.
func binWidth(durationNS int64) int64 {
	for _, ms := range []int64{10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000} {
		if durationNS/(ms*1e6) <= 150 {
			return ms * 1e6
		}
	}
	return 300e9
}

// lagFigures plots each standby's replication lag over time: bytes behind
// the primary and, when sampled, replay lag.
func lagFigures(samples []results.LagSample, ws []window, durationNS int64) ([]figure, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	for _, s := range samples {
		durationNS = max(durationNS, s.TimeNS)
	}
	byNode := map[string][]results.LagSample{}
	var nodes []string
	hasReplay := false
	for _, s := range samples {
		if _, ok := byNode[s.Node]; !ok {
			nodes = append(nodes, s.Node)
		}
		byNode[s.Node] = append(byNode[s.Node], s)
		hasReplay = hasReplay || s.ReplayLagNS >= 0
	}
	sort.Strings(nodes)
	type series struct {
		title, ylabel string
		value         func(results.LagSample) (float64, bool)
	}
	all := []series{{
		title: "Replication lag: bytes the standby has not replayed", ylabel: "KiB behind the primary",
		value: func(s results.LagSample) (float64, bool) { return float64(s.LagBytes) / 1024, s.LagBytes >= 0 },
	}}
	if hasReplay {
		all = append(all, series{
			title: "Replication lag: replay_lag (pg_stat_replication)", ylabel: "ms",
			value: func(s results.LagSample) (float64, bool) { return float64(s.ReplayLagNS) / 1e6, s.ReplayLagNS >= 0 },
		})
	}
	var out []figure
	for _, se := range all {
		p := newPlot(se.title, se.ylabel, durationNS)
		p.Y.Min = 0
		labels := addBands(p, ws, durationNS)
		for i, n := range nodes {
			ss := byNode[n]
			stride := max(1, len(ss)/5000)
			var xys plotter.XYs
			for j := 0; j < len(ss); j += stride {
				if v, ok := se.value(ss[j]); ok {
					xys = append(xys, plotter.XY{X: seconds(ss[j].TimeNS), Y: v})
				}
			}
			if len(xys) == 0 {
				continue
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, fmt.Errorf("lag plot: %w", err)
			}
			l.LineStyle.Color = nodeColors[i%len(nodeColors)]
			l.LineStyle.Width = vg.Points(1.2)
			p.Add(l)
			p.Legend.Add(n, l)
		}
		if p.Y.Max <= 0 {
			p.Y.Max = 1
		}
		p.Add(labels)
		f, err := render(p, false)
		if err != nil {
			return nil, fmt.Errorf("lag plot: %w", err)
		}
		f.Title = se.title
		out = append(out, f)
	}
	return out, nil
}

// legendW is the margin right of the data where the legend goes, so that
// it never hides data.
const legendW = 1.15 * vg.Inch

// drawWithLegend draws p on c with its legend in the right margin.
func drawWithLegend(p *plot.Plot, c vg.CanvasSizer) {
	dc := draw.New(c)
	leg := p.Legend
	p.Legend = plot.NewLegend()
	p.Legend.TextStyle = leg.TextStyle
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	leg.Top, leg.Left = true, true
	leg.Draw(draw.Crop(dc, plotW-legendW+vg.Points(6), 0, 0, -vg.Points(24)))
	p.Legend = leg
}

// render draws p as inline SVG, or as a PNG data URI when asPNG.
func render(p *plot.Plot, asPNG bool) (figure, error) {
	var buf bytes.Buffer
	if asPNG {
		c := vgimg.NewWith(vgimg.UseWH(plotW, plotH), vgimg.UseDPI(pngDPI), vgimg.UseBackgroundColor(color.White))
		drawWithLegend(p, c)
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
			return figure{}, fmt.Errorf("encode png: %w", err)
		}
		return figure{PNG: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))}, nil
	}
	c := vgsvg.New(plotW, plotH)
	drawWithLegend(p, c)
	if _, err := c.WriteTo(&buf); err != nil {
		return figure{}, fmt.Errorf("encode svg: %w", err)
	}
	b := buf.Bytes()
	// Inline in HTML: drop the XML prolog and comment before <svg.
	if i := bytes.Index(b, []byte("<svg")); i > 0 {
		b = b[i:]
	}
	return figure{SVG: template.HTML(b)}, nil
}
