import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Consentry, MemoryStorage, type Storage } from "../src/index.js";
import { FakeCollector, config } from "./fake.js";

/**
 * DyingStorage is storage whose process dies after a number of writes:
 * from then on every call fails and changes nothing, so what it holds is
 * what a crash at that moment would leave.
 */
class DyingStorage implements Storage {
  writes = 0;
  constructor(
    readonly inner: MemoryStorage,
    private readonly lives: number,
  ) {}

  get dead(): boolean {
    return this.writes >= this.lives;
  }

  getItem(key: string): string | null {
    if (this.dead) {
      throw new Error("process died");
    }
    return this.inner.getItem(key);
  }

  setItem(key: string, value: string): void {
    if (this.dead) {
      throw new Error("process died");
    }
    this.writes++;
    this.inner.setItem(key, value);
  }

  removeItem(key: string): void {
    if (this.dead) {
      throw new Error("process died");
    }
    this.writes++;
    this.inner.removeItem(key);
  }
}

function eventNumber(e: { payload: { case?: string; value?: unknown } }): number {
  if (e.payload.case !== "custom") {
    return -1;
  }
  const v = (e.payload.value as { attributes: Record<string, { value: { value: unknown } }> }).attributes["n"]?.value.value;
  return Number(v);
}

/** consented returns storage holding a granted consent, and its collector; the client is left open. */
async function consented() {
  const fake = new FakeCollector();
  const inner = new MemoryStorage();
  const c = await Consentry.open(config(fake, inner));
  await c.grantConsent(["analytics"]);
  return { fake, inner, c };
}

/**
 * recordThenDie checks, for each moment of death (after 1, 2, ... 60
 * writes), that a client recording events in bursts of burst and flushing
 * now and then, against a collector that sometimes fails, loses nothing:
 * a new client opens what storage holds and flushes, and every event
 * whose record resolved must have reached the collector, before the death
 * or after it, with its first id, in batches of at most maxBatchEvents.
 */
async function recordThenDie(burst: number, maxBatchEvents: number): Promise<void> {
  for (let lives = 1; lives <= 60; lives++) {
    const { fake, inner, c: setup } = await consented();
    await setup.close();

    const storage = new DyingStorage(inner, lives);
    const stored = new Set<number>();
    try {
      const c = await Consentry.open(config(fake, storage, { maxBatchEvents }));
      for (let n = 0; n < 20 && !storage.dead; n++) {
        const records = Array.from({ length: burst }, (_, k) => n * burst + k).map((i) =>
          c.recordCustom("tick", { n: i }).then(
            () => stored.add(i),
            () => undefined,
          ),
        );
        await Promise.all(records);
        if (n % 3 === 2) {
          fake.ingestAnswers = n % 2 ? [{ kind: "network" }] : [];
          await c.flush().catch(() => undefined);
        }
      }
    } catch {
      // the process died during open
    }
    // No close: the process is gone. A new one opens what is left.
    fake.ingestAnswers = [];
    const after = await Consentry.open(config(fake, inner, { maxBatchEvents }));
    await after.flush();
    await after.close();
    const delivered = new Set(fake.events().map(eventNumber));
    for (const i of stored) {
      assert.ok(delivered.has(i), `lives=${lives}: event ${i} was stored (its record resolved) and never delivered`);
    }
    for (const b of fake.batches) {
      assert.ok(b.events.length <= maxBatchEvents, `lives=${lives}: a batch of ${b.events.length} events`);
    }
    // Ids are kept with the events: a resent event has its first id.
    const ids = new Map<number, string>();
    for (const e of fake.events()) {
      const id = Buffer.from(e.eventId).toString("hex");
      const prev = ids.get(eventNumber(e));
      assert.ok(prev === undefined || prev === id, `lives=${lives}: event ${eventNumber(e)} resent with another id`);
      ids.set(eventNumber(e), id);
    }
  }
}

describe("crash consistency", () => {
  it("delivers every event whose record resolved, whenever the process dies", () => recordThenDie(3, 3));

  it("delivers every event recorded one at a time into a growing segment, whenever the process dies", () => recordThenDie(1, 4));

  it("never sends what was recorded before a revocation, whenever the process dies", async () => {
    for (let lives = 1; lives <= 12; lives++) {
      const { fake, inner, c: setup } = await consented();
      fake.offline = true;
      for (let i = 0; i < 6; i++) {
        await setup.recordCustom("before", { n: i });
      }
      await setup.close();

      const storage = new DyingStorage(inner, lives);
      let revoked = false;
      try {
        const c = await Consentry.open(config(fake, storage));
        await c.revokeConsent();
        revoked = true;
      } catch {
        // died before the revocation was kept
      }
      fake.offline = false;
      const after = await Consentry.open(config(fake, inner));
      await after.flush().catch(() => undefined);
      if (revoked) {
        assert.equal(fake.batches.length, 0, `lives=${lives}: events sent after the revocation resolved`);
        assert.equal(after.consent().state, "revoked");
        // At least once: a revocation delivered just before the death
        // is delivered again (revoking twice is fine).
        assert.ok(fake.revocations.length >= 1, `lives=${lives}: the revocation was not delivered after the restart`);
        assert.ok(fake.revocations.every((r) => r.consentToken === "tok-1"));
      }
      await after.close();
    }
  });
});
