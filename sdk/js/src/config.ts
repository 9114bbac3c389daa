import { ConsentryError } from "./errors.js";
import type { Storage } from "./storage.js";
import type { Fetch } from "./transport.js";
import { KEY_SIZE } from "./seal.js";
import { DeviceClass, OsName } from "./gen/consentry/v1/ingest_pb.js";
import { LIMITS, enumOf, utf8Length, validAppId, validConsentTextVersion } from "./wire.js";

/** The class of device: never a device. */
export type DeviceClassName = "phone" | "tablet" | "watch" | "tv" | "desktop" | "car" | "other";
/** The operating system family. */
export type OsNameName =
  | "android"
  | "ios"
  | "ipados"
  | "watchos"
  | "tvos"
  | "macos"
  | "windows"
  | "linux"
  | "harmonyos"
  | "other";

/** A log level. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Config configures a Consentry client. Only the first five fields are required. */
export interface Config {
  /**
   * The collector's HTTPS base URL, e.g. "https://collector.example.com".
   * Plain http:// is taken only for a loopback host (tests, a local collector).
   */
  endpoint: string;
  /** The app's id as registered with the collector (`consentry apps add`). */
  appId: string;
  /** The app's key, as `consentry apps add` printed it. */
  appKey: string;
  /** The version of the consent text the user saw, e.g. "2026-11". */
  consentTextVersion: string;
  /** Where the consent state and the queue are kept: AsyncStorage, localStorage, or MemoryStorage. */
  storage: Storage;

  /**
   * The 32-byte key the state and queue are encrypted under, from the
   * platform's keystore (iOS Keychain, Android Keystore). Without it, a
   * random key is kept in storage beside the data: that still purges
   * for good (every purge starts a new data key), but protects nothing
   * from someone who can read the storage.
   */
  encryptionKey?: Uint8Array;
  /** Prefix of every storage key. Default "consentry.". */
  storagePrefix?: string;

  /** The app's user-visible version, e.g. "4.12.0". */
  appVersion?: string;
  /** The app's build number. */
  appBuild?: string;
  /** The class of device. */
  deviceClass?: DeviceClassName;
  /** The marketing model name, e.g. "Pixel 8" or "iPhone15,2". */
  deviceModel?: string;
  /** The operating system. */
  osName?: OsNameName;
  /** The operating system's version, e.g. "17.4.1". */
  osVersion?: string;
  /** The UI locale as a BCP 47 tag, e.g. "de-AT": only language and region are sent. */
  locale?: string;

  /** The most events in one batch (1 to 1000). Default 100. */
  maxBatchEvents?: number;
  /** The most encoded event bytes in one batch (at most 3 MiB). Default 512 KiB. */
  maxBatchBytes?: number;
  /** How often queued events are sent when no batch is full, in ms. Default 30 s. */
  flushIntervalMs?: number;
  /** Cap on the queue's encoded events; beyond it the oldest are dropped. Default 2 MiB (Android's AsyncStorage holds 6 MB in all). */
  maxQueueBytes?: number;
  /** How old a queued event may get before it is dropped unsent, in ms. Default 13 days; at most 14. */
  maxEventAgeMs?: number;
  /** The first retry delay, in ms. Default 1 s. */
  minBackoffMs?: number;
  /** The longest retry delay, in ms (a collector's Retry-After may ask for longer). Default 5 minutes. */
  maxBackoffMs?: number;
  /** Bound on one request, in ms. Default 15 s. */
  requestTimeoutMs?: number;
  /** Bound on the final flush of close(), in ms. Default 5 s. */
  closeTimeoutMs?: number;
  /** How many breadcrumbs a crash carries (0 to 100). Default 20. */
  maxBreadcrumbs?: number;
  /** Compress large batches with gzip where the platform has CompressionStream. Default true. */
  gzip?: boolean;
  /**
   * How batches are encoded: "protobuf" (default, smaller and faster) or
   * "json" (protojson), for a fetch that cannot send binary bodies.
   */
  encoding?: "protobuf" | "json";

  /** Which stack frames are the app's own, by the frame's file path. Default: all but node_modules and the platform's. */
  inApp?: (path: string) => boolean;
  /** Called when the collector reports the consent revoked or expired (the queue is purged by then). */
  onConsentEnded?: (state: "revoked" | "expired") => void;
  /** Receives the SDK's log lines; they never hold payloads, tokens or keys. */
  logger?: (level: LogLevel, message: string) => void;
  /** The fetch to call. Default: the platform's. */
  fetch?: Fetch;
  /** The WebCrypto to call (React Native: react-native-quick-crypto's). Default: globalThis.crypto. */
  crypto?: Crypto;
}

/** Settings is a Config with every default filled in. */
export type Settings = Required<Omit<Config, "encryptionKey" | "inApp" | "onConsentEnded" | "logger">> &
  Pick<Config, "encryptionKey" | "inApp" | "onConsentEnded" | "logger">;

/** The defaults of Config. */
export const DEFAULTS = {
  storagePrefix: "consentry.",
  maxBatchEvents: 100,
  maxBatchBytes: 512 << 10,
  flushIntervalMs: 30_000,
  maxQueueBytes: 2 << 20,
  maxEventAgeMs: 13 * 24 * 60 * 60 * 1000,
  minBackoffMs: 1_000,
  maxBackoffMs: 5 * 60 * 1000,
  requestTimeoutMs: 15_000,
  closeTimeoutMs: 5_000,
  maxBreadcrumbs: 20,
} as const;

function invalid(msg: string): ConsentryError {
  return new ConsentryError("invalid_config", `invalid config: ${msg}`);
}

function intIn(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isSafeInteger(v) || v < lo || v > hi) {
    throw invalid(`${name} must be an integer from ${lo} to ${hi}`);
  }
  return v;
}

/** settings validates c and fills in its defaults. */
export function settings(c: Config): Settings {
  let url: URL;
  try {
    url = new URL(c.endpoint);
  } catch {
    throw invalid("endpoint must be a URL such as https://collector.example.com");
  }
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw invalid("endpoint must be https:// (http:// only for a loopback host)");
  }
  if (url.search || url.hash || url.username || url.password) {
    throw invalid("endpoint must not carry a query, fragment or credentials");
  }
  if (!validAppId(c.appId ?? "")) {
    throw invalid("appId must be 1-128 letters, digits, '.', '_' or '-'");
  }
  if (!c.appKey) {
    throw invalid("appKey is required");
  }
  if (!validConsentTextVersion(c.consentTextVersion ?? "")) {
    throw invalid("consentTextVersion must be 1-64 printable characters");
  }
  if (!c.storage) {
    throw invalid("storage is required (AsyncStorage, localStorage or a MemoryStorage)");
  }
  if (c.encryptionKey !== undefined && c.encryptionKey.length !== KEY_SIZE) {
    throw invalid(`encryptionKey must be ${KEY_SIZE} bytes`);
  }
  const crypto = c.crypto ?? (globalThis as { crypto?: Crypto }).crypto;
  if (!crypto?.subtle || !crypto.getRandomValues) {
    throw invalid("no WebCrypto on this platform: pass crypto (e.g. react-native-quick-crypto)");
  }
  const fetchFn = c.fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : undefined);
  if (!fetchFn) {
    throw invalid("no fetch on this platform: pass fetch");
  }
  const s: Settings = {
    ...c,
    endpoint: url.origin + url.pathname.replace(/\/+$/, ""),
    storagePrefix: c.storagePrefix ?? DEFAULTS.storagePrefix,
    appVersion: c.appVersion ?? "",
    appBuild: c.appBuild ?? "",
    deviceClass: c.deviceClass ?? ("" as DeviceClassName),
    deviceModel: c.deviceModel ?? "",
    osName: c.osName ?? ("" as OsNameName),
    osVersion: c.osVersion ?? "",
    locale: c.locale ?? "",
    maxBatchEvents: intIn("maxBatchEvents", c.maxBatchEvents ?? DEFAULTS.maxBatchEvents, 1, LIMITS.maxBatchEvents),
    maxBatchBytes: intIn("maxBatchBytes", c.maxBatchBytes ?? DEFAULTS.maxBatchBytes, 1024, (LIMITS.maxMessageBytes * 3) / 4),
    flushIntervalMs: intIn("flushIntervalMs", c.flushIntervalMs ?? DEFAULTS.flushIntervalMs, 1, 24 * 3600 * 1000),
    maxQueueBytes: intIn("maxQueueBytes", c.maxQueueBytes ?? DEFAULTS.maxQueueBytes, 1024, 1 << 30),
    maxEventAgeMs: intIn("maxEventAgeMs", c.maxEventAgeMs ?? DEFAULTS.maxEventAgeMs, 60_000, LIMITS.maxEventAgeMs),
    minBackoffMs: intIn("minBackoffMs", c.minBackoffMs ?? DEFAULTS.minBackoffMs, 1, 3600 * 1000),
    maxBackoffMs: intIn("maxBackoffMs", c.maxBackoffMs ?? DEFAULTS.maxBackoffMs, 1, 24 * 3600 * 1000),
    requestTimeoutMs: intIn("requestTimeoutMs", c.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs, 1, 3600 * 1000),
    closeTimeoutMs: intIn("closeTimeoutMs", c.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs, 0, 3600 * 1000),
    maxBreadcrumbs: intIn("maxBreadcrumbs", c.maxBreadcrumbs ?? DEFAULTS.maxBreadcrumbs, 0, LIMITS.maxBreadcrumbs),
    gzip: c.gzip ?? true,
    encoding: c.encoding ?? "protobuf",
    fetch: fetchFn,
    crypto,
  };
  // The collector refuses a whole batch whose device fields are over its
  // limit, for good: every batch would be dropped.
  for (const [name, v] of Object.entries({
    appVersion: s.appVersion,
    appBuild: s.appBuild,
    deviceModel: s.deviceModel,
    osVersion: s.osVersion,
    locale: s.locale,
  })) {
    if (utf8Length(v) > LIMITS.maxNameBytes) {
      throw invalid(`${name} is over ${LIMITS.maxNameBytes} bytes`);
    }
  }
  if (s.encoding !== "protobuf" && s.encoding !== "json") {
    throw invalid('encoding must be "protobuf" or "json"');
  }
  if (s.maxBackoffMs < s.minBackoffMs) {
    throw invalid("maxBackoffMs must be at least minBackoffMs");
  }
  // Checked against the generated enums, so they cannot drift from the proto.
  if (s.deviceClass && enumOf(DeviceClass, s.deviceClass) === undefined) {
    throw invalid("deviceClass must be phone, tablet, watch, tv, desktop, car or other");
  }
  if (s.osName && enumOf(OsName, s.osName) === undefined) {
    throw invalid("osName must be android, ios, ipados, watchos, tvos, macos, windows, linux, harmonyos or other");
  }
  return s;
}
