package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("demo", `
Sends a demo batch of every event kind through a running collector, with a
token issued from the collector's signing key, plus one batch without
consent, then prints the collector's answers and what landed in each
ClickHouse table. Some demo values hold planted identifiers (an email in a
crash message, a user_email attribute) so you can see them scrubbed.`, stderr)
	addr := fs.String("addr", "127.0.0.1:4790", "collector gRPC `host:port`")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	events := fs.Int("events", 200, "`events` in the demo batch")
	var tf tokenFlags
	tf.register(fs)
	var ch chFlags
	ch.register(fs)
	if err := parse(fs, args, lookup); err != nil {
		return err
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
	tok, err := tf.issue(ch.dataDir)
	if err != nil {
		return err
	}
	client := consentryv1.NewIngestServiceClient(conn)
	cfg, err := ch.config()
	if err != nil {
		return err
	}
	c, err := clickhouse.Open(ctx, cfg, zap.NewNop())
	if err != nil {
		return err
	}
	defer c.Close()
	before, err := storedEvents(ctx, c, tf.appID)
	if err != nil {
		return err
	}
	gen := eventgen.New(eventgen.Config{AppID: tf.appID, Token: tok, Seed: uint64(time.Now().UnixNano())})
	req := gen.Batch(*events, time.Now())
	plantIdentifiers(req)
	resp, err := client.Ingest(ctx, req)
	if err != nil {
		return fmt.Errorf("ingest demo batch: %w", err)
	}
	fmt.Fprintf(stdout, "demo batch: sent %d events: accepted %d, dropped %d, consent %s\n",
		len(req.GetEvents()), resp.GetAccepted(), resp.GetDropped(), resp.GetConsentState())
	accepted := int64(resp.GetAccepted())
	noConsent := gen.Batch(10, time.Now())
	noConsent.ConsentToken = ""
	resp, err = client.Ingest(ctx, noConsent)
	if err != nil {
		return fmt.Errorf("ingest batch without consent: %w", err)
	}
	fmt.Fprintf(stdout, "batch without consent: sent %d events: accepted %d, dropped %d (%v)\n",
		len(noConsent.GetEvents()), resp.GetAccepted(), resp.GetDropped(), resp.GetDrops())
	// Accepted means durable in the collector's spool: wait until it
	// shipped them to ClickHouse.
	if _, err := waitStored(ctx, c, tf.appID, before, accepted, 30*time.Second); err != nil {
		return err
	}
	return printLanded(ctx, stdout, c, tf.appID)
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
