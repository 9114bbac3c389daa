/** What went wrong, for callers to branch on. */
export type ErrorKind =
  /** The config cannot be used. */
  | "invalid_config"
  /** A record or consent call got a value the collector would refuse; nothing was recorded. */
  | "invalid_argument"
  /** The client was closed. */
  | "closed"
  /** Another open client of this JavaScript context uses the same storage and prefix. */
  | "storage_in_use"
  /**
   * Neither copy of the stored consent state can be decrypted (one
   * damaged copy is read from the other): most likely the encryption key
   * differs from the one it was written with. Pass that key, or call
   * Consentry.deleteStorage to start over (forgetting the consent, and a
   * revocation not yet delivered).
   */
  | "state_unreadable"
  /**
   * The storage is full (the app's own data, or other sites', filled it)
   * and the SDK had no events of its own left to drop to make room;
   * nothing was written. It works again once space is freed.
   */
  | "storage_full"
  /** The collector refused a request for a reason a retry cannot fix. */
  | "rejected"
  /** The collector could not be reached, or asked to retry later; queued events stay queued. */
  | "unavailable"
  /** The collector reported the consent revoked, expired or invalid; the queue was purged. */
  | "consent_ended";

/** How a request to the collector failed. */
export interface CallFailure {
  /** "ingest", "grant", "revoke" or "status". */
  op: string;
  /** The HTTP status; 0 when no response arrived. */
  status: number;
  /** The gRPC code's name the collector's error names, e.g. "RESOURCE_EXHAUSTED". */
  code: string;
  /** The collector's ErrorReason name, e.g. "BATCH_TOO_LARGE"; "" if none. */
  reason: string;
  /** The collector's message: names fields and sizes, never values. */
  message: string;
  /** The body was the collector's JSON error, not a proxy's or captive portal's page. */
  collector: boolean;
  /** The collector's pushback (Retry-After), in milliseconds; 0 if none. */
  retryAfterMs: number;
}

/** ConsentryError is every error the SDK throws or rejects with. */
export class ConsentryError extends Error {
  /** What went wrong. */
  readonly kind: ErrorKind;
  /** For "rejected" and "unavailable": how the request failed. */
  readonly call?: CallFailure;

  constructor(kind: ErrorKind, message: string, options?: { call?: CallFailure; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConsentryError";
    this.kind = kind;
    if (options?.call) {
      this.call = options.call;
    }
  }
}

/** tooLarge reports whether a request was refused for its size: split it. */
export function tooLarge(f: CallFailure): boolean {
  return f.status === 413 || f.reason === "BATCH_TOO_LARGE";
}

/** permanent reports whether resending the same request cannot succeed. */
export function permanent(f: CallFailure): boolean {
  if (tooLarge(f)) {
    return true; // not as it is: split it instead.
  }
  // A 4xx page from a proxy or a captive portal is not the collector's
  // verdict: only its JSON error drops a batch.
  return f.collector && [400, 401, 403, 415].includes(f.status);
}

/** callError wraps a failure as the error callers see. */
export function callError(f: CallFailure): ConsentryError {
  let text = `${f.op}: ${f.status === 0 ? "no response" : `HTTP ${f.status}`}`;
  if (f.reason) {
    text += ` ${f.reason}`;
  }
  if (f.message) {
    text += `: ${f.message}`;
  }
  return new ConsentryError(permanent(f) ? "rejected" : "unavailable", text, { call: f });
}

/**
 * storageFull reports whether err says the storage has no room: the
 * browsers' QuotaExceededError (NS_ERROR_DOM_QUOTA_REACHED in old
 * Firefox), SQLite's "database or disk is full" (AsyncStorage on
 * Android), or no space left on a device.
 */
export function storageFull(err: unknown): boolean {
  if (!(err instanceof Error) && !(typeof DOMException !== "undefined" && err instanceof DOMException)) {
    return false;
  }
  const e = err as Error;
  return (
    e.name === "QuotaExceededError" ||
    e.name === "NS_ERROR_DOM_QUOTA_REACHED" ||
    /quota|disk is full|SQLITE_FULL|no space left|ENOSPC|out of space/i.test(e.message)
  );
}

/** storageFailure is the error of op when writing to the storage failed with err. */
export function storageFailure(op: string, err: unknown): ConsentryError {
  return new ConsentryError(storageFull(err) ? "storage_full" : "unavailable", `${op}: storage failed: ${summary(err)}`, { cause: err });
}

/** summary is err's message, for logs and other errors' messages. */
export function summary(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

