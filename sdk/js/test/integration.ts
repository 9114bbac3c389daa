// The SDK against a real collector, run by integration_test.go, which
// starts the collector over a real ClickHouse, passes its address and an
// app's id and key in JS_SDK_*, and checks the stored rows afterwards.
// Not one of the unit tests (npm test): it needs that collector.
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { describe, it } from "node:test";
import { Consentry, ConsentryError, MemoryStorage, type Config, type Fetch } from "../src/index.js";

const endpoint = process.env["JS_SDK_ENDPOINT"] ?? "";
const appId = process.env["JS_SDK_APP_ID"] ?? "";
const appKey = process.env["JS_SDK_APP_KEY"] ?? "";

/** spy is a fetch that remembers the token of the last grant and the encodings sent. */
function spy() {
  const seen = { token: "", encodings: [] as string[] };
  const f: Fetch = async (url, init) => {
    const resp = await fetch(url, init);
    if (url.endsWith("/v1/consent/grant") && resp.ok) {
      seen.token = ((await resp.clone().json()) as { consentToken: string }).consentToken;
    }
    if (url.endsWith("/v1/ingest")) {
      seen.encodings.push((init.headers as Record<string, string>)["Content-Encoding"] ?? "identity");
    }
    return resp;
  };
  return { seen, fetch: f };
}

function config(more: Partial<Config> = {}): Config {
  return {
    endpoint,
    appId,
    appKey,
    consentTextVersion: "2026-11",
    storage: new MemoryStorage(),
    appVersion: "4.12.0",
    appBuild: "4120003",
    deviceClass: "phone",
    deviceModel: "Pixel 8",
    osName: "android",
    osVersion: "15",
    locale: "de-AT-u-ca-gregory",
    flushIntervalMs: 3_600_000,
    minBackoffMs: 50,
    maxBackoffMs: 500,
    crypto: webcrypto as Crypto, // Node.js 18 has no global crypto
    ...more,
  };
}

async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
  const resp = await fetch(endpoint + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(resp.status, 200, `${path}: HTTP ${resp.status}`);
  return (await resp.json()) as Record<string, unknown>;
}

/**
 * settle waits out the collector's revocation rounding: revocation times
 * are stored in whole seconds, so batches received up to the clock skew
 * plus one second before a revocation may be dropped with it
 * (docs/consent.md). The test's collector allows 10 ms of skew.
 */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 1100));
}

describe("against a real collector", () => {
  it("is configured", () => {
    assert.ok(endpoint && appId && appKey, "JS_SDK_ENDPOINT, JS_SDK_APP_ID and JS_SDK_APP_KEY must be set");
  });

  it("stores every kind of event the user consented to", async () => {
    const c = await Consentry.open(config());
    await c.grantConsent(["analytics", "crash_reports", "location"]);
    c.setLocation(48.2082, 16.3738); // Vienna: stored as AT, AT-9
    await c.startSession();
    c.recordScreenView("settings.privacy");
    await c.recordGesture("tap", "settings.privacy", { count: 2 });
    await c.recordCustom("export_pdf", { pages: 12, ratio: 0.5, pdfa: true, contact: "alice@example.com" });
    await c.recordDiagnostic("app_start", { durationMs: 830, startType: "cold", networkType: "wifi" });
    await c.recordCrash(new Error("sync failed for alice@example.com from 203.0.113.7"), { handled: true });
    await c.endSession();
    await c.flush();
    const st = c.stats();
    assert.equal(st.accepted, 6, JSON.stringify(st));
    assert.equal(st.droppedByCollector, 0, JSON.stringify(st));
    assert.equal(st.queued, 0);
    await c.close();
  });

  it("sends large batches gzip-compressed", async () => {
    const s = spy();
    const c = await Consentry.open(config({ fetch: s.fetch, maxBatchEvents: 1000 }));
    await c.grantConsent(["analytics"]);
    for (let i = 0; i < 50; i++) {
      await c.recordCustom("padded", { i, note: "n".repeat(100) });
    }
    await c.flush();
    assert.equal(c.stats().accepted, 50);
    assert.deepEqual(s.seen.encodings, ["gzip"]);
    await c.close();
  });

  it("sends protojson when asked to", async () => {
    const c = await Consentry.open(config({ encoding: "json" }));
    await c.grantConsent(["analytics"]);
    await c.recordCustom("json_encoded", { n: 1 });
    await c.flush();
    assert.equal(c.stats().accepted, 1);
    await c.close();
  });

  it("revokes the replaced token when the user changes their choice", async () => {
    const s = spy();
    const c = await Consentry.open(config({ fetch: s.fetch }));
    await c.grantConsent(["analytics", "crash_reports"]);
    const first = s.seen.token;
    await c.grantConsent(["analytics"]);
    const second = s.seen.token;
    await c.flush(); // delivers the pending revocation
    assert.notEqual(first, second);
    assert.equal((await post("/v1/consent/status", { consentToken: first }))["state"], "CONSENT_STATE_REVOKED");
    assert.equal((await post("/v1/consent/status", { consentToken: second }))["state"], "CONSENT_STATE_VALID");
    await c.close();
  });

  it("revokes from the consent toggle", async () => {
    const s = spy();
    const c = await Consentry.open(config({ fetch: s.fetch }));
    await c.grantConsent(["analytics"]);
    await c.recordCustom("before_toggle");
    await c.flush();
    await settle();
    const res = await c.revokeConsent();
    assert.equal(res.delivered, true);
    assert.ok((res.propagationBoundMs ?? 0) > 0);
    await c.recordCustom("after_toggle"); // not recorded
    await c.flush();
    assert.equal(c.stats().queued, 0);
    const status = await post("/v1/consent/status", { consentToken: s.seen.token });
    assert.equal(status["state"], "CONSENT_STATE_REVOKED");
    await c.close();
  });

  it("stops when the consent is revoked elsewhere", async () => {
    const s = spy();
    const ended: string[] = [];
    const c = await Consentry.open(config({ fetch: s.fetch, onConsentEnded: (st) => ended.push(st) }));
    await c.grantConsent(["analytics"]);
    await c.recordCustom("before_revoke");
    await c.flush();
    await settle();
    // The user withdraws consent on the app's web consent page.
    await post("/v1/consent/revoke", { consentToken: s.seen.token });
    await c.recordCustom("after_revoke");
    await assert.rejects(c.flush(), (err: unknown) => err instanceof ConsentryError && err.kind === "consent_ended");
    assert.deepEqual(ended, ["revoked"]);
    assert.equal(c.consent().state, "revoked");
    assert.equal(c.stats().queued, 0);
    await c.close();
  });

  it("refuses a wrong app key for good", async () => {
    const c = await Consentry.open(config({ appKey: "ck_wrong-key-0123456789abcdefghijklmnop" }));
    await assert.rejects(
      c.grantConsent(["analytics"]),
      (err: unknown) => err instanceof ConsentryError && err.kind === "rejected" && err.call?.reason === "APP_UNAUTHENTICATED",
    );
    await c.close();
  });
});
