package fleet

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
	"github.com/consentry/consentry/sdk"
)

var shared *chserver.Server

func TestMain(m *testing.M) { os.Exit(chtest.Main(m, &shared)) }

// TestFleetEndToEnd runs a small fleet over both transports against a
// real collector and ClickHouse: every recorded event is sent and stored
// once, with the fleet's spread of devices.
func TestFleetEndToEnd(t *testing.T) {
	chtest.Require(t, shared)
	for _, transport := range []string{sdk.TransportGRPC, sdk.TransportHTTP} {
		t.Run(transport, func(t *testing.T) {
			db := "consentry_fleet_" + transport
			app, err := collector.New(context.Background(), collector.Config{
				GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DataDir: t.TempDir(),
				ClickHouse: clickhouse.Config{Addr: shared.Addr(), Database: db, Username: shared.User(), Password: shared.Password()}, AppRefresh: 100 * time.Millisecond,
				// Twelve devices are too few for k-anonymity's default k
				// of 10, which would hold most rows back for an hour:
				// this test is about the fleet's devices arriving.
				Anonymizer: anonymizer.Config{Generalize: anonymizer.GeneralizeConfig{K: 1}},
			})
			if err != nil {
				t.Fatal(err)
			}
			go app.Serve()
			defer app.Shutdown(context.Background())
			const appID, key = "com.example.notes", "ck_fleet-test-0123456789abcdefghijklmnop"
			now := time.Now().UTC()
			if err := app.Client().PutApp(context.Background(), consent.App{ID: appID, KeyHash: consent.HashAppKey(key),
				Policy: consent.PolicyAnonymous, CreatedAt: now, UpdatedAt: now,
				Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}}); err != nil {
				t.Fatal(err)
			}
			endpoint := app.Addr()
			if transport == sdk.TransportHTTP {
				endpoint = "http://" + app.HTTPAddr()
			}
			res, err := Run(context.Background(), Config{Endpoint: endpoint, Transport: transport, AppID: appID, AppKey: key,
				Devices: 12, Sessions: 2, CrashRate: 0.5, Dir: t.TempDir(), Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			if res.Recorded == 0 || res.Sent != res.Recorded || res.Dropped != 0 || res.Crashes == 0 {
				t.Fatalf("result %+v: want every recorded event sent, some crashes", res)
			}
			// Acknowledged means durable in the spool; stored a moment
			// later.
			if err := app.Spool().WaitShipped(context.Background()); err != nil {
				t.Fatal(err)
			}
			ch := chtest.Conn(t, shared)
			var stored, models, regions uint64
			for _, table := range clickhouse.EventTables() {
				var n uint64
				if err := ch.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE app_id = '%s'", db, table, appID)).Scan(&n); err != nil {
					t.Fatal(err)
				}
				stored += n
			}
			if stored != uint64(res.Sent) {
				t.Fatalf("%d events stored, %d sent", stored, res.Sent)
			}
			q := fmt.Sprintf("SELECT uniqExact(device_model), uniqExact(country) FROM %s.gestures", db)
			if err := ch.QueryRow(context.Background(), q).Scan(&models, &regions); err != nil {
				t.Fatal(err)
			}
			if models == 0 || regions == 0 {
				t.Fatalf("%d models, %d countries stored", models, regions)
			}
			// With the SDK's defaults, every crash is worth triaging:
			// in-app frames, a thread, an app state, breadcrumbs.
			var crashes, worth uint64
			q = fmt.Sprintf(`SELECT count(), countIf(has(frame_in_app, 1) AND thread != '' AND app_state != 'unknown' AND notEmpty(breadcrumb_types))
FROM %s.crashes FINAL WHERE app_id = '%s'`, db, appID)
			if err := ch.QueryRow(context.Background(), q).Scan(&crashes, &worth); err != nil {
				t.Fatal(err)
			}
			if crashes == 0 || worth != crashes {
				t.Errorf("%d of %d crashes have in-app frames, a thread, an app state and breadcrumbs; want all", worth, crashes)
			}
		})
	}
}
