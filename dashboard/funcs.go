package dashboard

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/triage"
)

// filterView is a filter, and the order and page of a list, as the forms
// and links show them.
type filterView struct {
	triage.Filter
	List triage.ListOptions
}

// values returns the filter as URL query parameters, without defaults.
func (f filterView) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("app", f.AppID)
	set("version", f.AppVersion)
	set("os", f.OSName)
	set("region", f.Region)
	if f.Days != 0 {
		v.Set("days", strconv.Itoa(f.Days))
	}
	set("status", string(f.Status))
	set("kind", string(f.Kind))
	set("q", f.Search)
	set("assignee", f.Assignee)
	return v
}

// listValues returns the filter, the order and the page size as URL query
// parameters.
func (f filterView) listValues() url.Values {
	v := f.values()
	if f.List.Sort != "" && f.List.Sort != triage.SortSessions {
		v.Set("sort", string(f.List.Sort))
	}
	if f.List.Asc {
		v.Set("dir", "asc")
	}
	if f.List.PerPage != 0 && f.List.PerPage != triage.DefaultPerPage {
		v.Set("per", strconv.Itoa(f.List.PerPage))
	}
	return v
}

// Query returns the filter as URL query parameters.
func (f filterView) Query() template.URL { return template.URL(f.values().Encode()) }

// ListURL returns the address of the list's current page.
func (f filterView) ListURL() string {
	v := f.listValues()
	if f.List.Page > 1 {
		v.Set("page", strconv.Itoa(f.List.Page))
	}
	return "/crashes?" + v.Encode()
}

// SortURL returns the address of the list sorted by s: largest or newest
// first, or the other way round if it is sorted so already. It starts at
// the first page.
func (f filterView) SortURL(s string) template.URL {
	g := f
	g.List.Sort, g.List.Asc = triage.Sort(s), false
	if f.sortedBy(s) && !f.List.Asc {
		g.List.Asc = true
	}
	return template.URL("/crashes?" + g.listValues().Encode())
}

// sortedBy reports whether the list is sorted by s.
func (f filterView) sortedBy(s string) bool {
	return triage.Sort(s) == f.List.Sort || f.List.Sort == "" && triage.Sort(s) == triage.SortSessions
}

// sortOrder returns what tells of column s: none if the list is not
// sorted by it, else asc or desc as the list's order is.
func (f filterView) sortOrder(s, none, asc, desc string) string {
	switch {
	case !f.sortedBy(s):
		return none
	case f.List.Asc:
		return asc
	}
	return desc
}

// SortMark returns the arrow of a column header: ↓ or ↑ for the column
// the list is sorted by, else "".
func (f filterView) SortMark(s string) string { return f.sortOrder(s, "", "↑", "↓") }

// AriaSort returns the aria-sort value of a column header.
func (f filterView) AriaSort(s string) string {
	return f.sortOrder(s, "none", "ascending", "descending")
}

// PageURL returns the address of page n of the list.
func (f filterView) PageURL(n int) template.URL {
	v := f.listValues()
	if n > 1 {
		v.Set("page", strconv.Itoa(n))
	}
	return template.URL("/crashes?" + v.Encode())
}

// CrashPageURL returns the address of page n of a group's crashes.
func (f filterView) CrashPageURL(fp uint64, n int) template.URL {
	v := f.values()
	v.Del("app")
	if n > 1 {
		v.Set("cpage", strconv.Itoa(n))
	}
	return template.URL(groupURL(f.AppID, fp) + "?" + v.Encode() + "#crashes")
}

// rangeOption is a time range the filter offers.
type rangeOption struct {
	Days     int
	Label    string
	Selected bool
}

// rangeChoices are the time ranges the filter offers, in days.
var rangeChoices = []int{1, 7, 14, 30, 90}

// Ranges returns the time ranges to offer: the usual ones, and the one
// in the address if it is another.
func (f filterView) Ranges() []rangeOption {
	days := rangeChoices
	if f.Days > 0 && !containsInt(days, f.Days) {
		days = append([]int{}, rangeChoices...)
		i := 0
		for i < len(days) && days[i] < f.Days {
			i++
		}
		days = append(days[:i], append([]int{f.Days}, days[i:]...)...)
	}
	out := make([]rangeOption, len(days))
	for i, d := range days {
		out[i] = rangeOption{Days: d, Label: rangeLabel(d), Selected: d == f.Days}
	}
	return out
}

// rangeLabel names a range of days.
func rangeLabel(days int) string {
	if days == 1 {
		return "today"
	}
	return fmt.Sprintf("%d days", days)
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// funcs are the template functions.
func funcs() template.FuncMap {
	return template.FuncMap{
		"sparkline": sparkline,
		"hex":       fingerprint.Hex,
		"groupURL":  groupURL,
		"date":      func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"datetime":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"before":    before,
		"isoTime":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"rate":      rate,
		"rangeText": func(days int) string { return rangeLabel(days) },
		"join":      strings.Join,
		"add":       func(a, b int) int { return a + b },
		"statuses": func() []string {
			return []string{string(triage.StatusUnresolved), string(triage.StatusResolved), string(triage.StatusIgnored), string(triage.StatusAll)}
		},
		"kinds":       func() []triage.Kind { return []triage.Kind{triage.KindAll, triage.KindFatal, triage.KindHandled} },
		"pageNumbers": pageNumbers,
		"coarser":     coarser,
		"groupChart":  groupChart,
		"sessionsChart": func(o *triage.Overview) template.HTML {
			xs, sessions, crashed := make([]time.Time, len(o.Days)), make([]uint64, len(o.Days)), make([]uint64, len(o.Days))
			for i, d := range o.Days {
				xs[i], sessions[i], crashed[i] = d.Date, d.Sessions, d.CrashedSessions
			}
			return barLineChart("sessions", "Sessions and crashed sessions per day", xs, false, sessions, "sessions", crashed, "crashed sessions")
		},
		"crashFreeChart": func(o *triage.Overview) template.HTML {
			xs, rates, ok := make([]time.Time, len(o.Days)), make([]float64, len(o.Days)), make([]bool, len(o.Days))
			for i, d := range o.Days {
				xs[i] = d.Date
				rates[i], ok[i] = d.CrashFree()
			}
			return rateLine("Crash-free sessions per day", xs, rates, ok)
		},
		"versionChart": func(o *triage.Overview) template.HTML {
			rows := make([]hbar, len(o.Versions))
			for i, v := range o.Versions {
				rows[i].Label = v.Version
				rows[i].Rate, rows[i].OK = v.CrashFree()
			}
			return rateBars("Crash-free sessions per app version", rows)
		},
		"adoptionChart": func(o *triage.Overview) template.HTML {
			series := make([]string, len(o.Versions))
			for i, v := range o.Versions {
				series[i] = v.Version
			}
			days := make([]stackDay, len(o.Adoption))
			for i, a := range o.Adoption {
				days[i] = stackDay{Time: a.Date, Total: a.Sessions, Parts: a.Versions, Other: a.Other, Hidden: a.Hidden}
			}
			return shareStack("Share of sessions per app version and day", series, days)
		},
		"seriesClass": seriesClass,
		"activity":    activityText,
	}
}

// rate formats the crash-free rate of sessions, "—" without sessions.
func rate(sessions, crashed uint64) string {
	r, ok := triage.CrashFree(sessions, crashed)
	if !ok {
		return "—"
	}
	return percent(r)
}

// coarser names the coarse values of a breakdown.
func coarser(breakdown string) string {
	switch breakdown {
	case "App version":
		return "major version"
	case "OS":
		return "OS"
	case "Device model":
		return "device class"
	case "Region":
		return "country"
	}
	return "a coarser value"
}

// groupChart draws a group's crashes and sessions over its range.
func groupChart(d *triage.Detail) template.HTML {
	xs, crashes, sessions := make([]time.Time, len(d.Series)), make([]uint64, len(d.Series)), make([]uint64, len(d.Series))
	for i, p := range d.Series {
		xs[i], crashes[i], sessions[i] = p.Time, p.Crashes, p.Sessions
	}
	label := "Crashes and affected sessions per day"
	if d.Hourly {
		label = "Crashes and affected sessions per hour, last 24 hours"
	}
	return barLineChart("crashes", label, xs, d.Hourly, crashes, "crashes", sessions, "sessions")
}

// pageNumbers returns the page numbers a pager links: the first, the
// last, and those around the current one; 0 stands for a gap.
func pageNumbers(current, pages int) []int {
	var out []int
	for n := 1; n <= pages; n++ {
		if n == 1 || n == pages || n >= current-2 && n <= current+2 {
			out = append(out, n)
		} else if len(out) > 0 && out[len(out)-1] != 0 {
			out = append(out, 0)
		}
	}
	return out
}

// activityText says what an entry of a group's history did.
func activityText(a triage.Activity) string {
	if d := a.Decision; d != nil {
		s := fmt.Sprintf("%s set %s", d.ChangedBy, d.State)
		if d.ResolvedIn != "" {
			s += " in " + d.ResolvedIn
		}
		return s
	}
	c := a.Change
	switch c.Kind {
	case triage.ChangeAssignee:
		if c.Value == "" {
			return c.ChangedBy + " unassigned it"
		}
		return c.ChangedBy + " assigned " + c.Value
	case triage.ChangeNote:
		if c.Value == "" {
			return c.ChangedBy + " cleared the note"
		}
		return c.ChangedBy + " changed the note"
	case triage.ChangeMerge:
		if c.MergedInto == 0 {
			return fmt.Sprintf("%s unmerged %s", c.ChangedBy, fingerprint.Hex(c.Fingerprint))
		}
		return fmt.Sprintf("%s merged %s into %s", c.ChangedBy, fingerprint.Hex(c.Fingerprint), fingerprint.Hex(c.MergedInto))
	}
	return c.ChangedBy + " changed " + string(c.Kind)
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

// before says how long before a crash a breadcrumb happened. Stored
// offsets are rounded to the precision of event times (a minute by
// default), so 0 reads "under a minute" rather than "at the crash".
func before(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "< 1 min before"
	case d < time.Hour:
		return fmt.Sprintf("%d min before", int(d/time.Minute))
	default:
		return fmt.Sprintf("%d h %d min before", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}
