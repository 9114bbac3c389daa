package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/cli"
)

// defaultEraseTimeout bounds each erasure reapply-erasures runs, as the
// collector bounds a revocation's.
const defaultEraseTimeout = 2 * time.Minute

func runReapplyErasures(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("reapply-erasures", `
Finds the consents the erasure log records as erased whose rows are stored
again, and erases them again. Rows come back behind an erasure when a
backup taken before it is restored after it, when a detached part is
attached back, or when a replica is rebuilt from an old copy: run this
after any of those, before analysts read the data. It reads the
consent_key column of every event table whole, prints per app how many
consents and rows it found and erased (never a key), and fails if an
erasure does not finish; running it again finishes what is left. With
--dry-run it only reports. The erasure log keeps 3 years
(clickhouse.DefaultAuditRetentionDays); older erasures are not known. See
docs/operations.md, "Restoring a backup".`, stderr)
	var ch chFlags
	ch.register(fs)
	since := fs.String("since", "", "only erasures recorded on or after this UTC `date` (YYYY-MM-DD), e.g. the day the backup was taken (default: the whole log)")
	dryRun := fs.Bool("dry-run", false, "report what is stored again, erase nothing")
	timeout := fs.Duration("erase-timeout", defaultEraseTimeout, "how long each consent's erasure may take")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	var from time.Time
	if *since != "" {
		var err error
		if from, err = time.Parse(time.DateOnly, *since); err != nil {
			return fmt.Errorf("reapply-erasures: --since: %w", err)
		}
	}
	if *timeout <= 0 {
		return errors.New("reapply-erasures: --erase-timeout must be positive")
	}
	cl, err := ch.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	found, err := cl.ErasedWithRows(ctx, from)
	if err != nil {
		return fmt.Errorf("reapply-erasures: %w", err)
	}
	return reapply(ctx, stdout, found, *dryRun, func(ctx context.Context, e clickhouse.ErasedConsent) (uint64, error) {
		ectx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		deleted, err := cl.Erase(ectx, e.AppID, e.ConsentKey)
		var n uint64
		for _, d := range deleted {
			n += d
		}
		return n, err
	})
}

// reapply erases each consent of found with erase (unless dryRun) and
// prints, per app, what was stored again and what was erased. It goes on
// past a failed erasure and returns the errors, which name no key.
func reapply(ctx context.Context, w io.Writer, found []clickhouse.ErasedConsent, dryRun bool,
	erase func(context.Context, clickhouse.ErasedConsent) (uint64, error)) error {
	if len(found) == 0 {
		fmt.Fprintln(w, "No erased consent has rows stored.")
		return nil
	}
	type appCount struct{ consents, stored, erased, failed uint64 }
	var apps []string
	per := map[string]*appCount{}
	var errs []error
	for _, e := range found {
		a := per[e.AppID]
		if a == nil {
			a = &appCount{}
			per[e.AppID] = a
			apps = append(apps, e.AppID)
		}
		a.consents++
		a.stored += e.Rows
		if dryRun {
			continue
		}
		n, err := erase(ctx, e)
		a.erased += n
		if err != nil {
			a.failed++
			errs = append(errs, fmt.Errorf("%s: %w", e.AppID, err))
		}
	}
	for _, app := range apps {
		a := per[app]
		fmt.Fprintf(w, "%s: %s erased consents with %s rows stored again", app, num(a.consents), num(a.stored))
		switch {
		case dryRun:
			fmt.Fprintln(w, " (dry run: nothing erased)")
		case a.failed > 0:
			fmt.Fprintf(w, "; erased again: %s rows; %s erasures did not finish\n", num(a.erased), num(a.failed))
		default:
			fmt.Fprintf(w, "; erased again: %s rows\n", num(a.erased))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reapply-erasures: %d erasures did not finish (run it again to finish them): %w", len(errs), err)
	}
	return nil
}
