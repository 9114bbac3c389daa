package dashboard

import (
	"context"
	"net/http"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// overviewPage is the data of the overview.
type overviewPage struct {
	*triage.Overview
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Overview", Nav: "overview", Filter: f, Options: opts}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	if f.AppID != "" {
		o, err := h.cfg.Store.Overview(ctx, f.Filter)
		if err != nil {
			h.failFilter(w, r, p, err, start)
			return
		}
		p.Data = overviewPage{o}
	}
	h.render(w, r, http.StatusOK, "overview", p, start)
}
