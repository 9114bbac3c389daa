package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/cli"
)

func runPrivacyReport(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("privacy-report", `
Prints, for privacy and legal staff, what a running collector stored and
removed, per app and UTC day, from its ClickHouse: rows stored and held
back for k-anonymity; how many held rows were released exactly and how
many with generalized values, by attribute and step (they are generalized
because fewer than k consents shared their combination of quasi-
identifiers within the hold delay); the smallest class of quasi-
identifiers published; identifiers scrubbed, by detector; consents
granted, revoked and erased, and erasure receipts; and, as of now, what
keeps erasures from reaching stored rows: deletions ClickHouse has not
finished, erased consents whose rows are stored again, and detached parts.
It prints counts and table and part names only, never values or keys, and
changes nothing. See docs/privacy.md.`, stderr)
	app := fs.String("app", "", "report only this `app id` (default every app)")
	days := fs.Int("days", 7, "report the last `n` UTC days, today included")
	var ch chFlags
	ch.register(fs)
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	if *days < 1 {
		return errors.New("privacy-report: --days must be at least 1")
	}
	cl, err := ch.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	to := time.Now().UTC()
	from := to.AddDate(0, 0, -(*days - 1))
	report, err := cl.PrivacyReport(ctx, *app, from, to)
	if err != nil {
		return fmt.Errorf("privacy-report: %w", err)
	}
	now, err := erasureNow(ctx, cl)
	if err != nil {
		return fmt.Errorf("privacy-report: %w", err)
	}
	writePrivacyReport(stdout, report, *app, from, to)
	writeErasureNow(stdout, now)
	return nil
}

// erasureState is what keeps erasures from reaching stored rows, now:
// deletions ClickHouse has not finished, erased consents whose rows are
// stored again, and detached parts.
type erasureState struct {
	// Stalled is the tables with deletions unfinished for longer than
	// collector.DefaultStalledMutationAge.
	Stalled []clickhouse.StalledMutation
	// Detached is the detached parts, unless DetachedUnknown: the server
	// cannot tell (before 19.8, its data on another machine).
	Detached        []clickhouse.DetachedPart
	DetachedUnknown bool
	// Returned is the erased consents whose rows are stored again.
	Returned []clickhouse.ErasedConsent
}

// erasureNow asks cl what keeps erasures from reaching stored rows.
func erasureNow(ctx context.Context, cl *clickhouse.Client) (erasureState, error) {
	var s erasureState
	var err error
	if s.Stalled, err = cl.StalledMutations(ctx, collector.DefaultStalledMutationAge); err != nil {
		return s, err
	}
	s.Detached, err = cl.DetachedParts(ctx)
	if errors.Is(err, clickhouse.ErrDetachedUnknown) {
		s.DetachedUnknown, err = true, nil
	}
	if err != nil {
		return s, err
	}
	s.Returned, err = cl.ErasedWithRows(ctx, time.Time{})
	return s, err
}

// writeErasureNow prints s after the days.
func writeErasureNow(w io.Writer, s erasureState) {
	fmt.Fprintln(w, "\nErasure, now (every app): what keeps erasures from reaching stored rows (docs/consent.md)")
	line := func(label, value string) { reportLine(w, label, value) }
	if len(s.Stalled) == 0 {
		line("unfinished erasures", "none")
	}
	for _, m := range s.Stalled {
		line("unfinished erasures", m.String()+": erased consents' rows in this table are still stored (docs/operations.md#a-damaged-clickhouse-part)")
	}
	if len(s.Returned) == 0 {
		line("erased, yet stored", "none: no consent the erasure log records has rows stored")
	} else {
		var rows uint64
		for _, e := range s.Returned {
			rows += e.Rows
		}
		line("erased, yet stored", fmt.Sprintf("%s consents with %s rows (a restored backup, a part attached back?): run consentry reapply-erasures",
			num(uint64(len(s.Returned))), num(rows)))
	}
	switch {
	case s.DetachedUnknown:
		line("detached parts", "not known: ClickHouse before 19.8 does not list them, and its data is not on this machine")
	case len(s.Detached) == 0:
		line("detached parts", "none")
	default:
		names := make([]string, len(s.Detached))
		for i, p := range s.Detached {
			names[i] = p.String()
		}
		line("detached parts", fmt.Sprintf("%s, their rows beyond erasure and retention until dropped (docs/operations.md#detached-parts): %s",
			num(uint64(len(names))), strings.Join(names, "; ")))
	}
}

// rungNames names each attribute's rungs as the report prints them.
var rungNames = [kanon.NumAttributes][3]string{
	kanon.Model:    {"device model", "other", ""},
	kanon.Locale:   {"locale", "language", "unknown"},
	kanon.Location: {"region", "country", "unknown"},
	kanon.OS:       {"OS version", "major", "other"},
	kanon.App:      {"app version", "major.minor", "other"},
}

// writePrivacyReport prints days as the report does.
func writePrivacyReport(w io.Writer, days []clickhouse.PrivacyDay, app string, from, to time.Time) {
	fmt.Fprintf(w, "Privacy report, %s to %s (UTC), %s.\n", from.Format(time.DateOnly), to.Format(time.DateOnly), cmp.Or(app, "every app"))
	fmt.Fprintln(w, "Values are generalized when fewer than k consents share a row's combination of quasi-identifiers")
	fmt.Fprintln(w, "within the hold delay; at the top level every quasi-identifier is unknown (docs/privacy.md).")
	if len(days) == 0 {
		fmt.Fprintln(w, "\nNothing stored, held or counted in these days.")
		return
	}
	for _, d := range days {
		r := d.Released
		fmt.Fprintf(w, "\n%s  %s\n", d.App, d.Day.Format(time.DateOnly))
		line := func(label, value string) { reportLine(w, label, value) }
		line("rows stored", fmt.Sprintf("%s · held, waiting for k consents: %s", num(d.RowsStored), num(d.RowsHeld)))
		line("released from hold", fmt.Sprintf("%s · exact %s · generalized %s · top level %s",
			num(r.Rows), num(r.Exact), num(r.Rows-r.Exact-r.Top), num(r.Top)))
		var gen []string
		for a, names := range rungNames {
			for rung := 1; rung <= 2; rung++ {
				if n := r.Generalized[a][rung]; n > 0 {
					gen = append(gen, fmt.Sprintf("%s → %s %s", names[0], names[rung], num(n)))
				}
			}
		}
		if len(gen) > 0 {
			line("generalized values", strings.Join(gen, " · "))
		}
		if r.SmallestClass > 0 {
			line("smallest class", fmt.Sprintf("%s consents (the top level aside), %s classes published", num(r.SmallestClass), num(r.Classes)))
		}
		line("scrubbed", counted(d.Scrubbed, map[string]string{anonymizer.IdentifierKey: "identifier-named keys"}))
		line("consents", fmt.Sprintf("granted %s · revoked %s (%s asked erasure) · erased %s (%s rows deleted)",
			num(d.Granted), num(d.Revoked), num(d.ErasureAsked), num(d.Erased), num(d.RowsErased)))
		line("erasure receipts", fmt.Sprintf("%s %s · %s %s", consent.OutcomeErased, num(d.Receipts[consent.OutcomeErased]),
			consent.OutcomeAnonymous, num(d.Receipts[consent.OutcomeAnonymous])))
	}
}

// reportLine prints one line of the report: a label, and what it counts.
func reportLine(w io.Writer, label, value string) { fmt.Fprintf(w, "  %-20s %s\n", label, value) }

// counted prints counts by name, largest first, with display names.
func counted(m map[string]uint64, display map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	names := slices.Collect(maps.Keys(m))
	slices.SortFunc(names, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		label := n
		if d, ok := display[n]; ok {
			label = d
		}
		parts[i] = label + " " + num(m[n])
	}
	return strings.Join(parts, " · ")
}

// num prints n with thousands separators.
func num(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
