// Package spool is a local write-ahead spool in front of ClickHouse, so a
// batch the collector accepted is never lost: Write (the pipeline.Sink)
// appends the batch's rows to a segment file and returns only once they are
// fsynced, so the collector acknowledges durable data only; a shipper
// goroutine inserts the spooled records into ClickHouse through an
// Inserter and advances a checkpoint; the spool is replayed on Open, and
// its unshipped size is capped (Write fails with ErrFull, which wraps
// pipeline.ErrOverloaded, beyond Config.MaxBytes).
//
// # On-disk format
//
// Config.Dir holds:
//
//   - LOCK: flock'ed while a Spool has the directory open.
//   - 00000000000000000001.seg, …: segment files, named by a 20-digit
//     segment number that only grows. Records are appended to the last
//     (active) segment; beyond Config.SegmentBytes a new one is started, and
//     fully shipped segments are deleted.
//   - checkpoint: the shipper's progress, replaced atomically (write
//     checkpoint.tmp, fsync, rename, fsync the directory).
//
// All integers are little-endian; checksums are CRC-32C (Castagnoli).
//
// A segment starts with a 32-byte header: magic "CSPS", version u16 (1),
// flags u16, segment number u64, sequence number of its first record u64,
// reserved u32, and the CRC of those 28 bytes. Records follow back to back.
//
// A record is one Write: a 24-byte header — payload length u32, CRC u32,
// sequence number u64, write time in Unix nanoseconds i64 — and the
// payload. The CRC covers the payload, then the length, then the sequence
// and time. Sequence numbers are global, consecutive within a segment, and
// never reused (a segment started after damage may skip some). The payload
// is a versioned, compact binary encoding of pipeline.Rows (codec.go): a
// version byte, per-table slice tags that keep nil apart from empty, then
// every field of every row, strings interned per record, times as Unix
// seconds and nanoseconds (decoded in UTC, to the nanosecond; a location
// and monotonic reading are not kept), floats as their IEEE-754 bits.
//
// The checkpoint (60 bytes) holds magic "CSPC", version, flags, the spool
// id (16 random bytes drawn when the directory is first used), shipped —
// every record below it is stored —, the segment and offset where record
// shipped is (a hint that saves a scan), an optional intent end, and a CRC.
//
// # Guarantees
//
// Durability: Write returns nil only after the fsync that covers its record
// (and, when it starts a segment, the directory entry) succeeded. Writes
// append under a lock; one goroutine syncs, and each sync covers every
// record appended before it started, so concurrent Writes share fsyncs
// (group commit; Config.CommitDelay can widen the window). When appending
// or syncing fails (a full disk), the segment is truncated back to its last
// durable record, the Writes concerned get the error, and later Writes
// work once the disk has room again.
//
// Exactly once: the shipper reads records after the checkpoint in order,
// streaming (one 256 KiB chunk and one record at a time), and combines
// consecutive records into batches of up to Config.MaxBatchRows rows.
// Before inserting records [a, b) it durably writes the intent (a, b) to
// the checkpoint, then inserts with the deduplication token
// "<spool id>:<a>:<b>", then advances the checkpoint to b. After a crash,
// an intent found on Open is redone with exactly that range and token, so
// an Inserter that deduplicates by token (ClickHouse's
// insert_deduplication_token) stores every record once; without
// deduplication a record may be stored twice, but only by inserts with
// identical tokens and rows. Insert errors are retried with capped
// exponential backoff and jitter, forever: no record is dropped because
// ClickHouse is unavailable (Write fails with ErrFull instead once the cap
// is reached).
//
// Replay: on Open the last segment is verified record by record. A crash
// can leave a torn record at its end — incomplete, garbage or zeros, with
// no valid record after it: it was never acknowledged and is truncated
// away. An invalid record followed by a valid one (the same segment holds
// a later record with a good checksum and sequence), or an invalid record
// in any other segment — bad checksum, length or sequence — is
// corruption: it is counted (Stats.CorruptRecords, CorruptBytes), logged
// without contents, and the rest of that segment is skipped (its length
// field cannot be trusted), while later segments are shipped. A record
// whose checksum is good but whose payload does not decode is counted and
// skipped alone, since the records after it are intact. A damaged
// checkpoint makes Open fail rather than guess: removing the file makes the
// spool ship every remaining segment again (at least once).
//
// Memory is bounded by the read chunk, one record (at most 64 MiB) and one
// batch, not by the size of the spool.
package spool
