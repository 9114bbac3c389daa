// The page script of test/browser.html (see there): one user's consent,
// events and an uncaught error in a web page, then the revocation, with
// the page's localStorage as the SDK's storage.
import { Consentry, ConsentryError } from "../src/index.js";

interface Result {
  accepted?: number;
  queuedAfterCapture?: number;
  plaintextInStorage?: boolean;
  delivered?: boolean;
  error?: { kind: string; message: string };
}

async function main(): Promise<Result> {
  const q = new URLSearchParams(location.search);
  const out: Result = {};
  localStorage.clear();
  const c = await Consentry.open({
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
  });
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

main().then(
  (r) => show(r),
  (err: unknown) =>
    show({ error: err instanceof ConsentryError ? { kind: err.kind, message: err.message } : { kind: "exception", message: String(err) } }),
);

function show(r: Result): void {
  const el = document.getElementById("result")!;
  el.textContent = JSON.stringify(r);
  el.id = "done";
}
