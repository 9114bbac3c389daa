package dashboard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/dashboard/triage"
)

// TestChangeFormErrors checks the answers to forms that ask for no
// change that can be made: each is refused before the Store is asked
// (the Store here has no database), with a status and a sentence.
func TestChangeFormErrors(t *testing.T) {
	h, err := New(Config{Store: &triage.Store{}, Credentials: map[string]string{"alice": "correct-horse-1"}})
	if err != nil {
		t.Fatal(err)
	}
	const group = "/crashes/app/00000000000000ff"
	var tooMany []string
	for i := range triage.MaxPerPage + 1 {
		tooMany = append(tooMany, fmt.Sprintf("%016x", i+1))
	}
	tests := []struct {
		name   string
		path   string
		form   url.Values
		status int
		want   string
	}{
		{"status of no group", "/crashes/app/zz/status", url.Values{"state": {"ignored"}}, http.StatusNotFound, "No crash group has that id."},
		{"assign to no user", group + "/assign", url.Values{"assignee": {"mallory"}}, http.StatusBadRequest, "Groups are assigned to dashboard users only."},
		{"merge no id", group + "/merge", url.Values{"other": {"editor"}}, http.StatusBadRequest, "Name the group to merge by its id"},
		{"unmerge no id", group + "/unmerge", url.Values{"member": {"zz"}}, http.StatusBadRequest, "No crash group has that id."},
		{"bulk of none", "/crashes/app/bulk", url.Values{"action": {"ignore"}}, http.StatusBadRequest, "Select at least one crash group first."},
		{"bulk bad id", "/crashes/app/bulk", url.Values{"action": {"ignore"}, "id": {"00000000000000ff", "zz"}}, http.StatusBadRequest, "A selected crash group has no valid id."},
		{"bulk of too many", "/crashes/app/bulk", url.Values{"action": {"ignore"}, "id": tooMany}, http.StatusBadRequest, "Change at most 200 crash groups at once."},
		{"bulk unknown action", "/crashes/app/bulk", url.Values{"action": {"delete"}, "id": {"00000000000000ff"}}, http.StatusBadRequest, "Unknown action."},
		{"bulk merge of one", "/crashes/app/bulk", url.Values{"action": {"merge"}, "id": {"00000000000000ff", "00000000000000ff"}}, http.StatusBadRequest, "Select at least two crash groups to merge."},
		{"bulk assign to no user", "/crashes/app/bulk", url.Values{"action": {"assign"}, "assignee": {"mallory"}, "id": {"00000000000000ff"}}, http.StatusBadRequest, "Groups are assigned to dashboard users only."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := httptest.NewRequest(http.MethodPost, tt.path, nil)
			signed.SetBasicAuth("alice", "correct-horse-1")
			tt.form.Set("csrf", h.auth.csrf(signed))
			r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.form.Encode()))
			r.SetBasicAuth("alice", "correct-horse-1")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("POST %s: %d\n%.1500s\nwant %d with %q", tt.path, w.Code, w.Body.String(), tt.status, tt.want)
			}
		})
	}
}
