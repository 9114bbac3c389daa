package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Charts are inline SVG drawn on the server: no script, no external
// asset, so they pass the Content-Security-Policy and work offline.
// Colours come from classes in app.css (presentation attributes and
// classes only: the policy forbids inline styles). Every chart has a
// fixed viewBox and scales to its box's width, so one drawing reads at
// 800 and at 1400 pixels; each mark carries a <title> the browser shows
// on hover, and the pages put the numbers in a table next to the chart.

// The drawing area of a time chart, in viewBox units.
const (
	chartW      = 600.0
	chartH      = 220.0
	chartLeft   = 48.0
	chartRight  = 12.0
	chartTop    = 12.0
	chartBottom = 28.0
	// plotW and plotH are the size of a time chart's plot, inside its
	// axes.
	plotW = chartW - chartLeft - chartRight
	plotH = chartH - chartTop - chartBottom
	// maxXLabels is the most labels under a time axis.
	maxXLabels = 8
)

// svgWriter builds one SVG drawing.
type svgWriter struct{ strings.Builder }

// open starts the drawing, labelled label for screen readers.
func (w *svgWriter) open(class string, width, height float64, label string) {
	fmt.Fprintf(w, `<svg class="chart %s" viewBox="0 0 %g %g" preserveAspectRatio="xMidYMid meet" role="img" aria-label="%s">`,
		class, width, height, template.HTMLEscapeString(label))
}

// text writes a text element.
func (w *svgWriter) text(x, y float64, anchor, class, s string) {
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="%s" class="%s">%s</text>`, x, y, anchor, class, template.HTMLEscapeString(s))
}

// title writes a tooltip for the element it is in.
func (w *svgWriter) title(s string) {
	fmt.Fprintf(w, `<title>%s</title>`, template.HTMLEscapeString(s))
}

// rect writes a rectangle of class class.
func (w *svgWriter) rect(class string, x, y, width, height float64) {
	fmt.Fprintf(w, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, class, x, y, width, height)
}

// point writes one mark of a chart: what marks draws, with the tooltip
// title.
func (w *svgWriter) point(title string, marks func()) {
	w.WriteString(`<g class="point">`)
	marks()
	w.title(title)
	w.WriteString(`</g>`)
}

// yTick writes a grid line across a time chart's plot at y, labelled
// on the y axis.
func (w *svgWriter) yTick(y float64, label string) {
	fmt.Fprintf(w, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, chartLeft, chartW-chartRight, y, y)
	w.text(chartLeft-6, y+4, "end", "axis", label)
}

// xLabel writes the time label of column i of n, centred at x under a
// time chart's axis, if i is one of the at most maxXLabels columns,
// evenly spread, that have one.
func (w *svgWriter) xLabel(x float64, i, n int, t time.Time, hourly bool) {
	if i%((n+maxXLabels-1)/maxXLabels) == 0 {
		w.text(x, chartH-8, "middle", "axis", timeLabel(t, hourly))
	}
}

// html closes the drawing and returns it.
func (w *svgWriter) html() template.HTML {
	w.WriteString(`</svg>`)
	return template.HTML(w.String())
}

// timeChart is a chart over time: n columns of width slot across the
// plot, on a y axis from lo at the bottom to hi at the top.
type timeChart struct {
	svgWriter
	n      int
	slot   float64
	lo, hi float64
}

// newTimeChart starts a time chart of n columns, of class class and
// labelled label for screen readers, on a y axis from lo to hi. A chart
// of no columns has only its y axis.
func newTimeChart(class, label string, n int, lo, hi float64) *timeChart {
	c := &timeChart{n: n, slot: plotW / float64(n), lo: lo, hi: hi}
	c.open(class, chartW, chartH, label)
	return c
}

// y returns the y coordinate of value v.
func (c *timeChart) y(v float64) float64 { return chartTop + plotH - (v-c.lo)/(c.hi-c.lo)*plotH }

// evenTicks writes five y ticks evenly from the bottom of the axis to
// its top, labelled by label.
func (c *timeChart) evenTicks(label func(float64) string) {
	for i := range 5 {
		v := c.lo + (c.hi-c.lo)*float64(i)/4
		c.yTick(c.y(v), label(v))
	}
}

// left returns the left edge of column i.
func (c *timeChart) left(i int) float64 { return chartLeft + float64(i)*c.slot }

// mid returns the middle of column i.
func (c *timeChart) mid(i int) float64 { return chartLeft + (float64(i)+0.5)*c.slot }

// niceScale returns the top of a y axis at or above top and its step:
// 1, 2 or 5 times a power of ten, in at most 5 steps.
func niceScale(top float64) (float64, float64) {
	if top <= 0 {
		return 1, 1
	}
	raw := top / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if step < 1 {
		step = 1
	}
	return math.Ceil(top/step) * step, step
}

// compact formats a count for an axis: 950, 1.2k, 3M.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

// timeLabel formats a point of a time axis: the hour of an hourly chart,
// else the day.
func timeLabel(t time.Time, hourly bool) string {
	if hourly {
		return t.UTC().Format("15:04")
	}
	return t.UTC().Format("Jan 2")
}

// axisPercent formats a rate from 0 to 1 for an axis: 99.5%, 100%.
func axisPercent(v float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", 100*v), ".0") + "%"
}

// timeTitle formats a point for a tooltip.
func timeTitle(t time.Time, hourly bool) string {
	if hourly {
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return t.UTC().Format("2006-01-02")
}

// barLineChart draws counts over time: bars (e.g. crashes) and a line
// with dots (e.g. distinct sessions), on one axis from 0. class names the
// chart's colours in app.css.
func barLineChart(class, label string, xs []time.Time, hourly bool, bars []uint64, barName string, line []uint64, lineName string) template.HTML {
	var top uint64
	for i := range xs {
		top = max(top, bars[i], line[i])
	}
	axisTop, step := niceScale(float64(top))
	c := newTimeChart("time "+class, label, len(xs), 0, axisTop)
	for v := 0.0; v <= axisTop+step/2; v += step {
		c.yTick(c.y(v), compact(v))
	}
	if c.n == 0 {
		return c.html()
	}
	barW := math.Max(c.slot*0.7, 1)
	for i, t := range xs {
		x := c.left(i)
		h := float64(bars[i]) / axisTop * plotH
		c.point(fmt.Sprintf("%s: %d %s, %d %s", timeTitle(t, hourly), bars[i], barName, line[i], lineName), func() {
			c.rect("bar", x+(c.slot-barW)/2, chartTop+plotH-h, barW, h)
			// An invisible column over the whole height makes the
			// tooltip easy to reach.
			c.rect("hit", x, chartTop, c.slot, plotH)
		})
		c.xLabel(x+c.slot/2, i, c.n, t, hourly)
	}
	c.WriteString(`<polyline class="line" points="`)
	for i := range xs {
		fmt.Fprintf(c, "%.1f,%.1f ", c.mid(i), c.y(float64(line[i])))
	}
	c.WriteString(`"/>`)
	for i := range xs {
		fmt.Fprintf(c, `<circle class="dot" cx="%.1f" cy="%.1f" r="2.5"/>`, c.mid(i), c.y(float64(line[i])))
	}
	return c.html()
}

// rateLine draws rates from 0 to 1 over days as a line, with a gap
// where a day has none (ok false), on an axis from a round value below
// the lowest rate to 100%.
func rateLine(label string, xs []time.Time, rates []float64, ok []bool) template.HTML {
	c := newTimeChart("time", label, len(xs), rateFloor(rates, ok), 1)
	c.evenTicks(axisPercent)
	if c.n == 0 {
		return c.html()
	}
	var path strings.Builder
	pen := false
	for i, t := range xs {
		x := c.mid(i)
		c.xLabel(x, i, c.n, t, false)
		if !ok[i] {
			pen = false
			continue
		}
		cmd := "L"
		if !pen {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, x, c.y(rates[i]))
		pen = true
	}
	if path.Len() > 0 {
		fmt.Fprintf(c, `<path class="line" d="%s"/>`, strings.TrimSpace(path.String()))
	}
	for i, t := range xs {
		x := c.mid(i)
		if !ok[i] {
			c.point(timeTitle(t, false)+": no sessions", func() { c.rect("hit", x-c.slot/2, chartTop, c.slot, plotH) })
			continue
		}
		c.point(fmt.Sprintf("%s: %s crash-free", timeTitle(t, false), percent(rates[i])), func() {
			fmt.Fprintf(c, `<circle class="dot" cx="%.1f" cy="%.1f" r="3"/>`, x, c.y(rates[i]))
			c.rect("hit", x-c.slot/2, chartTop, c.slot, plotH)
		})
	}
	return c.html()
}

// rateFloor returns the bottom of a rate axis: a round value below the
// lowest rate shown, so differences of a fraction of a percent show.
func rateFloor(rates []float64, ok []bool) float64 {
	low := 1.0
	for i, r := range rates {
		if ok[i] {
			low = min(low, r)
		}
	}
	for _, lo := range []float64{0.99, 0.98, 0.95, 0.9, 0.8, 0.5} {
		if low >= lo+0.002 {
			return lo
		}
	}
	return 0
}

// hbar is one row of a horizontal bar chart.
type hbar struct {
	Label string
	Rate  float64
	OK    bool
}

// rateBars draws one horizontal bar per row, the rate of each from the
// axis's bottom to 100%, labelled with the rate; a row without a rate has
// no bar.
func rateBars(label string, rows []hbar) template.HTML {
	const rowH, left, right, top, bottom = 26.0, 110.0, 70.0, 8.0, 24.0
	height := top + bottom + rowH*float64(max(len(rows), 1))
	var w svgWriter
	w.open("bars", chartW, height, label)
	rates, ok := make([]float64, len(rows)), make([]bool, len(rows))
	for i, r := range rows {
		rates[i], ok[i] = r.Rate, r.OK
	}
	lo := rateFloor(rates, ok)
	plotW := chartW - left - right
	x := func(v float64) float64 { return left + (v-lo)/(1-lo)*plotW }
	for i := range 5 {
		v := lo + (1-lo)*float64(i)/4
		fmt.Fprintf(&w, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, x(v), x(v), top, height-bottom)
		w.text(x(v), height-8, "middle", "axis", axisPercent(v))
	}
	for i, r := range rows {
		y := top + float64(i)*rowH
		w.text(left-8, y+rowH/2+4, "end", "label", r.Label)
		if !r.OK {
			w.text(left+4, y+rowH/2+4, "start", "value", "no sessions")
			continue
		}
		w.point(fmt.Sprintf("%s: %s crash-free", r.Label, percent(r.Rate)), func() {
			w.rect("bar", left, y+4, math.Max(x(r.Rate)-left, 1), rowH-8)
		})
		w.text(x(r.Rate)+4, y+rowH/2+4, "start", "value", percent(r.Rate))
	}
	return w.html()
}

// stackDay is one column of a stacked chart: the parts of a whole, in
// series order, then what is summed as other, then what is hidden.
type stackDay struct {
	Time   time.Time
	Total  uint64
	Parts  []uint64
	Other  uint64
	Hidden bool
}

// shareStack draws each day as a column of 100%: the share of each
// series (classes s0, s1, ...), of other values, and, for a day whose
// values are all too small to show, one hidden column.
func shareStack(label string, series []string, days []stackDay) template.HTML {
	c := newTimeChart("time", label, len(days), 0, 1)
	c.evenTicks(func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) })
	if c.n == 0 {
		return c.html()
	}
	barW := math.Max(c.slot*0.8, 1)
	for i, d := range days {
		x := c.left(i) + (c.slot-barW)/2
		c.xLabel(c.mid(i), i, c.n, d.Time, false)
		if d.Total == 0 {
			continue
		}
		if d.Hidden {
			c.point(fmt.Sprintf("%s: %d sessions, versions hidden (each under k sessions)", timeTitle(d.Time, false), d.Total), func() {
				c.rect("stack hidden", x, chartTop, barW, plotH)
			})
			continue
		}
		base := 0.0
		part := func(class, name string, v uint64) {
			if v == 0 {
				return
			}
			share := float64(v) / float64(d.Total)
			c.point(fmt.Sprintf("%s: %s %s (%d sessions)", timeTitle(d.Time, false), name, percent(share), v), func() {
				c.rect("stack "+class, x, c.y(base+share), barW, share*plotH)
			})
			base += share
		}
		for j, v := range d.Parts {
			part(seriesClass(j), series[j], v)
		}
		part("other", "other versions", d.Other)
	}
	return c.html()
}

// seriesClass returns the colour class of the i-th series; colours repeat
// after eight.
func seriesClass(i int) string { return fmt.Sprintf("s%d", i%8) }

// percent formats a rate from 0 to 1 as a percentage with two decimals.
func percent(r float64) string { return fmt.Sprintf("%.2f%%", 100*r) }
