package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/dashboard/triage"
)

// changeRequest is what every form that changes a group carries.
type changeRequest struct {
	app  string
	fp   uint64
	user string
	back string
}

// changeOf reads the group and the page to return to of a POST to
// /crashes/{app}/{id}/...; false if the id is not one (a 404 is sent).
func (h *Handler) changeOf(w http.ResponseWriter, r *http.Request, start time.Time) (changeRequest, bool) {
	c := changeRequest{app: r.PathValue("app"), user: userOf(r)}
	fp, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "No crash group has that id.", nil, start)
		return c, false
	}
	c.fp = fp
	c.back = safeBack(r.PostFormValue("back"), groupURL(c.app, fp))
	return c, true
}

// saved redirects to back with what was saved (a code, see
// savedMessage) and how many groups it concerned.
func (h *Handler) saved(w http.ResponseWriter, r *http.Request, back, what string, n int) {
	u, err := url.Parse(back)
	if err != nil {
		u = &url.URL{Path: "/crashes"}
	}
	q := u.Query()
	q.Set("saved", what)
	q.Set("n", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// savedMessage returns the confirmation of a change that a redirect
// names: a fixed sentence per code, so the address cannot put words on
// the page.
func savedMessage(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	msg, ok := map[string]string{
		"resolved": "Resolved", "ignored": "Ignored", "open": "Reopened", "assigned": "Assigned",
		"merged": "Merged", "unmerged": "Unmerged", "noted": "Note saved",
	}[q.Get("saved")]
	if !ok {
		return ""
	}
	if n > 1 {
		return fmt.Sprintf("%s: %d crash groups.", msg, n)
	}
	return msg + "."
}

// failChange answers a change that could not be made.
func (h *Handler) failChange(w http.ResponseWriter, r *http.Request, err error, start time.Time) {
	if errors.Is(err, triage.ErrInvalidChange) {
		h.fail(w, r, http.StatusBadRequest, "That change cannot be made: "+err.Error(), nil, start)
		return
	}
	h.fail(w, r, http.StatusInternalServerError, "The change was not saved: the database did not answer; try again.", err, start)
}

// decisionsOf returns the decisions that set groups of app to state (a
// form's "state"), reading the version to resolve in from the form.
func decisionsOf(r *http.Request, app string, groups []uint64, state triage.State) []triage.Decision {
	out := make([]triage.Decision, len(groups))
	for i, fp := range groups {
		out[i] = triage.Decision{AppID: app, Fingerprint: fp, State: state, ChangedBy: userOf(r)}
		if state == triage.StateResolved {
			out[i].ResolvedIn = strings.TrimSpace(r.PostFormValue("version"))
		}
	}
	return out
}

func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	state := triage.State(r.PostFormValue("state"))
	if err := h.cfg.Store.SetStatuses(ctx, decisionsOf(r, c.app, []uint64{c.fp}, state)); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "status "+string(state), c.user, 1)
	h.saved(w, r, c.back, string(state), 1)
}

// assigneeOf returns the form's assignee: a dashboard user, "me" for the
// signed-in one, or "" for nobody; false if it is no user.
func (h *Handler) assigneeOf(r *http.Request) (string, bool) {
	a := r.PostFormValue("assignee")
	if a == "me" {
		a = userOf(r)
	}
	return a, a == "" || slices.Contains(h.users, a)
}

func (h *Handler) assign(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	a, ok := h.assigneeOf(r)
	if !ok {
		h.fail(w, r, http.StatusBadRequest, "Groups are assigned to dashboard users only.", nil, start)
		return
	}
	if err := h.cfg.Store.Assign(ctx, c.app, []uint64{c.fp}, a, c.user); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "assign", c.user, 1)
	h.saved(w, r, c.back, "assigned", 1)
}

func (h *Handler) note(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	note := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("note"), "\r\n", "\n"))
	if err := h.cfg.Store.SetNote(ctx, c.app, c.fp, note, c.user); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "note", c.user, 1)
	h.saved(w, r, c.back, "noted", 1)
}

func (h *Handler) merge(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	other, err := strconv.ParseUint(strings.TrimSpace(r.PostFormValue("other")), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Name the group to merge by its id: 16 hexadecimal digits, as in its address.", nil, start)
		return
	}
	root, err := h.cfg.Store.Merge(ctx, c.app, c.fp, []uint64{other}, c.user)
	if err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "merge", c.user, 2)
	h.saved(w, r, groupURL(c.app, root), "merged", 2)
}

func (h *Handler) unmerge(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	member, err := strconv.ParseUint(r.PostFormValue("member"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "No crash group has that id.", nil, start)
		return
	}
	if err := h.cfg.Store.Unmerge(ctx, c.app, member, c.user); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "unmerge", c.user, 1)
	h.saved(w, r, c.back, "unmerged", 1)
}

// bulk applies one action of the crash groups page to the groups
// selected: resolve, ignore, reopen, assign, or merge into the first of
// them (the first in the list's order).
func (h *Handler) bulk(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	app, user := r.PathValue("app"), userOf(r)
	back := safeBack(r.PostFormValue("back"), "/crashes?app="+url.QueryEscape(app))
	var groups []uint64
	for _, id := range r.PostForm["id"] {
		fp, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, "A selected crash group has no valid id.", nil, start)
			return
		}
		if !slices.Contains(groups, fp) {
			groups = append(groups, fp)
		}
	}
	if len(groups) == 0 {
		h.fail(w, r, http.StatusBadRequest, "Select at least one crash group first.", nil, start)
		return
	}
	if len(groups) > triage.MaxPerPage {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Change at most %d crash groups at once.", triage.MaxPerPage), nil, start)
		return
	}
	action := r.PostFormValue("action")
	var err error
	saved := action
	switch action {
	case "resolve", "ignore", "reopen":
		state := map[string]triage.State{"resolve": triage.StateResolved, "ignore": triage.StateIgnored, "reopen": triage.StateOpen}[action]
		saved = string(state)
		err = h.cfg.Store.SetStatuses(ctx, decisionsOf(r, app, groups, state))
	case "assign":
		a, ok := h.assigneeOf(r)
		if !ok {
			h.fail(w, r, http.StatusBadRequest, "Groups are assigned to dashboard users only.", nil, start)
			return
		}
		saved = "assigned"
		err = h.cfg.Store.Assign(ctx, app, groups, a, user)
	case "merge":
		if len(groups) < 2 {
			h.fail(w, r, http.StatusBadRequest, "Select at least two crash groups to merge.", nil, start)
			return
		}
		saved = "merged"
		var root uint64
		if root, err = h.cfg.Store.Merge(ctx, app, groups[0], groups[1:], user); err == nil {
			back = groupURL(app, root)
		}
	default:
		h.fail(w, r, http.StatusBadRequest, "Unknown action.", nil, start)
		return
	}
	if err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(app, action, user, len(groups))
	h.saved(w, r, back, saved, len(groups))
}

// logChange logs a triage change: app, what, who and how many groups,
// never a note's text.
func (h *Handler) logChange(app, what, user string, groups int) {
	h.log.Info("crash groups changed", zap.String("app_id", app), zap.String("change", what), zap.String("by", user), zap.Int("groups", groups))
}

// safeBack returns back if it is a page of crash groups on this site,
// else fallback.
func safeBack(back, fallback string) string {
	if !strings.HasPrefix(back, "/crashes") || strings.ContainsAny(back, "\\\r\n") || strings.HasPrefix(back, "//") {
		return fallback
	}
	return back
}
