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
  /** How batches are encoded: binary protobuf, or protojson for a fetch that sends no binary bodies. */
  encoding: "protobuf" | "json";
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
    const json = this.cfg.encoding === "json";
    const type = json ? "application/json" : "application/x-protobuf";
    const headers: Record<string, string> = { "Content-Type": type, Accept: type };
    let body: Uint8Array | string = json ? JSON.stringify(toJson(IngestRequestSchema, req)) : toBinary(IngestRequestSchema, req);
    if (this.cfg.gzip && body.length >= GZIP_MIN_BYTES && typeof CompressionStream !== "undefined") {
      body = await gzip(typeof body === "string" ? new TextEncoder().encode(body) : body);
      headers["Content-Encoding"] = "gzip";
    }
    return this.call("ingest", PATHS.ingest, headers, body, signal, async (resp) =>
      json
        ? fromJson(IngestResponseSchema, (await resp.json()) as JsonValue, { ignoreUnknownFields: true })
        : fromBinary(IngestResponseSchema, new Uint8Array(await resp.arrayBuffer())),
    );
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
    const body = JSON.stringify(toJson(inSchema, req));
    return this.call(op, path, { "Content-Type": "application/json", Accept: "application/json" }, body, signal, async (resp) =>
      fromJson(outSchema, (await resp.json()) as JsonValue, { ignoreUnknownFields: true }),
    );
  }

  /**
   * call POSTs body and reads a 2xx response with read, both within the
   * request timeout, or throws the failure. The timeout is a timer, not
   * AbortSignal.timeout, which React Native lacks.
   */
  private async call<T>(
    op: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | string,
    signal: AbortSignal | undefined,
    read: (resp: Response) => Promise<T>,
  ): Promise<T> {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.cfg.timeoutMs);
    const cancel = () => ctl.abort();
    signal?.addEventListener("abort", cancel, { once: true });
    if (signal?.aborted) {
      ctl.abort();
    }
    const failed = (err: unknown) => {
      const what = timedOut ? `no answer in ${this.cfg.timeoutMs} ms` : signal?.aborted ? "cancelled" : "request failed";
      return Object.assign(callError(failure(op, 0)), { message: `${op}: ${what}`, cause: err });
    };
    try {
      let resp: Response;
      try {
        resp = await this.cfg.fetch(this.base + path, {
          method: "POST",
          headers,
          body: typeof body === "string" ? body : plainBuffer(body),
          signal: ctl.signal,
          redirect: "error",
        });
      } catch (err) {
        throw failed(err);
      }
      if (resp.ok) {
        try {
          return await read(resp);
        } catch (err) {
          if (ctl.signal.aborted) {
            throw failed(err);
          }
          // A 200 that is not the collector's answer (a captive portal's
          // page): the network's fault, retried.
          const f = failure(op, resp.status);
          f.message = "the answer is not the collector's";
          throw Object.assign(callError(f), { cause: err });
        }
      }
      throw await this.failure(op, resp);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", cancel);
    }
  }

  /** failure reads a non-2xx response as the error it is. */
  private async failure(op: string, resp: Response): Promise<Error> {
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
    return callError(f);
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
