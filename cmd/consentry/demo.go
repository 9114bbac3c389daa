package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/internal/cli"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
	"github.com/consentry/consentry/sdk"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("demo", `
Sends demo batches of every event kind through a running collector, from
--consents users (tokens issued from the collector's signing key) on one
kind of device, plus one batch without consent, then prints the
collector's answers and what landed in each ClickHouse table. Some demo
values hold planted identifiers (an email in a crash message, a
user_email attribute) so you can see them scrubbed. With at least
--generalize-k consents (the collector's k-anonymity, default 10) sharing
the device, their rows are stored at the next release pass rather than
held back for --generalize-delay: the demo waits for it. It then marks the
app's top crash group resolved (as on the dashboard), so that every
example query of docs/analysts.md returns rows for its app.`, stderr)
	addr := fs.String("addr", "127.0.0.1:4790", "collector gRPC `host:port`")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	events := fs.Int("events", 200, "`events` in the demo batches, all together")
	consents := fs.Int("consents", 10, "`users` (consents) the demo batches come from, each sending a share of the events")
	releaseWait := fs.Duration("release-wait", 75*time.Second, "how long to wait for the collector's release pass to store rows it holds back for k-anonymity (its --generalize-release-interval, 30s by default); 0 does not wait")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random `seed` of the demo events")
	tf := tokenFlags{appID: "com.example.notes"}
	tf.register(fs)
	var ch chFlags
	ch.register(fs)
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	if *consents < 1 || *events < *consents {
		return fmt.Errorf("demo: --consents must be 1 to --events (%d)", *events)
	}
	creds := insecure.NewCredentials()
	if *useTLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("dial collector: %w", err)
	}
	defer conn.Close()
	if err := waitServing(ctx, healthpb.NewHealthClient(conn)); err != nil {
		return err
	}
	// The collector creates its signing key as it starts: read it once it
	// serves.
	toks, err := tf.issueN(ch.dataDir, *consents)
	if err != nil {
		return err
	}
	client := consentryv1.NewIngestServiceClient(conn)
	c, err := ch.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	before, err := storedEvents(ctx, c, tf.appID)
	if err != nil {
		return err
	}
	var accepted, sent int64
	var gen *eventgen.Generator
	for i, tok := range toks {
		// Every user is on the demo device, with a session of its own.
		gen = eventgen.New(eventgen.Config{AppID: tf.appID, Token: tok, Seed: *seed + uint64(i), Device: demoDevice()})
		req := gen.Batch(*events / *consents, time.Now())
		if i == 0 {
			plantIdentifiers(req)
		}
		resp, err := client.Ingest(ctx, req)
		if err != nil {
			return fmt.Errorf("ingest demo batch: %w", err)
		}
		sent += int64(len(req.GetEvents()))
		accepted += int64(resp.GetAccepted())
	}
	fmt.Fprintf(stdout, "demo batches: %d users sent %d events: accepted %d, dropped %d\n", len(toks), sent, accepted, sent-accepted)
	noConsent := gen.Batch(10, time.Now())
	noConsent.ConsentToken = ""
	resp, err := client.Ingest(ctx, noConsent)
	if err != nil {
		return fmt.Errorf("ingest batch without consent: %w", err)
	}
	fmt.Fprintf(stdout, "batch without consent: sent %d events: accepted %d, dropped %d (%v)\n",
		len(noConsent.GetEvents()), resp.GetAccepted(), resp.GetDropped(), resp.GetDrops())
	// Accepted means durable in the collector's spool: wait until it
	// shipped them to ClickHouse, and its release pass published those it
	// held back.
	if _, err := waitStored(ctx, c, tf.appID, before, accepted, 30*time.Second); err != nil {
		return err
	}
	if err := waitReleased(ctx, stdout, c, tf.appID, *releaseWait); err != nil {
		return err
	}
	if err := printLanded(ctx, stdout, c, tf.appID); err != nil {
		return err
	}
	return resolveTopGroup(ctx, stdout, c, tf.appID)
}

// demoDevice is the device the demo's users are on.
func demoDevice() *consentryv1.DeviceContext {
	return &consentryv1.DeviceContext{
		AppVersion: "4.12.1", AppBuild: "41201", SdkVersion: "consentry-go/" + sdk.Version,
		DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE, DeviceModel: "Pixel 8",
		OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", Locale: "de-AT",
		Location: &consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"},
	}
}

// waitReleased waits up to timeout until none of app's rows are held back
// for k-anonymity.
func waitReleased(ctx context.Context, w io.Writer, c *clickhouse.Client, app string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for said := false; ; {
		held, err := c.HeldRows(ctx, app)
		if err != nil || held == 0 || time.Now().After(deadline) {
			return err
		}
		if !said {
			fmt.Fprintf(w, "waiting up to %s for the collector's release pass to store %d rows it holds back until k consents share their device's values\n", timeout, held)
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// resolveTopGroup marks app's crash group with the most sessions resolved
// in the next release, as a triage engineer would on the dashboard.
func resolveTopGroup(ctx context.Context, w io.Writer, c *clickhouse.Client, app string) error {
	store, err := triage.New(triage.Config{Backend: c})
	if err != nil {
		return err
	}
	list, err := store.List(ctx, triage.Filter{AppID: app}, triage.ListOptions{PerPage: 1})
	if err != nil {
		return err
	}
	groups := list.Groups
	if len(groups) == 0 {
		fmt.Fprintln(w, "\nno crash group stored yet to triage")
		return nil
	}
	g := groups[0]
	const fixedIn = "4.13.0"
	if err := store.SetStatus(ctx, triage.Decision{AppID: app, Fingerprint: g.Fingerprint, State: triage.StateResolved, ResolvedIn: fixedIn, ChangedBy: "demo"}); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntriage: crash group %s (%s in %s) marked resolved in %s, as on the dashboard\n",
		fingerprint.Hex(g.Fingerprint), g.ExceptionType, g.Culprit, fixedIn)
	return nil
}

// plantIdentifiers puts identifiers where an app might leak them, to show
// they do not reach storage.
func plantIdentifiers(req *consentryv1.IngestRequest) {
	for _, e := range req.GetEvents() {
		switch p := e.GetPayload().(type) {
		case *consentryv1.Event_Crash:
			p.Crash.Message = "Upload failed for jane.doe@example.com from 203.0.113.7"
			return
		case *consentryv1.Event_Custom:
			p.Custom.Attributes["user_email"] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: "jane.doe@example.com"}}
		}
	}
}

func waitServing(ctx context.Context, h healthpb.HealthClient) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := h.Check(cctx, &healthpb.HealthCheckRequest{Service: consentryv1.IngestService_ServiceDesc.ServiceName})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("collector not serving after 30s: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// printLanded prints the rows stored for app, per table, and the scrubbed
// crash messages.
func printLanded(ctx context.Context, w io.Writer, c *clickhouse.Client, app string) error {
	fmt.Fprintf(w, "\nrows in ClickHouse %s (database %s) for app %s:\n", c.Dialect().Version, c.Database(), app)
	for _, t := range clickhouse.EventTables() {
		n, err := c.CountRows(ctx, t, app)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-14s %6d\n", t, n)
	}
	held, err := c.HeldRows(ctx, app)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  %-14s %6d  (until k consents share their device's combination of quasi-identifiers,\n%24sat most --generalize-delay; see docs/privacy.md)\n", "held back", held, "")
	crashes, err := c.LatestCrashes(ctx, app, 3)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nlatest crashes (messages as stored, scrubbed):")
	for _, cr := range crashes {
		fmt.Fprintf(w, "  %s: %q [%s %s]\n", cr.ExceptionType, cr.Message, cr.Country, cr.Region)
	}
	fmt.Fprintln(w, "\nrejected or dropped events are counted in table rejects (flushed every few seconds).")
	return nil
}
