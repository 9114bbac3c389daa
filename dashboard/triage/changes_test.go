package triage

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMergeSet(t *testing.T) {
	merge := func(into map[uint64]uint64) mergeSet {
		latest := make(map[uint64]Change)
		for fp, to := range into {
			latest[fp] = Change{Fingerprint: fp, Kind: ChangeMerge, MergedInto: to}
		}
		return newMergeSet(latest)
	}
	// 2 and 3 joined 1; 4 joined 3 before; 5 was unmerged (0); 6 and 7
	// were merged into each other at once.
	m := merge(map[uint64]uint64{2: 1, 3: 1, 4: 3, 5: 0, 6: 7, 7: 6})
	for fp, want := range map[uint64]uint64{1: 1, 2: 1, 3: 1, 4: 1, 5: 5, 6: 6, 7: 6, 9: 9} {
		if got := m.root(fp); got != want {
			t.Errorf("root(%d) = %d, want %d", fp, got, want)
		}
	}
	if got := m.members(1); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("members(1) = %v", got)
	}
	if got := m.members(6); !slices.Equal(got, []uint64{6, 7}) {
		t.Errorf("members(6) = %v: a cycle is one group", got)
	}
	if m.merged(1) || !m.merged(4) || m.merged(5) {
		t.Error("merged: 4 is, 1 and 5 are not")
	}
}

func TestChangeValidate(t *testing.T) {
	at := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		c    Change
		want string // "" for valid
	}{
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeAssignee, Value: "bob", ChangedAt: at}, ""},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeAssignee, ChangedAt: at}, ""},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeNote, Value: "fixed by #123", ChangedAt: at}, ""},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeMerge, MergedInto: 2, ChangedAt: at}, ""},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeMerge, ChangedAt: at}, ""},
		{Change{Fingerprint: 1, Kind: ChangeNote, ChangedAt: at}, "app id"},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeAssignee, Value: "bob smith", ChangedAt: at}, "not a dashboard user"},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeNote, Value: strings.Repeat("x", MaxNoteLen+1), ChangedAt: at}, "at most"},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeNote, Value: "\xff", ChangedAt: at}, "UTF-8"},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeMerge, MergedInto: 1, ChangedAt: at}, "into itself"},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeNote, MergedInto: 2, ChangedAt: at}, "only a merge"},
		{Change{AppID: "a", Fingerprint: 1, Kind: "snooze", ChangedAt: at}, "unknown change"},
		{Change{AppID: "a", Fingerprint: 1, Kind: ChangeNote}, "outside 1970 to 2106"},
	} {
		err := tc.c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}
