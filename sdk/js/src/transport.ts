import { fromBinary, fromJson, toBinary, toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { JsonValue } from "@bufbuild/protobuf";
import {
  GrantResponseSchema,
  RevokeResponseSchema,
  StatusResponseSchema,
  type GrantRequest,
  type GrantResponse,
  type RevokeRequest,
  type RevokeResponse,
  type StatusRequest,
  type StatusResponse,
  GrantRequestSchema,
  RevokeRequestSchema,
  StatusRequestSchema,
} from "./gen/consentry/v1/consent_pb.js";
import {
  IngestRequestSchema,
  IngestResponseSchema,
  type IngestRequest,
  type IngestResponse,
} from "./gen/consentry/v1/ingest_pb.js";
import { callError, type CallFailure } from "./errors.js";
import { plainBuffer } from "./seal.js";

/** The collector's HTTP endpoints (collector/httpingest.go, consent/http.go). */
export const PATHS = {
  ingest: "/v1/ingest",
  grant: "/v1/consent/grant",
  revoke: "/v1/consent/revoke",
  status: "/v1/consent/status",
} as const;

/** Bodies at least this large are gzip-compressed where the platform can. */
const GZIP_MIN_BYTES = 1024;

/** The fetch function the transport calls: the platform's, or one the app passes. */
export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** TransportConfig configures a Transport. */
export interface TransportConfig {
  /** The collector's base URL, e.g. "https://collector.example.com". */
  endpoint: string;
  fetch: Fetch;
  /** Bound on one request, in milliseconds. */
  timeoutMs: number;
  /** Compress large ingest bodies with gzip (when CompressionStream exists). */
  gzip: boolean;
}

/**
 * Transport speaks the collector's HTTP API: ingest as binary protobuf
 * (gzip-compressed when large), consent as protojson. A failure throws a
 * ConsentryError whose call says how the request failed.
 */
export class Transport {
  private readonly base: string;

  constructor(private readonly cfg: TransportConfig) {
    this.base = cfg.endpoint.replace(/\/+$/, "");
  }

  /** ingest sends one batch. */
  async ingest(req: IngestRequest, signal?: AbortSignal): Promise<IngestResponse> {
    let body: Uint8Array = toBinary(IngestRequestSchema, req);
    const headers: Record<string, string> = {
      "Content-Type": "application/x-protobuf",
      Accept: "application/x-protobuf",
    };
    if (this.cfg.gzip && body.length >= GZIP_MIN_BYTES && typeof CompressionStream !== "undefined") {
      body = await gzip(body);
      headers["Content-Encoding"] = "gzip";
    }
    const resp = await this.call("ingest", PATHS.ingest, headers, body, signal);
    return fromBinary(IngestResponseSchema, new Uint8Array(await resp.arrayBuffer()));
  }

  /** grant asks for a consent token. */
  grant(req: GrantRequest, signal?: AbortSignal): Promise<GrantResponse> {
    return this.json("grant", PATHS.grant, GrantRequestSchema, req, GrantResponseSchema, signal);
  }

  /** revoke withdraws a consent. */
  revoke(req: RevokeRequest, signal?: AbortSignal): Promise<RevokeResponse> {
    return this.json("revoke", PATHS.revoke, RevokeRequestSchema, req, RevokeResponseSchema, signal);
  }

  /** status asks whether a token is accepted. */
  status(req: StatusRequest, signal?: AbortSignal): Promise<StatusResponse> {
    return this.json("status", PATHS.status, StatusRequestSchema, req, StatusResponseSchema, signal);
  }

  private async json<I extends DescMessage, O extends DescMessage>(
    op: string,
    path: string,
    inSchema: I,
    req: MessageShape<I>,
    outSchema: O,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>> {
    const body = new TextEncoder().encode(JSON.stringify(toJson(inSchema, req)));
    const resp = await this.call(op, path, { "Content-Type": "application/json", Accept: "application/json" }, body, signal);
    const text = await resp.text();
    return fromJson(outSchema, JSON.parse(text) as JsonValue, { ignoreUnknownFields: true });
  }

  /** call POSTs body and returns a 2xx response, or throws the failure. */
  private async call(
    op: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    signal?: AbortSignal,
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(this.cfg.timeoutMs);
    const sig = signal ? anySignal([signal, timeout]) : timeout;
    let resp: Response;
    try {
      resp = await this.cfg.fetch(this.base + path, { method: "POST", headers, body: plainBuffer(body), signal: sig, redirect: "error" });
    } catch (err) {
      const what = timeout.aborted ? `no answer in ${this.cfg.timeoutMs} ms` : signal?.aborted ? "cancelled" : "request failed";
      throw Object.assign(callError(failure(op, 0)), { message: `${op}: ${what}`, cause: err });
    }
    if (resp.ok) {
      return resp;
    }
    const f = failure(op, resp.status);
    f.retryAfterMs = retryAfter(resp.headers.get("Retry-After"));
    try {
      const e = (await resp.json()) as { error?: { code?: unknown; reason?: unknown; message?: unknown } };
      if (e.error && typeof e.error.code === "string") {
        f.collector = true;
        f.code = e.error.code;
        f.reason = typeof e.error.reason === "string" ? e.error.reason : "";
        f.message = typeof e.error.message === "string" ? e.error.message : "";
      }
    } catch {
      // Not the collector's JSON error: a proxy's page, say.
    }
    throw callError(f);
  }
}

function failure(op: string, status: number): CallFailure {
  return { op, status, code: "", reason: "", message: "", collector: false, retryAfterMs: 0 };
}

/** retryAfter parses a Retry-After header (seconds or an HTTP date) into milliseconds. */
export function retryAfter(v: string | null, now = Date.now()): number {
  if (!v) {
    return 0;
  }
  if (/^\d+$/.test(v.trim())) {
    return Number(v.trim()) * 1000;
  }
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, t - now);
}

/** gzip compresses b with the platform's CompressionStream. */
async function gzip(b: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([plainBuffer(b)]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** anySignal aborts when any of signals does (AbortSignal.any where the platform lacks it). */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) {
    return any(signals);
  }
  const ctl = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ctl.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => ctl.abort(s.reason), { once: true });
  }
  return ctl.signal;
}
