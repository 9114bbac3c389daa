// Package spool is a local write-ahead spool in front of ClickHouse, so a
// batch the collector accepted is never lost: Write (the pipeline.Sink)
// appends the batch's rows, with its origin, to a segment file and returns
// only once they are fsynced, so the collector acknowledges durable data
// only; a shipper goroutine checks each record's consent again (a Gate),
// inserts the records into ClickHouse through an Inserter and advances a
// checkpoint; the spool is replayed on Open. Write refuses (ErrFull, which
// wraps pipeline.ErrOverloaded) once the unshipped bytes would exceed
// Config.MaxBytes, or (ErrDiskFull, which wraps ErrFull) the free space on
// the spool's volume would fall below Config.ReserveBytes; Accepting says
// ahead of a Write whether it would be refused, and why.
//
// # On-disk format
//
// Config.Dir holds:
//
//   - LOCK: flock'ed while a Spool has the directory open.
//   - 00000000000000000001.seg, …: segment files, named by a 20-digit
//     segment number that only grows. Records are appended to the last
//     (active) segment; beyond Config.SegmentBytes a new one is started.
//     Fully shipped segments are deleted, and the shipped part of the
//     segment being shipped is punched out (see Full disk below).
//   - checkpoint: the shipper's progress, in two slots overwritten in
//     place.
//
// All integers are little-endian; checksums are CRC-32C (Castagnoli).
// This describes format version 2; version 1 (the release before) is
// described at the end.
//
// A segment starts with a 48-byte header: magic "CSPS", version u16 (2),
// flags u16, segment number u64, sequence number of its first record u64,
// first row u64 (rows written to the spool before the segment), a random
// 8-byte frame key, reserved u32, and the CRC of those 44 bytes. Records
// follow back to back.
//
// A record is one Write: a 48-byte header and the payload.
//
//	offset  size  field
//	 0      4     magic C5 53 52 9A
//	 4      4     payload length
//	 8      4     rows (events) in the record
//	12      4     payload CRC
//	16      8     sequence number
//	24      8     first row: rows written to the spool before this record
//	32      8     write time, Unix nanoseconds
//	40      4     reserved (0)
//	44      4     header CRC: CRC-32C over the segment's frame key, then bytes 0–43
//
// Sequence numbers are global, consecutive and never reused; so are rows
// (record n+1's first row is record n's first row plus its rows). The
// header has its own CRC, so a damaged payload leaves its extent and row
// count trustworthy; seeding it with the segment's random key means bytes
// that only look like a record header — inside an app's crash message, or
// left over from another segment — do not verify.
//
// The payload is the batch's origin, then its rows. The origin is a flags
// byte (bit 0: a 32-byte consent hash follows; bit 1: a uvarint-length
// consent key follows), those fields, and the receive time (varint Unix
// seconds, uvarint nanoseconds). It is only for the Gate: it stays in the
// spool until the record is shipped and never reaches the Inserter. The
// rows are a versioned, compact binary encoding of pipeline.Rows
// (codec.go): a version byte, per-table slice tags that keep nil apart
// from empty, then every field of every row, strings interned per record,
// the columns a batch's rows share (app, versions, device, locale, region,
// consent key) once and a byte for each row that repeats them, times as
// Unix seconds and nanoseconds (decoded in UTC, to the nanosecond; a
// location and monotonic reading are not kept), floats as their IEEE-754
// bits. Its version (4, with shared columns written once) moves
// independently of the segment format's: payloads of versions 1 (without
// member keys), 2 (without breadcrumbs) and 3 (shared columns on every
// row) still decode.
//
// The checkpoint file is 1024 bytes: two 512-byte slots, each holding (76
// bytes) magic "CSPC", version u16 (2), flags u16 (bit 0: intent), a
// generation u64, the spool id (16 random bytes drawn when the directory
// is first used), shipped — every record below it is stored, or was lost
// to damage or refused by the Gate —, the row and position (segment,
// offset) of record shipped, an intent end, and a CRC. A write goes to the
// slot of the older generation (generation g to slot g mod 2), in place,
// followed by an fsync of the file; on open the valid slot with the
// highest generation wins. So a crash or torn write during a checkpoint
// leaves the previous one, and writing one needs no free space: the
// file's blocks were allocated when it was created.
//
// Version 1, read only: a 32-byte segment header (magic, version 1,
// flags, number, first sequence, reserved u32, CRC) and records with a
// 24-byte header — payload length u32, CRC u32 over the payload then the
// length, sequence and time, sequence u64, write time i64 — whose payload
// is the rows alone; a 60-byte checkpoint file (magic, version 1, flags,
// spool id, shipped, position, intent end, CRC) replaced by
// write-and-rename. A version 1 spool is replayed as it is: its intent is
// redone with its token, its records ship (as received when written,
// having no origin), new records go to a new version 2 segment, and its
// checkpoint is rewritten as version 2 in place (into slot 1, within the
// file's first block).
//
// # Guarantees
//
// Durability: Write returns nil only after the fsync that covers its record
// (and, when it starts a segment, the directory entry) succeeded. Writes
// append under a lock; one goroutine syncs, and each sync covers every
// record appended before it started, so concurrent Writes share fsyncs
// (group commit; Config.CommitDelay can widen the window). When appending
// or syncing fails, the segment is truncated back to its last durable
// record, the Writes concerned get the error, and later Writes work once
// the disk works again.
//
// Exactly once: the shipper reads records after the checkpoint in order,
// streaming (one 256 KiB chunk and one record at a time), and combines
// consecutive records into batches of up to Config.MaxBatchRows rows.
// While the shipper keeps up, batches are inserted under a
// pipeline.Unhurried context, so that the Inserter spreads its work out
// instead of competing with the Writes being acknowledged; a backlog (a
// batch cut at MaxBatchRows after another one was), a redo and the drain
// on Close go at full speed. Before inserting records [a, b) it durably writes the intent (a, b) to
// the checkpoint, then inserts with the deduplication token
// "<spool id>:<a>:<b>", then advances the checkpoint to b. After a crash,
// an intent found on Open is redone with exactly that range and token, so
// an Inserter that deduplicates by token (ClickHouse's
// insert_deduplication_token) stores every record once; without
// deduplication a record may be stored twice, but only by inserts with the
// same token whose rows are the same or fewer. Insert errors are retried
// with capped exponential backoff and jitter, forever: no record is
// dropped because ClickHouse is unavailable (Write refuses instead once
// the spool is full).
//
// Consent at ship time: with a Config.Gate, before a record joins a batch
// the shipper waits until the gate's horizon (the time up to which it
// knows every revocation and erasure) has passed the record's receive
// time — it ships the records it already gathered first, then polls every
// 10 ms, backing off to 250 ms — and then asks Gate.Admit. A refused
// record is not inserted; it is counted (Stats.GateDroppedRecords and
// GateDroppedEvents) and the checkpoint passes it like a stored one. So a
// consent revoked while ClickHouse was away stores nothing received after
// its revocation, although the collector accepted it with stale
// revocations, and no record ships before the gate has loaded
// revocations. A redone intent asks the gate again and keeps its token
// even if the gate now refuses more of its range: if ClickHouse stored the
// first insert it drops the repeat by its token, and what the first insert
// stored was admissible when it was made (a later revocation does not
// cover rows received before it; a later erasure deletes them itself); if
// it did not, only what the gate admits now is stored. Version 1 records
// have no origin: the gate sees a zero consent, received when written.
//
// Full disk: Write measures the free space on the spool's volume (statfs,
// reused for at most a second, less what was appended since, and measured
// afresh whenever the result nears the reserve) rather than trust
// MaxBytes, and refuses with ErrDiskFull when the record would leave less
// than the reserve (Config.ReserveBytes; by default a sixteenth of the
// volume, at most SegmentBytes), before writing anything. A volume that
// fills anyway (another process) makes the append fail with ENOSPC, which
// Write also reports as ErrDiskFull after truncating. Shipping goes on
// meanwhile and needs no free space: checkpoints are written in place,
// and the shipped part of the segment being shipped is given back to the
// volume without waiting for the segment to fill — after each batch the
// shipper punches out (fallocate PUNCH_HOLE|KEEP_SIZE, in 4 KiB blocks,
// never the header's) what lies below the durable checkpoint, once that
// is an eighth of the reserve or 1 MiB; where the file system cannot punch
// holes, a caught-up shipper on a volume low on space starts a new segment
// so the old one can be deleted. Punched bytes are never read again: on
// Open the checkpoint's version 2 position is used as it is. So ingest is
// refused only while unshipped records fill the volume, and resumes as
// they ship. Open on a full volume works and ships (it only needs space
// for a new spool or a version upgrade).
//
// Damage: records are verified as they are read. A record whose header
// verifies but whose payload does not (a flipped payload bit) is skipped
// alone: its header says where it ends and how many events it held. Any
// other invalid bytes — a damaged header, garbage — are skipped up to the
// next record that verifies completely (magic, header CRC, payload CRC)
// and plausibly follows (its sequence and row are not below the expected
// ones, and no more records are missing than the bytes could have held);
// when none follows in the segment, the damage runs to its end, and the
// next segment's header (or, in the segment being written, a new segment
// started for the purpose) says what follows. What was lost is the gap in
// sequence numbers and rows to what follows: exact, whichever header was
// damaged. It is counted (Stats.CorruptRecords, CorruptEvents,
// CorruptBytes) and logged with the segment, offsets and counts, never
// contents; a segment whose header is damaged is removed, and its records
// are counted the same way from the gap it leaves. A record whose
// checksums hold but whose payload does not decode is counted and skipped
// alone. On Open, invalid bytes at the end of the last segment with no
// valid record after them are a torn write from a crash — never
// acknowledged — and are truncated away without counting, unless the
// checkpoint shows they were written: records below its shipped record or
// intent end were read by the shipper, so a Write acknowledged them, and
// their bytes are kept for the shipper to skip and count like any damage
// (their events unknown when no intact header says how many). Damage to
// the very last record of the spool that the checkpoint does not cover
// therefore looks like a torn write and is not counted. In version 1 segments (no row counts, and the release that
// wrote them could reuse the sequences after damage) damage skips the
// rest of the segment, and lost events are not counted. A checkpoint
// whose slots are both damaged makes Open fail rather than guess:
// removing the file makes the spool ship every remaining segment again
// (at least once); one damaged slot falls back to the other, the
// checkpoint before it, so at worst the last batch is inserted again or,
// if its bytes were already punched out, counted as lost although it was
// stored.
//
// Memory is bounded by the read chunk, one record (at most 64 MiB) and one
// batch, not by the size of the spool.
package spool
