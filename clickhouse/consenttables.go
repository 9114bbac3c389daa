package clickhouse

import (
	"math"
	"time"

	"github.com/consentry/consentry/consent"
)

// The consent store's tables: apps, revocations and erasures.

// appsTable returns the definition of the apps table in database.
func appsTable(database string) *rowTable[consent.App] {
	return newRowTable(database,
		&tableDef{
			name:    TableApps,
			comment: "Apps registered with the collector, one row per version of each: read the latest with argMax(column, version) grouped by app_id. Holds a hash of each app's key, never the key.",
			// Merges keep the highest version of each app.
			engine:     "ReplacingMergeTree",
			engineArgs: "version",
			orderBy:    []string{"app_id"},
			// Every collector reads the apps; a registration survives
			// the loss of the server that took it.
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[consent.App]{
			stringCol("app_id", "App id as apps send it, e.g. com.example.notes.",
				func(a *consent.App) string { return a.ID }),
			stringCol("key_hash", "Hex SHA-256 of the app's key (consent.HashAppKey); the key itself is never stored.",
				func(a *consent.App) string { return a.KeyHash }),
			array("scopes", stringArrayType(), "Scopes the app may ask its users for: analytics, crash_reports, location.",
				func(dst []string, a *consent.App) []string {
					for _, sc := range a.Scopes {
						dst = append(dst, string(sc))
					}
					return dst
				}),
			stringCol("policy", "Erasure policy: anonymous (rows carry no link to a consent) or erasable (rows carry consent_key, so a revoked consent's rows can be erased).",
				func(a *consent.App) string { return string(a.Policy) }),
			timeCol("created_at", "When the app was registered (UTC).",
				func(a *consent.App) time.Time { return a.CreatedAt }),
			timeCol("updated_at", "When this version of the app was made (UTC).",
				func(a *consent.App) time.Time { return a.UpdatedAt }),
			uint64Col("version", "updated_at in Unix nanoseconds: merges keep, and reads take, the row with the highest version of each app.",
				func(a *consent.App) uint64 { return uint64(a.UpdatedAt.UnixNano()) }),
		})
}

// revocationsTable returns the definition of the revocations table in database.
func revocationsTable(database string) *rowTable[consent.Revocation] {
	return newRowTable(database,
		&tableDef{
			name:    TableRevocations,
			comment: "Withdrawn consents, named by the SHA-256 of the consent id (never the id), kept until the consent's token expires. The first revocation of a consent counts: read argMin(column, revoked_at) grouped by consent_hash.",
			// Revoking twice leaves two rows until they merge; the version
			// makes the merge keep the first revocation.
			engine:     "ReplacingMergeTree",
			engineArgs: "version",
			// Revocations expire with their tokens: PruneRevocations drops
			// whole months that have passed.
			day:     "expires_at",
			monthly: true,
			expiry:  "expires_at",
			orderBy: []string{"consent_hash"},
			// Every collector reads every revocation from its own
			// server (after catching up: Client.Revocations); one
			// acknowledged by Revoke is on two servers.
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[consent.Revocation]{
			stringCol("consent_hash", "Hex SHA-256 of the consent id (consent.HashConsentID); the id itself is never stored.",
				func(r *consent.Revocation) string { return r.ConsentHash }),
			lowCardCol("app_id", "App the consent was given to.",
				func(r *consent.Revocation) string { return r.AppID }),
			timeCol("revoked_at", "When the consent was withdrawn (UTC).",
				func(r *consent.Revocation) time.Time { return r.RevokedAt }),
			timeCol("expires_at", "When the consent's token expires (UTC); the revocation is forgotten after it, as the token is refused anyway. The table is partitioned by its month.",
				func(r *consent.Revocation) time.Time { return r.ExpiresAt }),
			boolCol("erase", "1 if erasure of the consent's rows was asked, else 0.",
				func(r *consent.Revocation) bool { return r.Erase }),
			uint32Col("version", "4294967295 minus revoked_at in Unix seconds: merges keep the row with the highest version, the first revocation.",
				func(r *consent.Revocation) uint32 { return revocationVersion(r.RevokedAt) }),
		})
}

// erasuresTable returns the definition of the erasures table in database.
func erasuresTable(database string) *rowTable[erasureRow] {
	return newRowTable(database,
		&tableDef{
			name:      TableErasures,
			comment:   "Audit log of erasures (Client.Erase): one row per event table and erasure, with the number of rows deleted; no payload.",
			engine:    "MergeTree",
			day:       "erased_at",
			monthly:   true,
			orderBy:   []string{"app_id", "erased_at"},
			retention: DefaultAuditRetentionDays,
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[erasureRow]{
			timeCol("erased_at", "When the deletion was complete (UTC); the table is partitioned by its month.",
				func(r *erasureRow) time.Time { return r.erasedAt }),
			lowCardCol("app_id", "App whose rows were erased.",
				func(r *erasureRow) string { return r.app }),
			stringCol("consent_key", "Keyed pseudonym of the consent whose rows were erased, as the event tables stored it in consent_key.",
				func(r *erasureRow) string { return r.consentKey }),
			lowCardCol("table_name", "Event table the rows were deleted from.",
				func(r *erasureRow) string { return r.table }),
			uint64Col("rows", "Rows deleted from table_name; 0 when it held none.",
				func(r *erasureRow) uint64 { return r.rows }),
		})
}

// revocationVersion is the version column of a revocation: later
// revocations get lower versions. revokedAt must be a DateTime (see
// checkDateTime).
func revocationVersion(revokedAt time.Time) uint32 {
	return uint32(math.MaxUint32 - revokedAt.Unix())
}
