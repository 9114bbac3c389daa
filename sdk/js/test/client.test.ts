import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Consentry, ConsentryError, MemoryStorage, type Config } from "../src/index.js";
import { ConsentState, DropReason } from "../src/gen/consentry/v1/ingest_pb.js";
import { CountingStorage, FakeCollector, QuotaStorage, config, waitFor, type Answer } from "./fake.js";

async function granted(fake: FakeCollector, storage = new MemoryStorage(), more: Partial<Config> = {}) {
  const c = await Consentry.open(config(fake, storage, more));
  await c.grantConsent(["analytics", "crash_reports"]);
  return c;
}

/** offline returns a client of a fake collector, granted consent, with the collector then unreachable. */
async function offline(more: Partial<Config> = {}) {
  const fake = new FakeCollector();
  const storage = new MemoryStorage();
  const c = await granted(fake, storage, more);
  fake.offline = true;
  return { fake, storage, c };
}

/**
 * keptThrough checks that a queued event survives the collector's answer
 * to its first send: the flush fails as unavailable (and as failedWith
 * says), the event stays queued, and the next flush delivers it.
 */
async function keptThrough(answer: Answer, more: Partial<Config> = {}, failedWith: RegExp = /./) {
  const fake = new FakeCollector();
  const c = await granted(fake, new MemoryStorage(), more);
  await c.recordCustom("a");
  fake.ingestAnswers = [answer];
  await assert.rejects(c.flush(), (err: unknown) => err instanceof ConsentryError && err.kind === "unavailable" && failedWith.test(err.message));
  assert.equal(c.stats().queued, 1);
  await c.flush();
  assert.equal(fake.events().length, 1);
  await c.close();
}

function rejectsWith(kind: string) {
  return (err: unknown) => err instanceof ConsentryError && err.kind === kind;
}

/** plaintextIn reports whether needle appears in storage, as is or in any base64 value decoded. */
function plaintextIn(storage: MemoryStorage, needle: string): boolean {
  for (const v of storage.items.values()) {
    if (v.includes(needle)) {
      return true;
    }
    try {
      if (Buffer.from(base64Decode(v)).includes(needle)) {
        return true;
      }
    } catch {
      // not base64
    }
  }
  return false;
}

describe("consent first", () => {
  it("records and sends nothing before consent is granted", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const c = await Consentry.open(config(fake, storage));
    await c.startSession();
    await c.recordGesture("tap", "home");
    await c.recordCustom("export_pdf", { pages: 3 });
    await c.recordCrash(new Error("boom"));
    await c.flush();
    assert.equal(c.stats().queued, 0);
    assert.equal(fake.batches.length, 0);
    assert.deepEqual(c.consent(), { state: "none", scopes: [], expiresAtMs: 0 });
    await c.close();
  });

  it("records only the kinds its scopes cover", async () => {
    const fake = new FakeCollector();
    const c = await Consentry.open(config(fake));
    await c.grantConsent(["crash_reports"]);
    await c.recordGesture("tap", "home");
    await c.recordCrash(new Error("boom"));
    c.setLocation(48.2082, 16.3738); // no location scope: ignored
    await c.flush();
    const events = fake.events();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.payload.case, "crash");
    assert.equal(fake.batches[0]!.device?.location, undefined);
    await c.close();
  });

  it("keeps a token valid for its lifetime when the device's clock is hours ahead", async () => {
    const fake = new FakeCollector();
    fake.clockOffsetMs = -3 * 3600_000; // the collector's clock 3 h behind: its expiry is 2 h ago here
    const c = await Consentry.open(config(fake));
    const st = await c.grantConsent(["analytics"]);
    assert.equal(st.state, "granted");
    assert.ok(Math.abs(st.expiresAtMs - (Date.now() + 3600_000)) < 5000, `expires at ${st.expiresAtMs}`);
    await c.recordCustom("a");
    await c.flush();
    assert.equal(fake.events().length, 1);
    await c.close();
  });

  it("revokes the replaced token when consent is granted again", async () => {
    const fake = new FakeCollector();
    const c = await Consentry.open(config(fake));
    await c.grantConsent(["analytics", "location"]);
    c.setLocation(48.2, 16.4);
    const st = await c.grantConsent(["analytics"]); // the user withdrew location
    assert.deepEqual(st.scopes, ["analytics"]);
    await c.recordCustom("a");
    await c.flush();
    assert.deepEqual(fake.revocations.map((r) => r.consentToken), ["tok-1"]);
    assert.equal(fake.batches[0]!.consentToken, "tok-2");
    assert.equal(fake.batches[0]!.device?.location, undefined, "the location went with its scope");
    assert.equal(c.consent().state, "granted");
    await c.close();
  });

  it("refuses a wrong app key for good", async () => {
    const fake = new FakeCollector();
    const c = await Consentry.open({ ...config(fake), appKey: "ck_wrong" });
    await assert.rejects(c.grantConsent(["analytics"]), (err: unknown) => err instanceof ConsentryError && err.kind === "rejected" && err.call?.reason === "APP_UNAUTHENTICATED");
    assert.equal(c.consent().state, "none");
    await c.close();
  });
});

describe("sending", () => {
  it("sends every kind of event with the device context", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake, new MemoryStorage(), { maxBatchEvents: 100 });
    await c.startSession();
    c.recordScreenView("settings.privacy");
    await c.recordGesture("swipe", "settings.privacy", { count: 2, durationMs: 300 });
    await c.recordCustom("export_pdf", { pages: 12, ratio: 0.5, ok: true, format: "a4", big: 2n ** 40n });
    await c.recordDiagnostic("app_start", { durationMs: 830, startType: "cold", networkType: "wifi" });
    await c.recordCrash(new TypeError("cannot read x"), { handled: true, fingerprint: "sync-timeout" });
    await c.endSession();
    await c.flush();
    assert.equal(fake.batches.length, 1);
    const b = fake.batches[0]!;
    assert.equal(b.consentToken, "tok-1");
    assert.equal(b.device?.appId, "com.example.notes");
    assert.equal(b.device?.deviceModel, "Pixel 8");
    assert.equal(b.device?.locale, "de-AT");
    assert.match(b.device?.sdkVersion ?? "", /^consentry-js\//);
    assert.deepEqual(b.events.map((e) => e.payload.case), ["session", "gesture", "custom", "diagnostic", "crash", "session"]);
    const ids = new Set(b.events.map((e) => Buffer.from(e.eventId).toString("hex")));
    assert.equal(ids.size, 6, "every event has its own id");
    for (const e of b.events) {
      assert.equal(e.eventId.length, 16);
      assert.ok(e.ageMs !== undefined && e.ageMs >= 0n, "age measured on the monotonic clock");
    }
    const [start, , custom, , crash, end] = b.events;
    assert.deepEqual(start!.sessionId, end!.sessionId);
    assert.equal(end!.payload.case === "session" && end!.payload.value.phase, 2);
    assert.ok(custom!.payload.case === "custom");
    const attrs = custom!.payload.value.attributes;
    assert.deepEqual(attrs["pages"]?.value, { case: "intValue", value: 12n });
    assert.deepEqual(attrs["ratio"]?.value, { case: "doubleValue", value: 0.5 });
    assert.deepEqual(attrs["ok"]?.value, { case: "boolValue", value: true });
    assert.deepEqual(attrs["big"]?.value, { case: "intValue", value: 2n ** 40n });
    assert.ok(crash!.payload.case === "crash");
    const cr = crash!.payload.value;
    assert.equal(cr.exceptionType, "TypeError");
    assert.equal(cr.message, "cannot read x");
    assert.equal(cr.handled, true);
    assert.equal(cr.fingerprint, "sync-timeout");
    assert.ok(cr.frames.length > 0 && cr.frames[0]!.file === "client.test.js", `innermost frame is this file: ${JSON.stringify(cr.frames[0])}`);
    assert.deepEqual(cr.breadcrumbs.map((x) => x.name), ["settings.privacy", "settings.privacy", "export_pdf"]);
    assert.equal(c.stats().accepted, 6);
    await c.close();
  });

  it("sends a full batch without waiting for the flush interval, gzip-compressed", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake, new MemoryStorage(), { maxBatchEvents: 10 });
    for (let i = 0; i < 10; i++) {
      await c.recordCustom("tick", { i, padding: "x".repeat(200) });
    }
    await waitFor(() => fake.batches.length === 1);
    assert.equal(fake.batches[0]!.events.length, 10);
    assert.equal(fake.gzipped[0], true);
    await c.close();
  });

  it("splits a batch the collector refuses as too large", async () => {
    const fake = new FakeCollector();
    fake.maxEvents = 3;
    const c = await granted(fake, new MemoryStorage(), { maxBatchEvents: 10 });
    for (let i = 0; i < 9; i++) {
      await c.recordCustom("tick", { i });
    }
    await c.flush();
    assert.equal(fake.events().length, 9);
    assert.ok(fake.batches.every((b) => b.events.length <= 3));
    assert.equal(c.stats().queued, 0);
    await c.close();
  });

  it("drops a batch the collector refuses for good, and keeps one a proxy refuses", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    await c.recordCustom("a");
    fake.ingestAnswers = [{ kind: "error", status: 400, reason: "BATCH_MALFORMED" }];
    await assert.rejects(c.flush(), rejectsWith("rejected"));
    assert.equal(c.stats().queued, 0);
    assert.equal(c.stats().refused, 1);

    await c.recordCustom("b");
    fake.ingestAnswers = [{ kind: "error", status: 400, html: true }];
    await assert.rejects(c.flush(), rejectsWith("unavailable"));
    assert.equal(c.stats().queued, 1, "a proxy's 400 is not the collector's verdict");
    await c.flush();
    assert.deepEqual(fake.events().map((e) => e.payload.case === "custom" && e.payload.value.name), ["b"]);
    await c.close();
  });

  it("sends protojson when asked to", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake, new MemoryStorage(), { encoding: "json" });
    await c.recordCustom("a", { n: 1 });
    await c.flush();
    assert.equal(fake.events().length, 1);
    assert.equal(c.stats().accepted, 1);
    await c.close();
  });

  it("gives up on a request without an answer within requestTimeoutMs, and keeps the batch, without AbortSignal.timeout", async () => {
    // React Native has AbortController but no AbortSignal.timeout or .any.
    const sig = AbortSignal as unknown as Record<string, unknown>;
    const saved = { timeout: sig["timeout"], any: sig["any"] };
    delete sig["timeout"];
    delete sig["any"];
    try {
      await keptThrough({ kind: "hang" }, { requestTimeoutMs: 50 }, /no answer in 50 ms/);
    } finally {
      Object.assign(sig, saved);
    }
  });

  it("keeps the batch when a captive portal answers 200", () => keptThrough({ kind: "portal" }, {}, /not the collector's/));

  it("keeps the batch when offline", () => keptThrough({ kind: "network" }, {}, /request failed/));

  it("honours Retry-After", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    await c.recordCustom("a");
    fake.ingestAnswers = [{ kind: "error", status: 503, reason: "OVERLOADED", retryAfter: "1" }];
    await assert.rejects(c.flush(), (err: unknown) => err instanceof ConsentryError && err.call?.retryAfterMs === 1000);
    await assert.rejects(c.flush(), /asked to wait/);
    assert.equal(fake.batches.length, 0);
    await new Promise((r) => setTimeout(r, 1100));
    await c.flush();
    assert.equal(fake.batches.length, 1);
    await c.close();
  });
});

describe("offline queue", () => {
  it("keeps events across restarts until the collector takes them, with the same ids", async () => {
    const { fake, storage, c: c1 } = await offline();
    await c1.recordCustom("a");
    await c1.recordCustom("b");
    await assert.rejects(c1.flush(), rejectsWith("unavailable"));
    await c1.close();

    fake.offline = false;
    fake.ingestAnswers = [{ kind: "network" }]; // the answer is lost: sent, not acknowledged
    const c2 = await Consentry.open(config(fake, storage));
    assert.equal(c2.consent().state, "granted");
    await assert.rejects(c2.flush(), rejectsWith("unavailable"));
    await c2.flush();
    await c2.close();
    const names = fake.events().map((e) => e.payload.case === "custom" && e.payload.value.name);
    assert.deepEqual(names, ["a", "b"]);
    for (const e of fake.events()) {
      assert.equal(e.ageMs, undefined, "no monotonic age across processes");
    }
  });

  it("stores nothing in plaintext", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    fake.offline = true;
    const c = await Consentry.open(config(fake, storage));
    fake.offline = false;
    await c.grantConsent(["analytics", "crash_reports"]);
    fake.offline = true;
    await c.recordCustom("secret_event_name", { note: "secret-attribute-value" });
    await c.recordCrash(new Error("secret crash message"));
    await c.close();
    assert.ok(storage.items.size > 2);
    for (const needle of ["secret_event_name", "secret-attribute-value", "secret crash message", "tok-1", "analytics"]) {
      assert.equal(plaintextIn(storage, needle), false, `${needle} readable in storage`);
    }
  });

  it("drops the oldest events beyond maxQueueBytes", async () => {
    const { fake, c } = await offline({ maxQueueBytes: 4096, maxBatchEvents: 1 });
    for (let i = 0; i < 20; i++) {
      await c.recordCustom("tick", { i, pad: "x".repeat(400) });
    }
    const st = c.stats();
    assert.ok(st.evicted > 0 && st.queued < 20, JSON.stringify(st));
    fake.offline = false;
    await c.flush();
    assert.equal(fake.seqs().at(-1), 19, "the newest are kept");
    await c.close();
  });

  it("writes a bounded amount per event however long the queue grows", async () => {
    // An app offline for days records one event at a time. What each
    // record writes to storage must not grow with the queue: a device's
    // storage (AsyncStorage is SQLite on Android) pays for every byte.
    const fake = new FakeCollector();
    const storage = new CountingStorage();
    const c = await granted(fake, storage);
    fake.offline = true;
    const perEvent: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const before = storage.written;
      await c.recordCustom("screen_view", { i });
      perEvent.push(storage.written - before);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(perEvent.slice(0, 500));
    const late = mean(perEvent.slice(-500));
    assert.ok(late < 2 * early, `bytes written per event grew with the queue: ${early.toFixed(0)} for the first 500, ${late.toFixed(0)} for the last 500`);
    assert.ok(late < 8192, `${late.toFixed(0)} bytes written per event of ~40 bytes`);
    assert.equal(c.stats().queued, 3000);
    fake.offline = false;
    await c.flush();
    assert.deepEqual(fake.seqs(), Array.from({ length: 3000 }, (_, i) => i));
    assert.ok(fake.batches.every((b) => b.events.length <= 100), "batches stay within maxBatchEvents");
    await c.close();
  });

  it("sends events recorded during a send with the next batch, once", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    await c.recordCustom("a");
    await c.recordCustom("b");
    let answer!: () => void;
    fake.ingestAnswers = [{ kind: "wait", until: new Promise((resolve) => (answer = resolve)) }];
    const first = c.flush();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the batch of a and b is in flight
    await c.recordCustom("c");
    answer();
    await first;
    await c.flush();
    const names = fake.events().map((e) => e.payload.case === "custom" && e.payload.value.name);
    assert.deepEqual(names, ["a", "b", "c"]);
    assert.equal(c.stats().queued, 0);
    await c.close();
  });

  it("makes room by dropping its oldest events when the storage is full", async () => {
    // localStorage holds about 5 MB per origin, shared with the app; on
    // Android AsyncStorage's database is full at 6 MB. When the app's own
    // data fills it, new records must not fail while the SDK's old events
    // hold space: the oldest go, as beyond maxQueueBytes.
    const fake = new FakeCollector();
    const storage = new QuotaStorage();
    const c = await granted(fake, storage, { maxBatchEvents: 10 });
    fake.offline = true;
    for (let i = 0; i < 200; i++) {
      await c.recordCustom("tick", { i });
    }
    storage.limit = storage.used() + 2000; // the app filled the rest
    for (let i = 200; i < 400; i++) {
      await c.recordCustom("tick", { i }); // resolves: room was made
    }
    const st = c.stats();
    assert.ok(st.evicted > 0, JSON.stringify(st));
    assert.equal(st.recorded, 400);
    fake.offline = false;
    await c.flush();
    const got = fake.seqs();
    assert.equal(got.at(-1), 399, "the newest are kept");
    assert.equal(got.length + st.evicted, 400, "every event sent or counted as dropped");
    await c.close();
  });

  it("makes room in its only segment when the storage is full", async () => {
    // A queue that fits in one segment (up to 32 events or 16 KiB) can
    // only make room by rewriting that segment without its older half.
    const fake = new FakeCollector();
    const storage = new QuotaStorage();
    const c = await granted(fake, storage, { maxBatchEvents: 1000 });
    fake.offline = true;
    for (let i = 0; i < 30; i++) {
      await c.recordCustom("tick", { i });
    }
    assert.equal([...storage.items.keys()].filter((k) => k.startsWith("consentry.q.")).length, 1, "one segment");
    storage.limit = storage.used(); // the app filled the rest
    for (let i = 30; i < 300; i++) {
      await c.recordCustom("tick", { i }); // resolves: room was made
    }
    const st = c.stats();
    assert.ok(st.evicted > 0, JSON.stringify(st));
    fake.offline = false;
    await c.flush();
    const got = fake.seqs();
    assert.equal(got.at(-1), 299, "the newest are kept");
    assert.deepEqual(got, [...got].sort((a, b) => a - b), "in order");
    assert.equal(got.length + st.evicted, 300, "every event sent or counted as dropped");
    await c.close();
  });

  it("makes room for a new consent when the storage is full", async () => {
    const fake = new FakeCollector();
    fake.clockOffsetMs = 0; // tokens of a real size, JWS-shaped
    const storage = new QuotaStorage();
    const c = await granted(fake, storage, { maxBatchEvents: 10, minBackoffMs: 60_000, maxBackoffMs: 60_000 });
    fake.offline = true;
    for (let i = 0; i < 200; i++) {
      await c.recordCustom("tick", { i });
    }
    storage.limit = storage.used(); // the app filled the rest
    fake.offline = false;
    await c.grantConsent(["analytics"]); // the state grows: the old token waits to be revoked
    assert.ok(c.stats().evicted > 0, JSON.stringify(c.stats()));
    await c.close();
    storage.limit = Infinity;
    const again = await Consentry.open(config(fake, storage));
    assert.deepEqual(again.consent().scopes, ["analytics"], "the new consent was saved");
    await again.close();
  });

  it("rejects a record when the storage is full and it holds no events of its own", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const c = await granted(fake, storage);
    fake.offline = true;
    storage.setItem = () => {
      throw new DOMException("Setting the value exceeded the quota.", "QuotaExceededError");
    };
    await assert.rejects(c.recordCustom("tick"), rejectsWith("storage_full"));
    fake.offline = false;
    await assert.rejects(c.grantConsent(["analytics"]), rejectsWith("storage_full"));
    await c.close();
    // A first start on a full storage cannot keep its key or state.
    await assert.rejects(Consentry.open(config(fake, storage, { storagePrefix: "fresh." })), rejectsWith("storage_full"));
  });

  it("refuses a second client on the same storage until the first is closed", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const c1 = await Consentry.open(config(fake, storage));
    await assert.rejects(Consentry.open(config(fake, storage)), rejectsWith("storage_in_use"));
    await assert.rejects(Consentry.deleteStorage(storage), rejectsWith("storage_in_use"));
    const other = await Consentry.open(config(fake, storage, { storagePrefix: "other." }));
    await other.close();
    await c1.close();
    const c2 = await Consentry.open(config(fake, storage));
    await c2.close();
  });

  it("refuses to open state sealed under another key", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const key = new Uint8Array(32).fill(7);
    const c = await granted(fake, storage, { encryptionKey: key });
    await c.close();
    assert.equal(storage.items.has("consentry.key"), false, "a configured key is not stored");
    await assert.rejects(Consentry.open(config(fake, storage, { encryptionKey: new Uint8Array(32).fill(8) })), rejectsWith("state_unreadable"));
    const again = await Consentry.open(config(fake, storage, { encryptionKey: key }));
    assert.equal(again.consent().state, "granted");
    await again.close();
    await Consentry.deleteStorage(storage);
    assert.equal(storage.items.size, 0);
  });
});

describe("revocation", () => {
  it("purges at once, stops recording, and is delivered later when offline", async () => {
    const { fake, storage, c: c1 } = await offline();
    await c1.recordCustom("before");
    const res = await c1.revokeConsent({ erase: true });
    assert.equal(res.delivered, false);
    assert.equal(c1.consent().state, "revoked");
    assert.equal(c1.stats().queued, 0);
    assert.deepEqual([...storage.items.keys()].filter((k) => k.startsWith("consentry.q.")), [], "no segment left in storage");
    await c1.recordCustom("after");
    assert.equal(c1.stats().queued, 0);
    await c1.close();

    fake.offline = false;
    const c2 = await Consentry.open(config(fake, storage));
    await waitFor(() => fake.revocations.length === 1);
    assert.equal(fake.revocations[0]!.consentToken, "tok-1");
    assert.equal(fake.revocations[0]!.erase, true);
    assert.equal(fake.batches.length, 0, "nothing recorded under the consent was sent");
    assert.equal(c2.consent().state, "revoked");
    await c2.close();
  });

  it("ends the consent and saves the revocation on a full storage", async () => {
    // When the app's data fills the storage, the revocation must still end
    // the consent, on the device and across a restart: the purge frees the
    // queue's room for the new state; where the queue held none, the old
    // state is removed first (no stored state reads as no consent).
    for (const queued of [200, 0]) {
      const fake = new FakeCollector();
      fake.clockOffsetMs = 0; // tokens of a real size, JWS-shaped
      const storage = new QuotaStorage();
      const c = await Consentry.open(config(fake, storage, { maxBatchEvents: 10 }));
      await c.grantConsent(["analytics"]); // the revoked state is larger than the granted

      fake.offline = true;
      for (let i = 0; i < queued; i++) {
        await c.recordCustom("tick", { i });
      }
      storage.limit = storage.used(); // the app filled the rest
      const res = await c.revokeConsent({ erase: true });
      assert.equal(res.delivered, false);
      assert.equal(c.consent().state, "revoked", `${queued} queued`);
      await c.recordCustom("after");
      assert.equal(c.stats().queued, 0);
      await c.close();

      fake.offline = false;
      const c2 = await Consentry.open(config(fake, storage));
      assert.notEqual(c2.consent().state, "granted", `${queued} queued: the consent is back after a restart`);
      await c2.recordCustom("after-restart");
      await c2.flush();
      assert.equal(fake.batches.length, 0, "nothing recorded under the consent was sent");
      if (queued > 0) {
        await waitFor(() => fake.revocations.length === 1);
        assert.equal(fake.revocations[0]!.erase, true);
      }
      await c2.close();
    }
  });

  it("ends the consent on the device even when the storage fails", async () => {
    const { storage, c } = await offline();
    await c.recordCustom("before");
    const setItem = storage.setItem.bind(storage);
    storage.setItem = (key: string, value: string) => {
      if (key.endsWith("state")) {
        throw new Error("disk I/O error");
      }
      setItem(key, value);
    };
    await assert.rejects(c.revokeConsent(), /disk I\/O error/);
    assert.equal(c.consent().state, "revoked");
    await c.recordCustom("after");
    assert.equal(c.stats().queued, 0, "the queue is purged and nothing more is recorded");
    await c.close();
  });

  it("delivers a pending revocation on close", async () => {
    const { fake, c } = await offline({ closeTimeoutMs: 2000, minBackoffMs: 60_000, maxBackoffMs: 60_000 });
    assert.equal((await c.revokeConsent()).delivered, false);
    fake.offline = false;
    await c.close();
    assert.equal(fake.revocations.length, 1);
  });

  it("drops events recorded but not yet written when revoked", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    const pending = c.recordCustom("racing"); // not awaited: revoke runs before it is written
    await c.revokeConsent();
    await pending;
    await c.grantConsent(["analytics"]);
    await c.flush();
    assert.equal(fake.events().length, 0);
    assert.equal(fake.revocations.length, 1);
    await c.close();
  });

  it("ends the consent when the collector reports it revoked", async () => {
    const fake = new FakeCollector();
    const ended: string[] = [];
    const c = await granted(fake, new MemoryStorage(), { onConsentEnded: (s) => ended.push(s) });
    await c.recordCustom("a");
    await c.recordCustom("b");
    fake.ingestAnswers = [{ kind: "respond", resp: { accepted: 0, dropped: 2, drops: [{ reason: DropReason.CONSENT_REVOKED, count: 2 }], consentState: ConsentState.REVOKED } }];
    await assert.rejects(c.flush(), rejectsWith("consent_ended"));
    assert.deepEqual(ended, ["revoked"]);
    assert.equal(c.consent().state, "revoked");
    assert.equal(c.stats().queued, 0);
    await c.recordCustom("c");
    assert.equal(c.stats().queued, 0);
    await c.close();
  });
});

describe("location", () => {
  it("rounds coordinates to one decimal and sends them only with the location scope", async () => {
    const fake = new FakeCollector();
    const c = await Consentry.open(config(fake));
    await c.grantConsent(["analytics", "location"]);
    c.setLocation(48.2082, -0.04);
    await c.recordCustom("a");
    await c.flush();
    const loc = fake.batches[0]!.device?.location;
    assert.equal(loc?.latitude, 48.2);
    assert.ok(Object.is(loc?.longitude, 0), "no negative zero");
    assert.throws(() => c.setLocation(91, 0), rejectsWith("invalid_argument"));
    await c.close();
  });
});

describe("arguments", () => {
  const cases: [string, (c: Consentry) => Promise<unknown> | unknown][] = [
    ["unknown gesture", (c) => c.recordGesture("poke" as never, "home")],
    ["screen with free text", (c) => c.recordGesture("tap", "home?user=alice@example.com")],
    ["negative count", (c) => c.recordGesture("tap", "home", { count: -1 })],
    ["event name with a space", (c) => c.recordCustom("export pdf")],
    ["attribute NaN", (c) => c.recordCustom("a", { x: NaN })],
    ["attribute object", (c) => c.recordCustom("a", { x: {} as never })],
    ["too many attributes", (c) => c.recordCustom("a", Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])))],
    ["unknown diagnostic", (c) => c.recordDiagnostic("slow" as never)],
    ["unknown app state", (c) => c.recordCrash(new Error("x"), { appState: "asleep" as never })],
    ["unknown scope", (c) => c.grantConsent(["everything" as never])],
    ["no scope", (c) => c.grantConsent([])],
  ];
  for (const [name, call] of cases) {
    it(`refuses ${name}`, async () => {
      const fake = new FakeCollector();
      const c = await granted(fake);
      await assert.rejects(async () => call(c), rejectsWith("invalid_argument"));
      assert.equal(c.stats().queued, 0);
      await c.close();
    });
  }
});

describe("config", () => {
  const cases: [string, Partial<Config>][] = [
    ["plain http to a remote host", { endpoint: "http://collector.example.com" }],
    ["an endpoint with a query", { endpoint: "https://collector.example.com/?k=v" }],
    ["a malformed app id", { appId: "-notes" }],
    ["no app key", { appKey: "" }],
    ["no consent text version", { consentTextVersion: "" }],
    ["a short key", { encryptionKey: new Uint8Array(16) }],
    ["a batch over the collector's limit", { maxBatchEvents: 1001 }],
    ["an unknown device class", { deviceClass: "fridge" as never }],
    ["backoff bounds crossed", { minBackoffMs: 10, maxBackoffMs: 5 }],
    ["a device model over the collector's limit", { deviceModel: "x".repeat(257) }],
    ["an app version over the collector's limit", { appVersion: "é".repeat(129) }],
    ["an unknown encoding", { encoding: "xml" as never }],
  ];
  for (const [name, change] of cases) {
    it(`refuses ${name}`, async () => {
      await assert.rejects(Consentry.open({ ...config(new FakeCollector()), ...change }), rejectsWith("invalid_config"));
    });
  }
  it("takes http to a loopback host", async () => {
    const c = await Consentry.open({ ...config(new FakeCollector()), endpoint: "http://127.0.0.1:8080" });
    await c.close();
  });
});

describe("uncaught errors", () => {
  it("records a fatal React Native error before the app's handler ends it", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    const calls: string[] = [];
    let handler = (_e: unknown, fatal?: boolean) => void calls.push(`default fatal=${fatal}`);
    const g = globalThis as { ErrorUtils?: unknown };
    g.ErrorUtils = { getGlobalHandler: () => handler, setGlobalHandler: (h: typeof handler) => (handler = h) };
    try {
      const uninstall = c.captureUncaughtErrors();
      handler(new RangeError("fatal one"), true);
      assert.deepEqual(calls, [], "the default handler waits for the crash to be stored");
      await waitFor(() => calls.length === 1);
      assert.equal(c.stats().queued, 1, "stored before the app ends");
      uninstall();
      handler(new Error("after uninstall"), false);
      assert.equal(calls.length, 2);
      await c.flush();
      const crash = fake.events()[0]!.payload;
      assert.ok(crash.case === "crash");
      assert.equal(crash.value.exceptionType, "RangeError");
      assert.equal(crash.value.handled, false);
      assert.equal(fake.events().length, 1);
    } finally {
      delete g.ErrorUtils;
      await c.close();
    }
  });

  it("records a page's uncaught errors and rejections", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    const target = new EventTarget();
    const uninstall = c.captureUncaughtErrors({ target });
    target.dispatchEvent(Object.assign(new Event("error"), { error: new TypeError("x is undefined") }));
    target.dispatchEvent(Object.assign(new Event("unhandledrejection"), { reason: new Error("fetch failed") }));
    uninstall();
    target.dispatchEvent(Object.assign(new Event("error"), { error: new Error("not captured") }));
    await waitFor(() => c.stats().queued === 2);
    await c.flush();
    assert.deepEqual(fake.events().map((e) => e.payload.case === "crash" && e.payload.value.message), ["x is undefined", "fetch failed"]);
    await c.close();
  });
});

describe("sessions from the app's state", () => {
  it("starts a session in the foreground and ends it in the background", async () => {
    const fake = new FakeCollector();
    const c = await granted(fake);
    const listeners: ((s: string) => void)[] = [];
    const appState = {
      currentState: "active",
      addEventListener: (_: "change", l: (s: string) => void) => {
        listeners.push(l);
        return { remove: () => listeners.splice(listeners.indexOf(l), 1) };
      },
    };
    const stop = c.trackSessions(appState);
    await new Promise((r) => setTimeout(r, 20));
    listeners.forEach((l) => l("background"));
    await new Promise((r) => setTimeout(r, 20));
    listeners.forEach((l) => l("active"));
    await new Promise((r) => setTimeout(r, 20));
    stop();
    assert.equal(listeners.length, 0, "unsubscribed");
    await c.flush();
    const phases = fake.events().map((e) => (e.payload.case === "session" ? e.payload.value.phase : -1));
    assert.deepEqual(phases, [1, 2, 1], "start, end, start");
    const ids = fake.events().map((e) => Buffer.from(e.sessionId).toString("hex"));
    assert.equal(ids[0], ids[1]);
    assert.notEqual(ids[1], ids[2], "a new session after the background");
    await c.close();
  });

  it("starts the session when the user opts in with the app in front", async () => {
    const fake = new FakeCollector();
    const c = await Consentry.open(config(fake));
    c.trackSessions({ currentState: "active", addEventListener: () => ({ remove: () => undefined }) });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.stats().queued, 0, "no consent yet: nothing recorded");
    await c.grantConsent(["analytics"]);
    await c.flush();
    assert.deepEqual(fake.events().map((e) => e.payload.case), ["session"]);
    await c.close();
  });
});
