package dashboard

import (
	"context"
	"net/http"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// listPage is the data of the crash groups page.
type listPage struct {
	*triage.GroupList
	fixChoice
	// From and To number the first and the last group of the page.
	From, To int
}

func (h *Handler) crashes(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Crash groups", Nav: "crashes", Filter: f, Options: opts, Saved: savedMessage(r.URL.Query())}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	if f.AppID != "" {
		l, err := h.cfg.Store.List(ctx, f.Filter, f.List)
		if err != nil {
			h.failFilter(w, r, p, err, start)
			return
		}
		p.Filter.List = l.Options
		lp := listPage{GroupList: l, fixChoice: fixVersions(nil, opts)}
		lp.From = (l.Options.Page-1)*l.Options.PerPage + 1
		lp.To = lp.From + len(l.Groups) - 1
		p.Data = lp
	}
	h.render(w, r, http.StatusOK, "crashes", p, start)
}
