// The rules of the wire contract that the .proto files cannot state, as
// the collector applies them (proto/consentry/v1/wire.go holds the Go
// copy; a test in this folder keeps the two equal).

/** A kind of data a user consents to. */
export type Scope = "analytics" | "crash_reports" | "location";

/** Every scope, in a fixed order. */
export const SCOPES: readonly Scope[] = ["analytics", "crash_reports", "location"];

/** The longest app id, in bytes. */
export const MAX_APP_ID_LEN = 128;
/** The longest consent text version, in characters. */
export const MAX_CONSENT_TEXT_VERSION_LEN = 64;

/** The limits every collector admits by default. */
export const LIMITS = {
  maxBatchEvents: 1000,
  maxMessageBytes: 4 << 20,
  maxNameBytes: 256,
  maxTextBytes: 8 << 10,
  maxFrames: 256,
  maxAttributes: 64,
  maxBreadcrumbs: 100,
  maxBreadcrumbBytes: 256,
  maxEventAgeMs: 14 * 24 * 60 * 60 * 1000,
} as const;

const encoder = new TextEncoder();

/**
 * enumOf returns the value of a generated enum e named in lower case
 * without its prefix ("double_tap" for GestureType.DOUBLE_TAP), or
 * undefined for an unknown name and for UNSPECIFIED.
 */
export function enumOf<E extends Record<string, string | number>>(e: E, name: string): number | undefined {
  if (!/^[a-z_]+$/.test(name)) {
    return undefined;
  }
  const v = e[name.toUpperCase() as keyof E];
  return typeof v === "number" && v !== 0 ? v : undefined;
}

/** utf8Length returns the length of s in UTF-8 bytes. */
export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

/**
 * validAppId reports whether id is 1 to 128 ASCII letters, digits, '.',
 * '_' and '-', starting with a letter or digit.
 */
export function validAppId(id: string): boolean {
  return id.length <= MAX_APP_ID_LEN && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id);
}

/** validConsentTextVersion reports whether v is 1 to 64 printable characters. */
export function validConsentTextVersion(v: string): boolean {
  const chars = [...v];
  if (chars.length === 0 || chars.length > MAX_CONSENT_TEXT_VERSION_LEN) {
    return false;
  }
  // Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols
  // and the ASCII space.
  return chars.every((c) => c === " " || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c));
}

/**
 * validName reports whether v is a name the collector takes: at most 256
 * ASCII letters, digits, '.', '_' and '-' (1 or more), and for screen
 * names also '/', ':' and spaces (0 or more).
 */
export function validName(v: string, screen: boolean): boolean {
  if (v.length > LIMITS.maxNameBytes) {
    return false;
  }
  return screen ? /^[A-Za-z0-9._\-/: ]*$/.test(v) : /^[A-Za-z0-9._-]+$/.test(v);
}

/** truncateUtf8 cuts s to at most max UTF-8 bytes, on a character boundary. */
export function truncateUtf8(s: string, max: number): string {
  if (s.length * 3 <= max || utf8Length(s) <= max) {
    return s;
  }
  let n = 0;
  let out = "";
  for (const c of s) {
    const size = utf8Length(c);
    if (n + size > max) {
      break;
    }
    n += size;
    out += c;
  }
  return out;
}
