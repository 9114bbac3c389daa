package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/triage"
)

// funcs are the template functions.
func funcs() template.FuncMap {
	return template.FuncMap{
		"sparkline": sparkline,
		"hex":       fingerprint.Hex,
		"date":      func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"datetime":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"pct": func(x float64) string {
			return fmt.Sprintf("%.2f%%", 100*x)
		},
		"crashFree": triage.CrashFree,
		"ranges":    func() []int { return rangeChoices },
		"bar":       bar,
		"maxDay":    maxDay,
		"maxHealth": maxHealth,
		"join":      strings.Join,
		"statuses": func() []string {
			return []string{string(triage.StatusUnresolved), string(triage.StatusResolved), string(triage.StatusIgnored), string(triage.StatusAll)}
		},
	}
}

// sparkline draws counts as an inline SVG polyline, 120×24, scaled to
// their maximum.
func sparkline(counts []uint64) template.HTML {
	const w, h = 120.0, 24.0
	var top uint64
	for _, c := range counts {
		top = max(top, c)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="crashes per day">`, int(w), int(h), int(w), int(h))
	if len(counts) > 0 {
		b.WriteString(`<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="`)
		for i, c := range counts {
			x := w / 2
			if len(counts) > 1 {
				x = float64(i) * w / float64(len(counts)-1)
			}
			y := h - 1
			if top > 0 {
				y = h - 1 - float64(c)*(h-2)/float64(top)
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bar draws one horizontal bar of value out of top, as inline SVG.
func bar(value, top uint64) template.HTML {
	const w = 160
	width := 0
	if top > 0 {
		width = int(float64(value) * w / float64(top))
	}
	return template.HTML(fmt.Sprintf(`<svg class="bar" width="%d" height="10"><rect width="%d" height="10" fill="#2e86c1"/></svg>`, w, width))
}

// maxDay returns the most crashes of a timeline's days.
func maxDay(days []triage.Day) uint64 {
	var m uint64
	for _, d := range days {
		m = max(m, d.Crashes)
	}
	return m
}

// maxHealth returns the most sessions of an overview's days.
func maxHealth(days []triage.DayHealth) uint64 {
	var m uint64
	for _, d := range days {
		m = max(m, d.Sessions)
	}
	return m
}
