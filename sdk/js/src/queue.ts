import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import type { Storage } from "./storage.js";
import type { Sealer } from "./seal.js";

/** One queued event. */
export interface QueuedEvent {
  /** The encoded consentry.v1.Event. */
  event: Uint8Array;
  /** When it was recorded, on the process's monotonic clock (ms). */
  mono: number;
  /** The process that recorded it: mono is comparable only within it. */
  proc: string;
}

/** A segment's entry in the queue's index. */
export interface Segment {
  id: number;
  /** Events in it. */
  n: number;
  /** Encoded event bytes in it. */
  bytes: number;
  /** The consent epoch whose data key sealed it. */
  epoch: number;
}

interface Index {
  v: 1;
  next: number;
  segs: Segment[];
}

/** How large a segment may grow by appending to it. */
export interface SegmentLimits {
  /** Events in one segment: at most a batch's worth, since a batch holds whole segments. */
  maxEvents: number;
  /** Encoded event bytes in one segment. */
  maxBytes: number;
}

/** The segment last written by this process, still open for appends (its epoch is its index entry's). */
interface Tail {
  id: number;
  events: QueuedEvent[];
}

/** The label a segment is sealed under. */
const SEGMENT_LABEL = "consentry.queue.v1";

/**
 * Queue is the offline queue: events in sealed segments, one storage item
 * each, oldest first, under an index item that lists them. A segment is
 * written before the index names it, so a crash in between leaves at most
 * an unnamed segment, which open removes. Callers serialize every call.
 *
 * Events appended a few at a time (an app offline for days records one
 * per screen) go into the last segment until it reaches the limits: the
 * segment is rewritten whole, in place, with the new events after the
 * old ones, so what one append writes is bounded by the limits, not by
 * the queue. The index is not rewritten for such an append (it would
 * grow with the queue): its count of the last segment is updated in
 * memory and written with the next change to the index; after a crash
 * recount reads the last segment for its true count. A segment handed
 * out by head is never appended to again: what is sent is what is
 * removed.
 */
export class Queue {
  private tail: Tail | null = null;
  /** The newest segment head handed out: it and those before it are closed to appends. */
  private handedOut = 0;

  private constructor(
    private readonly storage: Storage,
    private readonly prefix: string,
    private readonly limits: SegmentLimits,
    private index: Index,
  ) {}

  /**
   * open loads the queue's index; an unreadable index starts an empty
   * queue. Segments grow by appends up to limits; without limits every
   * append is a segment of its own.
   */
  static async open(
    storage: Storage,
    prefix: string,
    limits: SegmentLimits = { maxEvents: 1, maxBytes: 0 },
  ): Promise<{ queue: Queue; lost: number }> {
    let index: Index = { v: 1, next: 1, segs: [] };
    let lost = 0;
    const raw = await storage.getItem(prefix + "queue");
    if (raw !== null) {
      try {
        const parsed = JSON.parse(raw) as Index;
        if (parsed.v !== 1 || !Array.isArray(parsed.segs) || !Number.isSafeInteger(parsed.next)) {
          throw new Error("bad index");
        }
        index = parsed;
      } catch {
        lost = -1; // unknown: the index is gone
      }
    }
    const q = new Queue(storage, prefix, limits, index);
    // A segment written just before a crash, not yet in the index.
    await storage.removeItem(q.key(index.next));
    return { queue: q, lost };
  }

  /** events is the number of queued events. */
  get events(): number {
    return this.index.segs.reduce((n, s) => n + s.n, 0);
  }

  /** bytes is the queued events' encoded size. */
  get bytes(): number {
    return this.index.segs.reduce((n, s) => n + s.bytes, 0);
  }

  /** segments returns the index, oldest first. */
  get segments(): readonly Segment[] {
    return this.index.segs;
  }

  /**
   * append writes events sealed with the epoch's key: into the last
   * segment while it has room under the limits and was written by this
   * process, else as a new segment.
   */
  async append(events: QueuedEvent[], epoch: number, sealer: Sealer): Promise<void> {
    if (events.length === 0) {
      return;
    }
    const bytes = sumBytes(events);
    const last = this.index.segs.at(-1);
    const tail = this.tail;
    this.tail = null; // until the writes below are done: a failed one leaves the segment unknown
    if (
      tail !== null &&
      last !== undefined &&
      last.id === tail.id &&
      last.id > this.handedOut &&
      last.epoch === epoch &&
      last.n + events.length <= this.limits.maxEvents &&
      last.bytes + bytes <= this.limits.maxBytes
    ) {
      const merged = tail.events.concat(events);
      await this.storage.setItem(this.key(last.id), await seal(merged, sealer));
      this.index.segs[this.index.segs.length - 1] = { ...last, n: merged.length, bytes: last.bytes + bytes };
      this.tail = { id: last.id, events: merged };
      return;
    }
    const id = this.index.next;
    await this.storage.setItem(this.key(id), await seal(events, sealer));
    await this.writeIndex({ v: 1, next: id + 1, segs: [...this.index.segs, { id, n: events.length, bytes, epoch }] });
    this.tail = { id, events };
  }

  /**
   * recount reads the last segment, if sealed with the epoch's key, and
   * takes its count of events and bytes for the index's: after a crash
   * the index can count fewer than it holds.
   */
  async recount(epoch: number, sealer: Sealer): Promise<void> {
    const last = this.index.segs.at(-1);
    if (last === undefined || last.epoch !== epoch) {
      return;
    }
    const got = await this.read(last, sealer);
    if (got !== null && got.length !== last.n) {
      this.index.segs[this.index.segs.length - 1] = { ...last, n: got.length, bytes: sumBytes(got) };
    }
  }

  /**
   * head returns the segments of the next batch: at least one, then as
   * many whole segments as fit. None of them is appended to afterwards.
   */
  head(maxEvents: number, maxBytes: number): Segment[] {
    const out: Segment[] = [];
    let n = 0;
    let bytes = 0;
    for (const s of this.index.segs) {
      if (out.length > 0 && (n + s.n > maxEvents || bytes + s.bytes > maxBytes)) {
        break;
      }
      out.push(s);
      n += s.n;
      bytes += s.bytes;
    }
    const newest = out.at(-1);
    if (newest !== undefined && newest.id > this.handedOut) {
      this.handedOut = newest.id;
    }
    return out;
  }

  /** read returns a segment's events, or null if it is missing or cannot be decrypted. */
  async read(seg: Segment, sealer: Sealer): Promise<QueuedEvent[] | null> {
    const raw = await this.storage.getItem(this.key(seg.id));
    if (raw === null) {
      return null;
    }
    try {
      const body = JSON.parse(new TextDecoder().decode(await sealer.open(SEGMENT_LABEL, raw))) as {
        p: string;
        m: number[];
        e: string[];
      };
      return body.e.map((e, i) => {
        const mono = body.m[i] ?? -1;
        return { event: base64Decode(e), mono, proc: mono < 0 ? "" : body.p };
      });
    } catch {
      return null;
    }
  }

  /** remove drops segments: from the index first, then their items. */
  async remove(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) {
      return;
    }
    const drop = new Set(ids);
    if (this.tail !== null && drop.has(this.tail.id)) {
      this.tail = null;
    }
    await this.writeIndex({ ...this.index, segs: this.index.segs.filter((s) => !drop.has(s.id)) });
    for (const id of ids) {
      await this.storage.removeItem(this.key(id));
    }
  }

  /** evict drops the oldest segments until at most maxBytes are queued, and returns the events dropped. */
  async evict(maxBytes: number): Promise<number> {
    let bytes = this.bytes;
    const drop: Segment[] = [];
    for (const s of this.index.segs) {
      if (bytes <= maxBytes || this.index.segs.length - drop.length <= 1) {
        break;
      }
      drop.push(s);
      bytes -= s.bytes;
    }
    await this.remove(drop.map((s) => s.id));
    return drop.reduce((n, s) => n + s.n, 0);
  }

  /**
   * makeRoom frees storage after a write failed for a full storage, and
   * returns the events it dropped (0: nothing could go). It drops the
   * oldest segments until half the queued bytes are gone; when only one
   * is left and this process is appending to it, it rewrites that one
   * without its older half (a value replaced by a shorter one frees the
   * difference).
   */
  async makeRoom(sealer: Sealer): Promise<number> {
    if (this.index.segs.length > 1) {
      return this.evict(Math.floor(this.bytes / 2));
    }
    const last = this.index.segs.at(-1);
    if (last === undefined || last.id <= this.handedOut) {
      return 0; // empty, or being sent: removed once sent
    }
    // The failed write left the segment as it was (a storage's setItem
    // replaces a value whole or not at all), but this.tail unknown.
    const events = this.tail?.id === last.id ? this.tail.events : await this.read(last, sealer);
    if (events === null) {
      return 0;
    }
    const keep = events.slice(Math.ceil(events.length / 2));
    if (keep.length === 0) {
      await this.remove([last.id]);
      return events.length;
    }
    this.tail = null; // until the write is done
    await this.storage.setItem(this.key(last.id), await seal(keep, sealer));
    this.index.segs[this.index.segs.length - 1] = { ...last, n: keep.length, bytes: sumBytes(keep) };
    this.tail = { id: last.id, events: keep };
    return events.length - keep.length;
  }

  /** purge drops every segment. */
  async purge(): Promise<void> {
    await this.remove(this.index.segs.map((s) => s.id));
  }

  private key(id: number): string {
    return `${this.prefix}q.${id}`;
  }

  private async writeIndex(next: Index): Promise<void> {
    await this.storage.setItem(this.prefix + "queue", JSON.stringify(next));
    this.index = next;
  }
}

/** seal encodes events as a segment's body and seals it. */
async function seal(events: QueuedEvent[], sealer: Sealer): Promise<string> {
  const proc = events[0]!.proc;
  const body = JSON.stringify({
    p: proc,
    m: events.map((e) => (e.proc === proc ? e.mono : -1)),
    e: events.map((e) => base64Encode(e.event)),
  });
  return sealer.seal(SEGMENT_LABEL, new TextEncoder().encode(body));
}

function sumBytes(events: readonly QueuedEvent[]): number {
  return events.reduce((n, e) => n + e.event.length, 0);
}
