package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/triage"
)

// fixChoice is the versions a page offers to resolve crash groups in.
type fixChoice struct {
	// FixVersions are the versions offered: the next releases first,
	// then those known, newest first; DefaultFix is the first of them.
	FixVersions []string
	DefaultFix  string
}

// fixVersions returns the versions to offer for resolving a group that
// crashed in seen: the next releases after the newest version known, then
// the versions seen and those of the app, newest first.
func fixVersions(seen []string, opts *triage.Options) fixChoice {
	var known []string
	known = append(known, seen...)
	if opts != nil {
		known = append(known, opts.AppVersions...)
	}
	out := triage.NextVersions(known)
	slices.SortFunc(known, func(a, b string) int { return triage.CompareVersions(b, a) })
	for _, v := range known {
		if triage.ValidVersion(v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	c := fixChoice{FixVersions: out}
	if len(out) > 0 {
		c.DefaultFix = out[0]
	}
	return c
}

// groupPage is the data of a group's page.
type groupPage struct {
	*triage.Detail
	fixChoice
	// MergedFrom is the group whose address led here, merged into this
	// one; 0 if none.
	MergedFrom uint64
	// CrashPage and CrashPages number the pages of individual crashes.
	CrashPage, CrashPages int
}

func (h *Handler) group(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	fp, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "No crash group has that id.", nil, start)
		return
	}
	q := r.URL.Query()
	q.Set("app", r.PathValue("app"))
	r.URL.RawQuery = q.Encode()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Crash group", Nav: "group", Filter: f, Options: opts, Saved: savedMessage(q)}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	crashPage := 1
	if v := q.Get("cpage"); v != "" {
		if crashPage, err = strconv.Atoi(v); err != nil || crashPage < 1 {
			h.failFilter(w, r, p, fmt.Errorf("%w: crash page %q is not a page", triage.ErrInvalidFilter, v), start)
			return
		}
	}
	d, err := h.cfg.Store.Group(ctx, f.Filter, fp, (crashPage-1)*triage.CrashesPerPage)
	var merged *triage.MergedError
	switch {
	case errors.As(err, &merged):
		q.Del("app")
		q.Set("merged", fingerprint.Hex(fp))
		http.Redirect(w, r, groupURL(f.AppID, merged.Into)+"?"+q.Encode(), http.StatusSeeOther)
		return
	case errors.Is(err, triage.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("This crash group has no crashes in the last %d days with these filters.", f.Days), nil, start)
		return
	case err != nil:
		h.failFilter(w, r, p, err, start)
		return
	}
	gp := groupPage{Detail: d, fixChoice: fixVersions(d.Versions, opts), CrashPage: crashPage,
		CrashPages: max(1, int((d.Crashes+triage.CrashesPerPage-1)/triage.CrashesPerPage))}
	if from, err := strconv.ParseUint(q.Get("merged"), 16, 64); err == nil && slices.Contains(d.Members, from) {
		gp.MergedFrom = from
	}
	p.Title = d.ExceptionType
	p.Data = gp
	h.render(w, r, http.StatusOK, "group", p, start)
}

// groupURL returns the path of a group's page.
func groupURL(app string, fp uint64) string {
	return "/crashes/" + url.PathEscape(app) + "/" + fingerprint.Hex(fp)
}
