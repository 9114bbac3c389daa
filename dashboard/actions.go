package dashboard

import (
	"cmp"
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

// changeRequest is what every form that changes crash groups carries.
type changeRequest struct {
	app string
	// groups are the groups to change: the one of a group's page, or
	// those selected on the crash groups page, in its order, each once.
	groups []uint64
	user   string
	back   string
}

// changed is what a change did.
type changed struct {
	// what names the change in the log; saved is its confirmation (see
	// savedMessage).
	what, saved string
	// groups counts the groups it concerned.
	groups int
	// back is the page to return to; "" for the form's.
	back string
}

// formError is a form that asks for no change that can be made: the
// user is shown msg, with status.
type formError struct {
	status int
	msg    string
}

func (e formError) Error() string { return e.msg }

// badForm returns the formError of a form value that makes no change.
func badForm(msg string) error { return formError{http.StatusBadRequest, msg} }

// change returns the handler of a POST that changes crash groups: read
// reads the groups and the page to return to, do makes the change;
// the change is logged and the user sent back with a confirmation.
func (h *Handler) change(read func(*http.Request) (changeRequest, error), do func(context.Context, *http.Request, changeRequest) (changed, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
		defer cancel()
		c, err := read(r)
		var done changed
		if err == nil {
			done, err = do(ctx, r, c)
		}
		if err != nil {
			h.failChange(w, r, err, start)
			return
		}
		h.logChange(c.app, done.what, c.user, done.groups)
		h.saved(w, r, cmp.Or(done.back, c.back), done.saved, done.groups)
	}
}

// groupOf reads the group of a POST to /crashes/{app}/{id}/... and the
// page to return to; a formError with 404 if the id is not one.
func groupOf(r *http.Request) (changeRequest, error) {
	c := changeRequest{app: r.PathValue("app"), user: userOf(r)}
	fp, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil {
		return c, formError{http.StatusNotFound, "No crash group has that id."}
	}
	c.groups = []uint64{fp}
	c.back = safeBack(r.PostFormValue("back"), groupURL(c.app, fp))
	return c, nil
}

// selectionOf reads the groups selected in a POST to
// /crashes/{app}/bulk and the page to return to.
func selectionOf(r *http.Request) (changeRequest, error) {
	c := changeRequest{app: r.PathValue("app"), user: userOf(r)}
	c.back = safeBack(r.PostFormValue("back"), "/crashes?app="+url.QueryEscape(c.app))
	for _, id := range r.PostForm["id"] {
		fp, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			return c, badForm("A selected crash group has no valid id.")
		}
		if !slices.Contains(c.groups, fp) {
			c.groups = append(c.groups, fp)
		}
	}
	switch {
	case len(c.groups) == 0:
		return c, badForm("Select at least one crash group first.")
	case len(c.groups) > triage.MaxPerPage:
		return c, badForm(fmt.Sprintf("Change at most %d crash groups at once.", triage.MaxPerPage))
	}
	return c, nil
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
	var form formError
	switch {
	case errors.As(err, &form):
		h.fail(w, r, form.status, form.msg, nil, start)
	case errors.Is(err, triage.ErrInvalidChange):
		h.fail(w, r, http.StatusBadRequest, "That change cannot be made: "+err.Error(), nil, start)
	default:
		h.fail(w, r, http.StatusInternalServerError, "The change was not saved: the database did not answer; try again.", err, start)
	}
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

// setStatus sets the groups to the form's "state".
func (h *Handler) setStatus(ctx context.Context, r *http.Request, c changeRequest) (changed, error) {
	return h.setState(ctx, r, c, triage.State(r.PostFormValue("state")))
}

// setState sets the groups to state.
func (h *Handler) setState(ctx context.Context, r *http.Request, c changeRequest, state triage.State) (changed, error) {
	err := h.cfg.Store.SetStatuses(ctx, decisionsOf(r, c.app, c.groups, state))
	return changed{what: "status " + string(state), saved: string(state), groups: len(c.groups)}, err
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

// assign assigns the groups to the form's "assignee".
func (h *Handler) assign(ctx context.Context, r *http.Request, c changeRequest) (changed, error) {
	a, ok := h.assigneeOf(r)
	if !ok {
		return changed{}, badForm("Groups are assigned to dashboard users only.")
	}
	err := h.cfg.Store.Assign(ctx, c.app, c.groups, a, c.user)
	return changed{what: "assign", saved: "assigned", groups: len(c.groups)}, err
}

// note sets the note of the group of a group's page to the form's.
func (h *Handler) note(ctx context.Context, r *http.Request, c changeRequest) (changed, error) {
	note := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("note"), "\r\n", "\n"))
	err := h.cfg.Store.SetNote(ctx, c.app, c.groups[0], note, c.user)
	return changed{what: "note", saved: "noted", groups: 1}, err
}

// merge merges the group the form names ("other") into the group of a
// group's page.
func (h *Handler) merge(ctx context.Context, r *http.Request, c changeRequest) (changed, error) {
	other, err := strconv.ParseUint(strings.TrimSpace(r.PostFormValue("other")), 16, 64)
	if err != nil {
		return changed{}, badForm("Name the group to merge by its id: 16 hexadecimal digits, as in its address.")
	}
	return h.mergeInto(ctx, c, c.groups[0], []uint64{other})
}

// mergeInto merges others into the group into; the user returns to the
// page of the group they all joined.
func (h *Handler) mergeInto(ctx context.Context, c changeRequest, into uint64, others []uint64) (changed, error) {
	root, err := h.cfg.Store.Merge(ctx, c.app, into, others, c.user)
	return changed{what: "merge", saved: "merged", groups: 1 + len(others), back: groupURL(c.app, root)}, err
}

// unmerge takes the group the form names ("member") out of the group of
// a group's page.
func (h *Handler) unmerge(ctx context.Context, r *http.Request, c changeRequest) (changed, error) {
	member, err := strconv.ParseUint(r.PostFormValue("member"), 16, 64)
	if err != nil {
		return changed{}, badForm("No crash group has that id.")
	}
	err = h.cfg.Store.Unmerge(ctx, c.app, member, c.user)
	return changed{what: "unmerge", saved: "unmerged", groups: 1}, err
}

// bulk applies one action of the crash groups page to the groups
// selected: resolve, ignore, reopen, assign, or merge into the first of
// them (the first in the list's order). The log names the action.
func (h *Handler) bulk(ctx context.Context, r *http.Request, c changeRequest) (changed, error) {
	action := r.PostFormValue("action")
	var done changed
	var err error
	switch action {
	case "resolve", "ignore", "reopen":
		state := map[string]triage.State{"resolve": triage.StateResolved, "ignore": triage.StateIgnored, "reopen": triage.StateOpen}[action]
		done, err = h.setState(ctx, r, c, state)
	case "assign":
		done, err = h.assign(ctx, r, c)
	case "merge":
		if len(c.groups) < 2 {
			return changed{}, badForm("Select at least two crash groups to merge.")
		}
		done, err = h.mergeInto(ctx, c, c.groups[0], c.groups[1:])
	default:
		return changed{}, badForm("Unknown action.")
	}
	done.what = action
	return done, err
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
