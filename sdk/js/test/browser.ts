// The page script of test/browser.html (see there): one user's consent,
// events and an uncaught error in a web page, then the revocation, with
// the page's localStorage as the SDK's storage; with ?scenario=full, the
// same on a localStorage the page's own data has filled to its quota.
import { Consentry, ConsentryError, type Config } from "../src/index.js";

interface Result {
  accepted?: number;
  queuedAfterCapture?: number;
  plaintextInStorage?: boolean;
  delivered?: boolean;
  // ?scenario=full
  filledChars?: number;
  recordFailures?: number;
  firstFailure?: string;
  evicted?: number;
  stateAfterRevoke?: string;
  stateAfterRestart?: string;
  error?: { kind: string; message: string };
}

const q = new URLSearchParams(location.search);

function open(more: Partial<Config> = {}): Promise<Consentry> {
  return Consentry.open({
    endpoint: q.get("endpoint") ?? "",
    appId: q.get("app") ?? "",
    appKey: q.get("key") ?? "",
    consentTextVersion: "2026-11",
    storage: localStorage,
    appVersion: "1.0.0",
    deviceClass: "desktop",
    osName: "other",
    locale: navigator.language,
    flushIntervalMs: 3_600_000,
    ...more,
  });
}

async function main(): Promise<Result> {
  const out: Result = {};
  localStorage.clear();
  const c = await open();
  try {
    await c.grantConsent(["analytics", "crash_reports"]);
  } catch (err) {
    await c.close();
    throw err;
  }
  c.captureUncaughtErrors();
  await c.recordCustom("web_event", { note: "page-private-value" });
  setTimeout(() => {
    throw new TypeError("uncaught in the page");
  });
  for (let i = 0; i < 100 && c.stats().queued < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  out.queuedAfterCapture = c.stats().queued;
  out.plaintextInStorage = false;
  for (let i = 0; i < localStorage.length; i++) {
    const v = localStorage.getItem(localStorage.key(i) ?? "") ?? "";
    let decoded = "";
    try {
      decoded = atob(v);
    } catch {
      // not base64
    }
    if ((v + decoded).includes("page-private-value") || (v + decoded).includes("web_event")) {
      out.plaintextInStorage = true;
    }
  }
  await c.flush();
  out.accepted = c.stats().accepted;
  // The collector drops batches received up to about a second before a
  // revocation (its revocation times are whole seconds): wait that out.
  await new Promise((r) => setTimeout(r, 1100));
  out.delivered = (await c.revokeConsent()).delivered;
  await c.close();
  return out;
}

/**
 * full records on a localStorage the page's own data fills to the
 * browser's real quota (QuotaExceededError): records make room by
 * dropping the SDK's oldest events, and a revocation on the full storage
 * still ends the consent, across a restart.
 */
async function full(): Promise<Result> {
  const out: Result = {};
  localStorage.clear();
  const cfg = { maxBatchEvents: 1000 }; // no send until the flush
  const c = await open(cfg);
  await c.grantConsent(["analytics"]);
  for (let i = 0; i < 300; i++) {
    await c.recordCustom("full_storage", { i });
  }
  out.filledChars = fillStorage();
  out.recordFailures = 0;
  for (let i = 300; i < 400; i++) {
    try {
      await c.recordCustom("full_storage", { i });
    } catch (err) {
      out.recordFailures++;
      out.firstFailure ??= `${String(err)}; ${c.stats().queued} queued`;
    }
  }
  out.evicted = c.stats().evicted;
  await c.flush();
  out.accepted = c.stats().accepted;
  fillStorage(); // the sent events' room, taken again
  // See main: wait out the collector's whole-second revocation times.
  await new Promise((r) => setTimeout(r, 1100));
  out.delivered = (await c.revokeConsent()).delivered;
  out.stateAfterRevoke = c.consent().state;
  await c.close();
  for (let i = 0; localStorage.getItem(`app.${i}`) !== null; i++) {
    localStorage.removeItem(`app.${i}`); // the user freed space
  }
  const again = await open(cfg);
  out.stateAfterRestart = again.consent().state;
  await again.close();
  localStorage.clear();
  return out;
}

/** fillStorage adds the page's own items until localStorage is full and returns the characters added. */
function fillStorage(): number {
  let added = 0;
  let n = 0;
  while (localStorage.getItem(`app.${n}`) !== null) {
    n++;
  }
  for (let size = 1 << 20; size >= 16; ) {
    try {
      localStorage.setItem(`app.${n}`, "x".repeat(size));
      added += size;
      n++;
    } catch {
      size >>= 1;
    }
  }
  return added;
}

(q.get("scenario") === "full" ? full() : main()).then(
  (r) => show(r),
  (err: unknown) =>
    show({ error: err instanceof ConsentryError ? { kind: err.kind, message: err.message } : { kind: "exception", message: String(err) } }),
);

function show(r: Result): void {
  const el = document.getElementById("result")!;
  el.textContent = JSON.stringify(r);
  el.id = "done";
}
