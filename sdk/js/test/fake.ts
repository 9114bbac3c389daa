// A fake collector for the unit tests: a fetch that answers like the
// collector's HTTP API, recording what it received. The integration test
// (integration_test.go) runs the SDK against a real collector.
import { create, fromBinary, fromJson, toBinary, toJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import {
  GrantRequestSchema,
  GrantResponseSchema,
  RevokeRequestSchema,
  RevokeResponseSchema,
  type RevokeRequest,
} from "../src/gen/consentry/v1/consent_pb.js";
import {
  ConsentState,
  IngestRequestSchema,
  IngestResponseSchema,
  type IngestRequest,
} from "../src/gen/consentry/v1/ingest_pb.js";
import { webcrypto } from "node:crypto";
import { MemoryStorage, type Config, type Storage } from "../src/index.js";

/** A canned answer to one request. */
export type Answer =
  | { kind: "network" } // the request fails: offline
  | { kind: "hang" } // no answer until the request is aborted
  | { kind: "wait"; until: Promise<void> } // answered as usual once until resolves
  | { kind: "portal" } // a captive portal's page, with 200
  | { kind: "error"; status: number; reason?: string; retryAfter?: string; html?: boolean }
  | { kind: "respond"; resp: MessageInitShape<typeof IngestResponseSchema> };

export class FakeCollector {
  readonly batches: IngestRequest[] = [];
  readonly revocations: RevokeRequest[] = [];
  readonly gzipped: boolean[] = [];
  grants = 0;
  /** Answers for the next ingest requests, in order; then every batch is accepted. */
  ingestAnswers: Answer[] = [];
  /** Answers for the next revoke requests. */
  revokeAnswers: Answer[] = [];
  /** Refuse batches with more events than this as too large. */
  maxEvents = Infinity;
  offline = false;
  /** The collector's clock against the device's, in ms; when set, tokens are JWS-shaped with iat and exp. */
  clockOffsetMs?: number;

  readonly fetch = async (url: string, init: RequestInit): Promise<Response> => {
    if (this.offline) {
      throw new TypeError("fetch failed");
    }
    const path = new URL(url).pathname;
    let body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : new Uint8Array(init.body as ArrayBuffer);
    const headers = init.headers as Record<string, string>;
    const json = headers["Content-Type"] === "application/json";
    if (headers["Content-Encoding"] === "gzip") {
      const stream = new Blob([body]).stream().pipeThrough(new DecompressionStream("gzip"));
      body = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    switch (path) {
      case "/v1/consent/grant": {
        const req = fromJson(GrantRequestSchema, JSON.parse(new TextDecoder().decode(body)) as JsonValue);
        if (req.appKey !== "ck_test") {
          return errorResponse(401, "APP_UNAUTHENTICATED");
        }
        this.grants++;
        const now = Date.now() + (this.clockOffsetMs ?? 0);
        let token = `tok-${this.grants}`;
        if (this.clockOffsetMs !== undefined) {
          const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
          const iat = Math.floor(now / 1000);
          token = `${b64({ alg: "EdDSA", kid: "k1" })}.${b64({ cid: `c${this.grants}`, iat, exp: iat + 3600 })}.c2ln`;
        }
        const resp = create(GrantResponseSchema, {
          consentToken: token,
          expiresAtUnixMs: BigInt(now + 3600_000),
          scopes: req.scopes,
        });
        return jsonResponse(toJson(GrantResponseSchema, resp));
      }
      case "/v1/consent/revoke": {
        const a = this.revokeAnswers.shift();
        if (a && a.kind === "network") {
          throw new TypeError("fetch failed");
        }
        if (a && a.kind === "error") {
          return errorResponse(a.status, a.reason ?? "", a.retryAfter, a.html);
        }
        this.revocations.push(fromJson(RevokeRequestSchema, JSON.parse(new TextDecoder().decode(body)) as JsonValue));
        return jsonResponse(toJson(RevokeResponseSchema, create(RevokeResponseSchema, { revokedAtUnixMs: BigInt(Date.now()), propagationBoundMs: 5000n })));
      }
      case "/v1/ingest": {
        const req = json
          ? fromJson(IngestRequestSchema, JSON.parse(new TextDecoder().decode(body)) as JsonValue)
          : fromBinary(IngestRequestSchema, body);
        const a = this.ingestAnswers.shift();
        if (a && a.kind === "network") {
          throw new TypeError("fetch failed");
        }
        if (a && a.kind === "wait") {
          await a.until;
        }
        if (a && a.kind === "hang") {
          return new Promise((_, reject) => init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
        }
        if (a && a.kind === "portal") {
          return new Response("<html>Sign in to the hotel Wi-Fi</html>", { headers: { "Content-Type": "text/html" } });
        }
        if (a && a.kind === "error") {
          return errorResponse(a.status, a.reason ?? "", a.retryAfter, a.html);
        }
        if (req.events.length > this.maxEvents) {
          return errorResponse(413, "BATCH_TOO_LARGE");
        }
        this.batches.push(req);
        this.gzipped.push(headers["Content-Encoding"] === "gzip");
        const resp = create(IngestResponseSchema, {
          accepted: req.events.length,
          consentState: ConsentState.VALID,
          ...(a && a.kind === "respond" ? a.resp : {}),
        });
        if (json) {
          return jsonResponse(toJson(IngestResponseSchema, resp));
        }
        return new Response(toBinary(IngestResponseSchema, resp), { headers: { "Content-Type": "application/x-protobuf" } });
      }
    }
    return errorResponse(404, "NOT_FOUND");
  };

  /** events returns every event received, in order. */
  events() {
    return this.batches.flatMap((b) => b.events);
  }

  /** seqs returns the integer attribute "i" of every event received, in order; -1 for events without one. */
  seqs(): number[] {
    return this.events().map((e) => {
      const v = e.payload.case === "custom" ? e.payload.value.attributes["i"]?.value : undefined;
      return v?.case === "intValue" ? Number(v.value) : -1;
    });
  }
}

function jsonResponse(v: JsonValue): Response {
  return new Response(JSON.stringify(v), { headers: { "Content-Type": "application/json" } });
}

function errorResponse(status: number, reason: string, retryAfter?: string, html?: boolean): Response {
  const headers: Record<string, string> = { "Content-Type": html ? "text/html" : "application/json" };
  if (retryAfter) {
    headers["Retry-After"] = retryAfter;
  }
  const body = html ? "<html>proxy error</html>" : JSON.stringify({ error: { code: "INVALID_ARGUMENT", reason, message: "refused" } });
  return new Response(body, { status, headers });
}

/** CountingStorage is MemoryStorage that counts the bytes of every key and value written. */
export class CountingStorage extends MemoryStorage {
  written = 0;
  override setItem(key: string, value: string): void {
    this.written += key.length + value.length;
    super.setItem(key, value);
  }
}

/**
 * QuotaStorage is MemoryStorage with a quota on the characters of its keys
 * and values, as localStorage has (about 5 MB per origin, shared with the
 * page): a write past it throws QuotaExceededError. Set limit to used()
 * to stand for the app's own data filling the rest.
 */
export class QuotaStorage extends MemoryStorage {
  limit = Infinity;
  /** used returns the characters of every key and value but skip's. */
  used(skip?: string): number {
    let n = 0;
    for (const [k, v] of this.items) {
      if (k !== skip) {
        n += k.length + v.length;
      }
    }
    return n;
  }
  override setItem(key: string, value: string): void {
    if (this.used(key) + key.length + value.length > this.limit) {
      throw new DOMException("Setting the value exceeded the quota.", "QuotaExceededError");
    }
    super.setItem(key, value);
  }
}

/** config returns a client config for fake, with quick retries and no background sends in the way. */
export function config(fake: FakeCollector, storage: Storage = new MemoryStorage(), more: Partial<Config> = {}): Config {
  return {
    endpoint: "https://collector.test",
    appId: "com.example.notes",
    appKey: "ck_test",
    consentTextVersion: "2026-11",
    storage,
    fetch: fake.fetch,
    appVersion: "4.12.0",
    deviceClass: "phone",
    deviceModel: "Pixel 8",
    osName: "android",
    osVersion: "15",
    locale: "de-AT",
    flushIntervalMs: 3_600_000,
    minBackoffMs: 1,
    maxBackoffMs: 5,
    closeTimeoutMs: 0,
    crypto: webcrypto as Crypto, // Node.js 18 has no global crypto
    ...more,
  };
}

/** waitFor polls cond every 5 ms until it holds, failing after ms. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) {
      throw new Error("condition not met in time");
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
