// Damaged and lost storage values: the consent state and the generated
// key are kept twice (<prefix>state and <prefix>state.copy, <prefix>key
// and <prefix>key.copy), so that one damaged character does not lose a
// consent, or a revocation waiting to be delivered.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { webcrypto } from "node:crypto";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Consentry, ConsentryError, MemoryStorage, type Config } from "../src/index.js";
import { Sealer } from "../src/seal.js";
import { FakeCollector, config, waitFor } from "./fake.js";

/** The items that hold the consent state and the generated key, under the default prefix. */
const STATE = "consentry.state";
const STATE_COPY = "consentry.state.copy";
const KEY = "consentry.key";
const KEY_COPY = "consentry.key.copy";
const KEPT = [STATE, STATE_COPY, KEY, KEY_COPY];

/**
 * NoCopyStorage is MemoryStorage that, while failCopies is set, has no
 * room for the copies: writing a key ending in ".copy" throws
 * QuotaExceededError.
 */
class NoCopyStorage extends MemoryStorage {
  failCopies = false;
  override setItem(key: string, value: string): void {
    if (this.failCopies && key.endsWith(".copy")) {
      throw new DOMException("Setting the value exceeded the quota.", "QuotaExceededError");
    }
    super.setItem(key, value);
  }
}

function rejectsWith(kind: string) {
  return (err: unknown) => err instanceof ConsentryError && err.kind === kind;
}

/** clone returns a MemoryStorage holding the items of storage. */
function clone(storage: MemoryStorage): MemoryStorage {
  const out = new MemoryStorage();
  for (const [k, v] of storage.items) {
    out.items.set(k, v);
  }
  return out;
}

/** damage flips one bit of the character at i of the value under key. */
function damage(storage: MemoryStorage, key: string, i: number): void {
  const v = storage.items.get(key);
  assert.ok(v !== undefined, `${key} not stored`);
  storage.items.set(key, v.slice(0, i) + String.fromCharCode(v.charCodeAt(i) ^ 1) + v.slice(i + 1));
}

/** logged returns a config option that collects the client's log lines, as "level: message", into lines. */
function logged(lines: string[]): Partial<Config> {
  return { logger: (level, msg) => lines.push(`${level}: ${msg}`) };
}

describe("damaged storage", () => {
  it("opens with the consent, token and queued events after any one character of the state or key is damaged or lost, and puts it right", async () => {
    const fake = new FakeCollector();
    const pristine = new MemoryStorage();
    const c = await Consentry.open(config(fake, pristine));
    const consent = await c.grantConsent(["analytics", "crash_reports"]);
    fake.offline = true; // the events stay queued
    for (let i = 0; i < 3; i++) {
      await c.recordCustom("tick", { i });
    }
    await c.close();
    for (const k of KEPT) {
      assert.ok(pristine.items.has(k), `${k} not stored`);
    }

    /** check opens storage and checks it reads what pristine holds, logging wantLog, and is put right. */
    const check = async (what: string, storage: MemoryStorage, wantLog: string) => {
      const lines: string[] = [];
      let c: Consentry;
      try {
        c = await Consentry.open(config(fake, storage, logged(lines)));
      } catch (err) {
        assert.fail(`${what}: ${String(err)}`);
      }
      assert.deepEqual(c.consent(), consent, what);
      assert.equal(c.stats().queued, 3, `${what}: events queued`);
      await c.close();
      assert.ok(lines.some((l) => l.includes(wantLog)), `${what}: no log line says ${JSON.stringify(wantLog)}: ${JSON.stringify(lines)}`);
      for (const k of KEPT) {
        assert.equal(storage.items.get(k), pristine.items.get(k), `${what}: ${k} not put right`);
      }
    };

    let n = 0;
    for (const key of KEPT) {
      const other = key.endsWith(".copy") ? key.slice(0, -".copy".length) : key + ".copy";
      const len = pristine.items.get(key)!.length;
      for (let i = 0; i <= len; i++) {
        const storage = clone(pristine);
        let what: string;
        if (i === len) {
          what = `${key} deleted`;
          storage.removeItem(key);
          await check(what, storage, `${key} written from its copy`);
        } else {
          what = `${key} damaged at character ${i}`;
          damage(storage, key, i);
          await check(what, storage, `${key} damaged, lost or behind its copy; restored`);
        }
        // The value put right, its other copy can be lost now.
        storage.removeItem(other);
        await check(`${what}, then ${other} deleted`, storage, `${other} written from its copy`);
        // And the token is the one granted: the queued events go under it.
        fake.offline = false;
        const batches = fake.batches.length;
        const c2 = await Consentry.open(config(fake, storage));
        await c2.flush();
        await c2.close();
        fake.offline = true;
        assert.deepEqual(fake.batches.slice(batches).map((b) => [b.consentToken, b.events.length]), [["tok-1", 3]], `${what}: sent`);
        n++;
      }
    }
    assert.ok(n > 4 * 44, `${n} damaged or deleted values`);
  });

  it("delivers a revocation pending when one character of the state was damaged, with its erasure", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const c = await Consentry.open(config(fake, storage));
    await c.grantConsent(["analytics"]);
    fake.offline = true;
    await c.recordCustom("before");
    assert.equal((await c.revokeConsent({ erase: true })).delivered, false);
    await c.close();
    damage(storage, STATE, Math.floor(storage.items.get(STATE)!.length / 2));

    fake.offline = false;
    const c2 = await Consentry.open(config(fake, storage));
    await waitFor(() => fake.revocations.length === 1);
    assert.equal(fake.revocations[0]!.consentToken, "tok-1");
    assert.equal(fake.revocations[0]!.erase, true);
    assert.equal(c2.consent().state, "revoked");
    assert.equal(fake.batches.length, 0, "nothing recorded under the consent was sent");
    await c2.close();
  });

  it("reads the newer of two different saves, whichever key holds it", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const c = await Consentry.open(config(fake, storage));
    await c.grantConsent(["analytics"]);
    const older = storage.items.get(STATE)!;
    fake.offline = true; // the revocation stays pending: no save after it
    await c.revokeConsent({ erase: true });
    await c.close();
    const newer = storage.items.get(STATE)!;
    assert.notEqual(older, newer);
    assert.equal(storage.items.get(STATE_COPY), newer);

    for (const [first, second] of [
      [older, newer],
      [newer, older],
    ]) {
      const where = first === newer ? STATE : STATE_COPY;
      storage.items.set(STATE, first!);
      storage.items.set(STATE_COPY, second!);
      const lines: string[] = [];
      const c2 = await Consentry.open(config(fake, storage, logged(lines)));
      assert.equal(c2.consent().state, "revoked", `the newer save in ${where}`);
      await c2.close();
      assert.equal(storage.items.get(STATE), newer, `the newer save in ${where}: ${STATE}`);
      assert.equal(storage.items.get(STATE_COPY), newer, `the newer save in ${where}: ${STATE_COPY}`);
      assert.ok(lines.some((l) => l.startsWith("warn: ") && l.includes("behind its copy")), JSON.stringify(lines));
    }
    fake.offline = false;
    const c3 = await Consentry.open(config(fake, storage));
    await waitFor(() => fake.revocations.length === 1);
    assert.equal(fake.revocations[0]!.erase, true);
    await c3.close();
  });

  it("keeps the state from before a save whose copy cannot be written", async () => {
    const fake = new FakeCollector();
    const storage = new NoCopyStorage();
    const c = await Consentry.open(config(fake, storage));
    const before = await c.grantConsent(["analytics", "crash_reports"]);
    const stored = storage.items.get(STATE);
    storage.failCopies = true;
    await assert.rejects(c.grantConsent(["analytics"]), rejectsWith("storage_full"));
    assert.deepEqual(c.consent(), before, "the consent in memory is the one before the failed grant");
    await c.close();

    storage.failCopies = false;
    const c2 = await Consentry.open(config(fake, storage));
    assert.deepEqual(c2.consent(), before, "a grant reported failed is not back after a restart");
    await c2.recordCustom("a");
    await c2.flush();
    assert.deepEqual(fake.batches.map((b) => b.consentToken), ["tok-1"]);
    await c2.close();
    assert.equal(storage.items.get(STATE), stored);
    assert.equal(storage.items.get(STATE_COPY), stored);
  });

  it("keeps a revocation whose copy cannot be written", async () => {
    const fake = new FakeCollector();
    const storage = new NoCopyStorage();
    const lines: string[] = [];
    const c = await Consentry.open(config(fake, storage, logged(lines)));
    await c.grantConsent(["analytics"]);
    fake.offline = true;
    await c.recordCustom("before");
    storage.failCopies = true;
    assert.equal((await c.revokeConsent({ erase: true })).delivered, false);
    assert.equal(c.consent().state, "revoked");
    await c.close();
    assert.equal(storage.items.has(STATE_COPY), false, "no copy could be written");
    assert.ok(lines.some((l) => l.startsWith("warn: ") && l.includes("copy")), JSON.stringify(lines));

    storage.failCopies = false;
    fake.offline = false;
    const c2 = await Consentry.open(config(fake, storage));
    assert.equal(c2.consent().state, "revoked");
    await waitFor(() => fake.revocations.length === 1);
    assert.equal(fake.revocations[0]!.erase, true);
    await c2.close();
    assert.equal(fake.batches.length, 0, "nothing recorded under the consent was sent");
    assert.equal(storage.items.get(STATE_COPY), storage.items.get(STATE), "the copy made on the next open");
  });

  it("opens the storage of an earlier version, a state without seq and no copies, and makes the copies", async () => {
    const fake = new FakeCollector();
    const storage = new MemoryStorage();
    const c = await Consentry.open(config(fake, storage));
    const consent = await c.grantConsent(["analytics"]);
    fake.offline = true;
    await c.recordCustom("a");
    await c.recordCustom("b");
    await c.close();
    // What an earlier version stored: the state without seq, sealed once; the key once.
    const key = storage.items.get(KEY)!;
    const sealer = await Sealer.create(webcrypto as Crypto, base64Decode(key));
    const st = JSON.parse(new TextDecoder().decode(await sealer.open("consentry.state.v1", storage.items.get(STATE)!))) as Record<string, unknown>;
    delete st["seq"];
    const old = await sealer.seal("consentry.state.v1", new TextEncoder().encode(JSON.stringify(st)));
    storage.items.set(STATE, old);
    storage.items.delete(STATE_COPY);
    storage.items.delete(KEY_COPY);

    const lines: string[] = [];
    const c2 = await Consentry.open(config(fake, storage, logged(lines)));
    assert.deepEqual(c2.consent(), consent);
    assert.equal(c2.stats().queued, 2);
    await c2.close();
    assert.equal(storage.items.get(STATE), old, "the state is read as it is");
    assert.equal(storage.items.get(STATE_COPY), old, "its copy is made");
    assert.equal(storage.items.get(KEY), key);
    assert.equal(storage.items.get(KEY_COPY), key, "the key's copy is made");
    assert.ok(lines.some((l) => l.startsWith("info: ") && l.includes("written from its copy")), JSON.stringify(lines));
    assert.ok(!lines.some((l) => l.startsWith("warn: ")), JSON.stringify(lines));

    // A save from then on goes on from seq 0, and is the newer.
    fake.offline = false;
    const c3 = await Consentry.open(config(fake, storage));
    await c3.revokeConsent();
    await c3.close();
    storage.items.set(STATE, old);
    const c4 = await Consentry.open(config(fake, storage));
    assert.equal(c4.consent().state, "revoked");
    await c4.close();
  });

  it("rejects both copies damaged as state_unreadable; deleteStorage removes every item", async () => {
    for (const [what, keys] of [
      ["the state and its copy", [STATE, STATE_COPY]],
      ["the key and its copy", [KEY, KEY_COPY]],
    ] as const) {
      for (const at of ["start", "middle", "end"] as const) {
        const fake = new FakeCollector();
        const storage = new MemoryStorage();
        const c = await Consentry.open(config(fake, storage));
        await c.grantConsent(["analytics"]);
        fake.offline = true;
        await c.recordCustom("a");
        await c.close();
        for (const k of keys) {
          const len = storage.items.get(k)!.length;
          damage(storage, k, at === "start" ? 0 : at === "middle" ? len >> 1 : len - 1);
        }
        await assert.rejects(Consentry.open(config(fake, storage)), rejectsWith("state_unreadable"), `${what} damaged at the ${at}`);
        await Consentry.deleteStorage(storage);
        assert.deepEqual([...storage.items.keys()], [], `${what} damaged at the ${at}: left after deleteStorage`);
        const c2 = await Consentry.open(config(fake, storage));
        assert.equal(c2.consent().state, "none");
        await c2.close();
      }
    }
  });
});
