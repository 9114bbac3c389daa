package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/cli"
	"github.com/consentry/consentry/internal/fleet"
	"github.com/consentry/consentry/internal/grpcrr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
	"github.com/consentry/consentry/sdk"
)

func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("fleet", `
Simulates a fleet of devices, each running a real SDK client with its
defaults against a running collector: realistic device models, OS versions,
locations, session lengths, screens and gestures, custom events, start-up
diagnostics and a crash rate with a few recurring crashes, each with
in-app frames, its thread, the app state and breadcrumbs. It registers (or
re-keys) the fleet's app, lets every device grant consent and run its
sessions, closes the clients (which flushes their queues), then waits until
ClickHouse holds what was sent (in the event tables, or held back until k
consents share a device's combination of quasi-identifiers) and prints
devices, events sent, events stored and the time taken. Devices come in
cohorts of --cohort that share their device model, OS version, locale,
location and app version, so that the collector's k-anonymity (k at most
--cohort) publishes their rows at the next release pass instead of holding
them back for --generalize-delay. With the defaults, every example query of
docs/analysts.md returns rows on what the fleet and consentry demo send.`, stderr)
	addr := fs.String("addr", "127.0.0.1:4790", "collector gRPC `host:port`, or several, comma-separated, spread round robin")
	httpAddr := fs.String("http-addr", "127.0.0.1:4791", "collector HTTP `host:port`, for --transport http")
	transport := fs.String("transport", sdk.TransportGRPC, "SDK `transport`: grpc or http (JSON)")
	app := fs.String("app-id", "com.example.notes", "the fleet's `app id`; registered, or re-keyed if it exists")
	devices := fs.Int("devices", 50, "simulated `devices`")
	sessions := fs.Int("sessions", 3, "`sessions` per device")
	concurrency := fs.Int("concurrency", 16, "devices running at once")
	crashRate := fs.Float64("crash-rate", 0.05, "probability that a session ends in a crash")
	cohort := fs.Int("cohort", 10, "`devices` that share their quasi-identifiers, at least the collector's --generalize-k for their rows to be stored at once; 1 draws every device on its own")
	releaseWait := fs.Duration("release-wait", 75*time.Second, "how long to wait for the collector's release pass to store rows it holds back for k-anonymity (its --generalize-release-interval, 30s by default); 0 does not wait")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random `seed`")
	var ch chFlags
	ch.register(fs)
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	endpoint := grpcrr.Addrs(*addr)
	switch *transport {
	case sdk.TransportGRPC:
	case sdk.TransportHTTP:
		endpoint = "http://" + *httpAddr
	default:
		return fmt.Errorf("fleet: --transport %q: want grpc or http", *transport)
	}
	cl, _, err := ch.open(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	key := newAppKey()
	now := time.Now().UTC()
	a := consent.App{ID: *app, KeyHash: consent.HashAppKey(key), Policy: consent.PolicyAnonymous, CreatedAt: now, UpdatedAt: now,
		Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}}
	if err := cl.PutApp(ctx, a); err != nil {
		return fmt.Errorf("fleet: register app: %w", err)
	}
	before, err := storedEvents(ctx, cl, *app)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "consentry-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stdout, "fleet: %d devices (cohorts of at least %d alike) × %d sessions of app %s over %s (%s); the collector learns the app within its registry refresh\n",
		*devices, *cohort, *sessions, *app, *transport, endpoint)
	res, runErr := fleet.Run(ctx, fleet.Config{Endpoint: endpoint, Transport: *transport, AppID: *app, AppKey: key,
		Devices: *devices, Sessions: *sessions, Concurrency: *concurrency, CrashRate: *crashRate, Cohort: *cohort, Dir: dir, Seed: *seed})
	stored, waitErr := waitStored(ctx, cl, *app, before, res.Sent, 30*time.Second)
	fmt.Fprintf(stdout, "devices %d, events recorded %d, sent %d, dropped %d, crashes %d, stored %d, in %s (%.0f events/s sent)\n",
		res.Devices, res.Recorded, res.Sent, res.Dropped, res.Crashes, stored, res.Elapsed.Round(time.Millisecond),
		float64(res.Sent)/res.Elapsed.Seconds())
	if runErr != nil || waitErr != nil {
		return errors.Join(runErr, waitErr)
	}
	return waitReleased(ctx, stdout, cl, *app, *releaseWait)
}

// storedEvents counts app's events in every event table, and those held
// back until k consents share their combination of quasi-identifiers
// (docs/privacy.md): both are stored durably.
func storedEvents(ctx context.Context, cl *clickhouse.Client, app string) (uint64, error) {
	total, err := cl.HeldRows(ctx, app)
	if err != nil {
		return 0, err
	}
	for _, t := range clickhouse.EventTables() {
		n, err := cl.CountRows(ctx, t, app)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// waitStored waits until app has sent more events stored than before, and
// returns how many it has.
func waitStored(ctx context.Context, cl *clickhouse.Client, app string, before uint64, sent int64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := storedEvents(ctx, cl, app)
		if err != nil {
			return 0, err
		}
		stored := n - before
		if stored >= uint64(sent) || time.Now().After(deadline) {
			if stored < uint64(sent) {
				return stored, fmt.Errorf("%d events accepted for %s, only %d stored after %s", sent, app, stored, timeout)
			}
			return stored, nil
		}
		select {
		case <-ctx.Done():
			return stored, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
