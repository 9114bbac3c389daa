package fleet

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/collectortest"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
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
			// k-anonymity is off (collectortest): twelve devices are too
			// few for its default k of 10, and this test is about the
			// fleet's devices arriving.
			c := collectortest.Start(t, shared)
			const appID, key = "com.example.notes", "ck_fleet-test-0123456789abcdefghijklmnop"
			c.AddApp(t, appID, key)
			db, ch := c.DB, c.CH
			endpoint := c.Addr()
			if transport == sdk.TransportHTTP {
				endpoint = "http://" + c.HTTPAddr()
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
			c.Shipped(t)
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
