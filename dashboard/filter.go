package dashboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// errUnknownApp is the error of a filter naming an app that was never
// registered nor seen.
var errUnknownApp = errors.New("unknown app")

// parseFilter reads a filter and list options from r's query; the app
// defaults to the first one known, "me" as the assignee is the user.
func (h *Handler) parseFilter(ctx context.Context, r *http.Request) (filterView, *triage.Options, error) {
	q := r.URL.Query()
	f := filterView{Filter: triage.Filter{
		AppID: q.Get("app"), AppVersion: q.Get("version"), OSName: q.Get("os"), Region: q.Get("region"),
		Status: triage.Status(q.Get("status")), Kind: triage.Kind(q.Get("kind")), Search: strings.TrimSpace(q.Get("q")),
		Assignee: q.Get("assignee"),
	}}
	if f.Assignee == "me" {
		f.Assignee = userOf(r)
	}
	f.List.Sort, f.List.Asc = triage.Sort(q.Get("sort")), q.Get("dir") == "asc"
	for _, n := range []struct {
		name string
		to   *int
	}{{"days", &f.Days}, {"page", &f.List.Page}, {"per", &f.List.PerPage}} {
		if v := q.Get(n.name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return f, nil, fmt.Errorf("%w: %s %q is not a number", triage.ErrInvalidFilter, n.name, v)
			}
			*n.to = i
		}
	}
	f.Days = cmp.Or(f.Days, 14)
	f.Status = cmp.Or(f.Status, triage.StatusUnresolved)
	if f.Days < 1 || f.Days > 400 {
		return f, nil, fmt.Errorf("%w: %d days is not between 1 and 400", triage.ErrInvalidFilter, f.Days)
	}
	opts, err := h.cfg.Store.Options(ctx, f.Filter)
	if err != nil {
		return f, nil, err
	}
	if f.AppID == "" && len(opts.Apps) > 0 {
		f.AppID = opts.Apps[0]
		if opts, err = h.cfg.Store.Options(ctx, f.Filter); err != nil {
			return f, nil, err
		}
	}
	if f.AppID != "" && !opts.HasApp(f.AppID) {
		return f, opts, fmt.Errorf("%w: %q", errUnknownApp, f.AppID)
	}
	return f, opts, nil
}

// filtered parses the filter and refuses values with fewer than k
// sessions.
func (h *Handler) filtered(ctx context.Context, r *http.Request) (filterView, *triage.Options, error) {
	f, opts, err := h.parseFilter(ctx, r)
	if err != nil {
		return f, opts, err
	}
	if opts != nil && !opts.Allowed(f.Filter) {
		return f, opts, fmt.Errorf("%w: a filter value has fewer than %d sessions in this range, so it is not offered", triage.ErrInvalidFilter, h.cfg.Store.K())
	}
	return f, opts, nil
}

// failFilter renders a page's filter with an error in place of its data:
// a 400 for a filter that cannot run, a 404 for an unknown app.
func (h *Handler) failFilter(w http.ResponseWriter, r *http.Request, p page, err error, start time.Time) {
	switch {
	case errors.Is(err, errUnknownApp):
		p.Error = fmt.Sprintf("No app %q is registered or has sent data.", p.Filter.AppID)
		// No filter form: its app list would show another app as chosen.
		p.Filter, p.Options = filterView{}, nil
		p.Title = "Not found"
		h.render(w, r, http.StatusNotFound, "error", p, start)
	case errors.Is(err, triage.ErrInvalidFilter):
		p.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, p.Nav, p, start)
	default:
		h.fail(w, r, http.StatusInternalServerError, "The database did not answer; try again in a moment.", err, start)
	}
}
