package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
)

// TableMappings holds the R8/ProGuard mapping files uploaded per app
// version and build (package anonymizer/deobfuscate), in the private
// database.
const TableMappings = "mappings"

var _ deobfuscate.Source = (*Client)(nil)

// mappingsTable describes mappings: one row per upload; a later upload
// for the same app, version and build replaces an earlier one.
func mappingsTable(private string) *tableDef {
	return &tableDef{
		name:      TableMappings,
		database:  private,
		placement: everywhere, // every collector loads every mapping
		comment:   "R8/ProGuard mapping files of Android app builds (consentry mappings upload): class and method names of the app, no user data. The collector deobfuscates crashes of a build with its latest upload before grouping them.",
		engine:    "ReplacingMergeTree",
		columns: []column{
			{name: "app_id", typ: stringType(), comment: "App id, e.g. com.example.notes."},
			{name: "app_version", typ: stringType(), comment: "App version the mapping belongs to, e.g. 4.12.0."},
			{name: "app_build", typ: stringType(), comment: "Build number, e.g. 4120003; empty for every build of the version."},
			{name: "uploaded_at", typ: timeType(), comment: "Server time of the upload; the latest upload of a build is used.", dflt: "now()"},
			{name: "mapping_id", typ: stringType(), comment: "The file's pg_map_id header (R8 writes it), empty if none."},
			{name: "bytes", typ: uint64Type(), comment: "Size of the file in bytes."},
			{name: "content", typ: textType(), comment: "The mapping file."},
		},
		engineArgs: "uploaded_at",
		orderBy:    []string{"app_id", "app_version", "app_build"},
	}
}

// mappingsMigration creates the mappings table. It is numbered by its
// caller, so it can move when branches merge.
func mappingsMigration(version int) Migration {
	return Migration{
		Version:    version,
		Name:       "mappings: R8/ProGuard mapping files per app version and build, in the private database",
		Statements: createPrivateTables(func(s *schema) []*tableDef { return []*tableDef{s.mappings} }),
	}
}

// mappingInsert is UploadMapping's statement in database db: every
// column but uploaded_at, which the server fills in.
func mappingInsert(db string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (app_id, app_version, app_build, mapping_id, bytes, content)", db, TableMappings)
}

// UploadMapping stores the mapping file content for k, replacing an
// earlier upload for k. The caller checks that it parses; it must not be
// larger than deobfuscate.MaxFileBytes.
func (c *Client) UploadMapping(ctx context.Context, k deobfuscate.Key, mappingID string, content []byte) error {
	if len(content) > deobfuscate.MaxFileBytes {
		return fmt.Errorf("upload mapping: %d bytes is more than %d", len(content), deobfuscate.MaxFileBytes)
	}
	op := "upload mapping"
	batch, err := c.conn.PrepareBatch(ctx, mappingInsert(c.schema.opts.PrivateDatabase))
	if err != nil {
		return classify(op, err)
	}
	defer batch.Close()
	if err := batch.Append(k.AppID, k.AppVersion, k.AppBuild, mappingID, uint64(len(content)), string(content)); err != nil {
		return classify(op, err)
	}
	if err := batch.Send(); err != nil {
		return classify(op, err)
	}
	return nil
}

// listMappingsQuery is ListMappings' query in database db.
func listMappingsQuery(db string) query {
	return query{fmt.Sprintf(`SELECT app_id, app_version, app_build, max(uploaded_at) AS last_upload, argMax(bytes, uploaded_at) AS last_bytes
FROM %s.%s GROUP BY app_id, app_version, app_build ORDER BY app_id, app_version, app_build`, db, TableMappings), nil}
}

// ListMappings implements deobfuscate.Source.
func (c *Client) ListMappings(ctx context.Context) ([]deobfuscate.Stored, error) {
	type row struct {
		AppID      string    `ch:"app_id"`
		AppVersion string    `ch:"app_version"`
		AppBuild   string    `ch:"app_build"`
		UploadedAt time.Time `ch:"last_upload"`
		Bytes      uint64    `ch:"last_bytes"`
	}
	out, err := selectAll(ctx, c, listMappingsQuery(c.schema.opts.PrivateDatabase), func(r row) deobfuscate.Stored {
		return deobfuscate.Stored{Key: deobfuscate.Key{AppID: r.AppID, AppVersion: r.AppVersion, AppBuild: r.AppBuild}, UploadedAt: r.UploadedAt, Bytes: r.Bytes}
	})
	if err != nil {
		return nil, classify("list mappings", err)
	}
	return out, nil
}

// readMappingQuery is ReadMapping's query in database db.
func readMappingQuery(db string, k deobfuscate.Key) query {
	return query{fmt.Sprintf(`SELECT content FROM %s.%s WHERE app_id = ? AND app_version = ? AND app_build = ?
ORDER BY uploaded_at DESC LIMIT 1`, db, TableMappings), []any{k.AppID, k.AppVersion, k.AppBuild}}
}

// ReadMapping implements deobfuscate.Source.
func (c *Client) ReadMapping(ctx context.Context, s deobfuscate.Stored) ([]byte, error) {
	var rows []struct {
		Content string `ch:"content"`
	}
	if err := c.selectQuery(ctx, &rows, readMappingQuery(c.schema.opts.PrivateDatabase, s.Key)); err != nil {
		return nil, classify("read mapping", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read mapping: no mapping of %s %s", s.AppID, s.AppVersion)
	}
	return []byte(rows[0].Content), nil
}
