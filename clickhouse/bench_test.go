package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/pipeline"
)

// BenchmarkInsert measures Client.Insert, the ceiling of what the raw
// clickhouse-go path stores, on realistic mixed rows against the test
// server.
func BenchmarkInsert(b *testing.B) {
	for _, bc := range []struct {
		rows        int
		compression string
	}{
		{1_000, "lz4"},
		{10_000, "lz4"},
		{50_000, "lz4"},
		{50_000, "none"},
	} {
		b.Run(fmt.Sprintf("rows=%d/compression=%s", bc.rows, bc.compression), func(b *testing.B) {
			c := migrated(b, Config{Compression: bc.compression})
			batches := make([]*pipeline.Rows, 4)
			for i := range batches {
				batches[i] = newRowGen(uint64(i+1), time.Now()).rows(bc.rows)
			}
			ctx := context.Background()
			if err := c.Insert(ctx, batches[0]); err != nil { // warm the pool
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu, server := time.Now(), chtest.SelfCPU(b), chtest.ProcessCPU(b, shared.PID())
			for i := 0; b.Loop(); i++ {
				if err := c.Insert(ctx, batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.rows)/time.Since(start).Seconds(), "rows/s")
			// CPU is steadier than wall time on a shared machine; the
			// client's is what the collector pays for an insert.
			rows := float64(b.N * bc.rows)
			b.ReportMetric(float64(chtest.SelfCPU(b)-cpu)/rows, "client-cpu-ns/row")
			b.ReportMetric(float64(chtest.ProcessCPU(b, shared.PID())-server)/rows, "server-cpu-ns/row")
		})
	}
}

// BenchmarkEncode measures the client-side part of an insert: collecting
// 10 000 mixed rows into column buffers, without the driver and server.
func BenchmarkEncode(b *testing.B) {
	s := newSchema(SchemaOptions{})
	rows := newRowGen(1, time.Now()).rows(10_000)
	b.ReportAllocs()
	for b.Loop() {
		encodeAll(s.sessions, rows.Sessions)
		encodeAll(s.gestures, rows.Gestures)
		encodeAll(s.crashes, rows.Crashes)
		encodeAll(s.customs, rows.Customs)
		encodeAll(s.diagnostics, rows.Diagnostics)
	}
	b.ReportMetric(float64(b.N*rows.Len())/b.Elapsed().Seconds(), "rows/s")
}

func encodeAll[R any](t *rowTable[R], rows []R) {
	enc := t.encoders.Get().(*encoder[R])
	enc.encode(rows)
	enc.reset()
	t.encoders.Put(enc)
}

// BenchmarkClusterInsert measures Client.Insert on the test cluster (2
// shards of 2 replicas of 18.16 on this machine), 50,000 mixed rows per
// insert, three ways: through the Distributed tables synchronously (what
// the collector does: acknowledged once on a replica of each shard),
// asynchronously (acknowledged once the initiator queued them on its
// disk, delivered later), and straight into one shard's storage tables
// (what a collector that sharded itself would do, per shard).
//
//	go test -run '^$' -bench ClusterInsert -benchtime 20x ./clickhouse/
func BenchmarkClusterInsert(b *testing.B) {
	c := cluster.Get(b)
	db := clusterDB(b, "t_cluster_bench")
	cl := clusterClient(b, db, [2]int{0, 0})
	if _, err := cl.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	batches := make([]*pipeline.Rows, 4)
	for i := range batches {
		batches[i] = newRowGen(uint64(i+1), time.Now()).rows(50_000)
	}
	ctx := context.Background()
	// A Client whose inserts name the connected server's storage tables.
	local := *cl
	local.schema = newSchema(cl.schema.opts)
	s := local.schema
	for _, sql := range []*string{&s.sessions.insertSQL, &s.gestures.insertSQL, &s.crashes.insertSQL, &s.customs.insertSQL, &s.diagnostics.insertSQL} {
		table, cols, _ := strings.Cut(*sql, " (")
		*sql = table + "_local (" + cols
	}
	for _, bc := range []struct {
		name string
		ctx  context.Context
		c    *Client
	}{
		{"distributed-sync", ctx, cl},
		{"distributed-async", clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 0})), cl},
		{"one-shard-local", ctx, &local},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if err := bc.c.Insert(bc.ctx, batches[0]); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			rows := 0
			for i := 0; b.Loop(); i++ {
				if err := bc.c.Insert(bc.ctx, batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
				rows += batches[i%len(batches)].Len()
			}
			b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
		})
	}
	b.Logf("cluster %s: %d shards of %d replicas", c.Name(), c.Shards(), c.Replicas())
}
