import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import { GrantRequestSchema, RevokeRequestSchema, type ErasureReceipt } from "./gen/consentry/v1/consent_pb.js";
import {
  AppStartType,
  AppState,
  AttributeValueSchema,
  BreadcrumbType,
  ConsentState,
  DeviceClass,
  DeviceContextSchema,
  DiagnosticKind,
  DropReason,
  EventSchema,
  GestureType,
  IngestRequestSchema,
  NetworkType,
  OsName,
  type CoarseLocation,
  type DeviceContext,
  type Event,
  type IngestResponse,
} from "./gen/consentry/v1/ingest_pb.js";
import { settings, type Config, type LogLevel, type Settings } from "./config.js";
import { ConsentryError, permanent, storageFailure, storageFull, summary, tooLarge } from "./errors.js";
import { Queue, type QueuedEvent, type Segment } from "./queue.js";
import { randomBytes, Sealer } from "./seal.js";
import { errorParts, parseStack } from "./stack.js";
import { joinRepairs, loadMasterKeys, logRepair, newState, openState, repairMasterKey, withCopy, type State, type StateStore } from "./state.js";
import type { Storage } from "./storage.js";
import { Transport } from "./transport.js";
import { LIMITS, SCOPES, enumOf, truncateUtf8, validName, type Scope } from "./wire.js";

/** The SDK's name and version, as DeviceContext.sdk_version carries it. */
export const SDK_VERSION = "consentry-js/0.1.0";

/** Where the user's consent stands. */
export interface ConsentStatus {
  /** "granted" while a token is held; "revoked" or "expired" once it ended; "none" before any grant. */
  state: "none" | "granted" | "revoked" | "expired";
  /** The scopes the token covers. */
  scopes: Scope[];
  /** When the token expires (Unix ms); 0 without one. */
  expiresAtMs: number;
}

/** What revokeConsent did. */
export interface RevokeResult {
  /** The collector confirmed the revocation; false: it is kept and retried in the background and on every start. */
  delivered: boolean;
  /** When the collector recorded it (Unix ms), if delivered. */
  revokedAtMs?: number;
  /** How long until every collector replica refuses the consent's events (ms), if delivered. */
  propagationBoundMs?: number;
  /** What an erasure did, if erase was asked and delivered. */
  receipt?: ErasureReceipt;
}

/** Counters since open. */
export interface Stats {
  /** Events recorded into the queue. */
  recorded: number;
  /** Events the collector accepted. */
  accepted: number;
  /** Events the collector dropped (counted by the collector's reasons in its responses). */
  droppedByCollector: number;
  /** Events in batches the collector refused for good. */
  refused: number;
  /** Events dropped because the queue was full. */
  evicted: number;
  /** Events dropped unsent because they were older than maxEventAgeMs. */
  tooOld: number;
  /** Events dropped unsent because the consent no longer covered their scope. */
  outOfScope: number;
  /** Events lost to storage that could not be read back. */
  unreadable: number;
  /** Batches sent. */
  batches: number;
  /** Failed sends that will be retried. */
  retries: number;
}

/** A gesture kind. */
export type GestureKind = "tap" | "double_tap" | "long_press" | "swipe" | "pinch" | "scroll";
/** A diagnostic kind. */
export type DiagnosticKindName = "app_start" | "memory_warning" | "network_change" | "hang" | "low_storage" | "thermal";
/** What the app was doing. */
export type AppStateName = "foreground" | "background" | "launching" | "terminating";
/** A scalar attribute value. */
export type AttributeValue = string | number | bigint | boolean;

interface Breadcrumb {
  type: BreadcrumbType;
  name: string;
  gesture: GestureType;
  mono: number;
}

interface PendingWrite {
  item: QueuedEvent;
  gen: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * inUse holds the storage prefixes open clients use, per storage: two
 * clients writing one queue index would lose each other's segments.
 */
const inUse = new WeakMap<Storage, Set<string>>();
const MAX_SESSION_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_PUSHBACK_MS = 60 * 60 * 1000;

/** Mutex runs async functions one at a time, in call order. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(() => fn());
    this.tail = p.catch(() => undefined);
    return p;
  }
}

/**
 * Consentry is the SDK's client: it asks the collector for a consent
 * token when the user opts in, records diagnostics only while that
 * consent covers them, keeps them in an encrypted queue in the app's
 * storage, and sends them in batches with retries. Create it with
 * Consentry.open; call close when the app stops.
 *
 * Every record method resolves once the event is in storage, and does
 * nothing (resolving at once) when the consent does not cover it.
 */
export class Consentry {
  private readonly s: Settings;
  private readonly tr: Transport;
  private readonly proc: string;
  private readonly storageMu = new Mutex();
  private readonly sendMu = new Mutex();
  private readonly revMu = new Mutex();
  private st: State;
  private data: Sealer;
  private gen = 0;
  private genAbort = new AbortController();
  private pending: PendingWrite[] = [];
  private writeScheduled = false;
  private closed = false;
  private session: { id: Uint8Array; start: number } | null = null;
  private appState = AppState.UNSPECIFIED;
  private location: CoarseLocation | null = null;
  private crumbs: Breadcrumb[] = [];
  /** trackSessions is on: a grant in the foreground starts a session. */
  private tracking = false;
  private readonly counters: Stats = {
    recorded: 0,
    accepted: 0,
    droppedByCollector: 0,
    refused: 0,
    evicted: 0,
    tooOld: 0,
    outOfScope: 0,
    unreadable: 0,
    batches: 0,
    retries: 0,
  };
  // The sender's schedule.
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ticking = false;
  private again = false;
  private drain: boolean;
  private nextDrain: number;
  private retryAt = 0;
  private attempt = 0;
  private pushbackUntil = 0;
  private revAt = 0;
  private revAttempt = 0;

  private constructor(
    s: Settings,
    private readonly store: StateStore,
    st: State,
    data: Sealer,
    private readonly queue: Queue,
  ) {
    this.s = s;
    this.st = st;
    this.data = data;
    this.tr = new Transport({ endpoint: s.endpoint, fetch: s.fetch, timeoutMs: s.requestTimeoutMs, gzip: s.gzip, encoding: s.encoding });
    this.proc = base64Encode(randomBytes(s.crypto, 9));
    this.drain = queue.events > 0; // a backlog from an earlier run goes out at once
    this.nextDrain = Date.now() + s.flushIntervalMs;
  }

  /**
   * open validates config, reads the consent state and queue from its
   * storage, and starts sending what is queued. It rejects with
   * "invalid_config"; "storage_in_use" while another client of this
   * JavaScript context has the same storage and prefix open; or
   * "state_unreadable" when neither copy of the stored state can be
   * decrypted with the configured key (see load).
   */
  static async open(config: Config): Promise<Consentry> {
    const s = settings(config);
    const p = s.storagePrefix;
    const held = inUse.get(s.storage) ?? new Set<string>();
    if (held.has(p)) {
      throw new ConsentryError("storage_in_use", `open: another client uses this storage with prefix ${JSON.stringify(p)}; close it first`);
    }
    held.add(p);
    inUse.set(s.storage, held);
    try {
      return await Consentry.load(s);
    } catch (err) {
      held.delete(p);
      throw err;
    }
  }

  /**
   * load reads the key and the consent state from storage: each is kept
   * twice (see StateStore), and a value that is missing, damaged or older
   * than its copy is read from the copy and put right. It then opens the
   * queue.
   */
  private static async load(s: Settings): Promise<Consentry> {
    const p = s.storagePrefix;
    const masters = await loadMasterKeys(s.storage, p, s.crypto, s.encryptionKey);
    const opened = await openState(s.storage, p, s.crypto, masters);
    const repair = s.encryptionKey ? opened.repair : joinRepairs(opened.repair, await repairMasterKey(s.storage, p, opened.master));
    logRepair(s.logger, repair);
    const st = opened.st;
    const data = await Sealer.create(s.crypto, base64Decode(st.dataKey));
    const { queue, lost } = await Queue.open(s.storage, p, {
      // A segment is rewritten whole by each append to it: 32 events or
      // 16 KiB bound what one record writes (fewer events per segment
      // write less per record but grow the index, rewritten with each
      // new segment: of 20, 32, 50 and 100, 32 wrote least for 20,000
      // records, about the cap, by queuebench: 49 MB against 115 MB with
      // 100). It is evicted whole: a quarter of the cap at most.
      maxEvents: Math.min(s.maxBatchEvents, 32),
      maxBytes: Math.min(s.maxBatchBytes, 16 << 10, Math.floor(s.maxQueueBytes / 4)),
    });
    // Segments of an earlier epoch (a purge cut short by the app's end)
    // can no longer be decrypted: finish the purge.
    await queue.remove(queue.segments.filter((seg) => seg.epoch !== st.epoch).map((seg) => seg.id));
    await queue.recount(st.epoch, data);
    const c = new Consentry(s, opened.store, st, data, queue);
    if (lost < 0) {
      c.log("warn", "queue index unreadable; queued events were lost");
    }
    c.schedule(0);
    return c;
  }

  /**
   * deleteStorage removes everything a client with this storage and
   * prefix keeps: the consent state and its copy (so the consent is
   * forgotten, not revoked, and a revocation not yet delivered with it),
   * the queue and the key and its copy. It rejects with "storage_in_use"
   * while a client has them open.
   */
  static async deleteStorage(storage: Storage, storagePrefix = "consentry."): Promise<void> {
    if (inUse.get(storage)?.has(storagePrefix)) {
      throw new ConsentryError("storage_in_use", "delete storage: a client has it open; close it first");
    }
    const { queue } = await Queue.open(storage, storagePrefix);
    await queue.purge();
    for (const k of ["queue", ...withCopy("state"), ...withCopy("key")]) {
      await storage.removeItem(storagePrefix + k);
    }
  }

  /** consent returns where the user's consent stands. */
  consent(): ConsentStatus {
    const st = this.st;
    if (st.token) {
      return { state: "granted", scopes: [...st.scopes], expiresAtMs: st.expiresAtMs };
    }
    return { state: st.ended || "none", scopes: [], expiresAtMs: 0 };
  }

  /**
   * grantConsent asks the collector for a consent token covering scopes,
   * once the user opted in, and keeps it. It needs the network: it rejects
   * with "unavailable" (try again later) or "rejected" (a wrong app key, a
   * scope the app may not ask for). Granting again (the user changed their
   * choice) replaces the token, drops queued events the new scopes do not
   * cover, and revokes the replaced token in the background.
   */
  async grantConsent(scopes: readonly Scope[], options: { ttlSeconds?: number } = {}): Promise<ConsentStatus> {
    this.checkOpen("grant consent");
    const uniq = [...new Set(scopes)];
    if (uniq.length === 0 || !uniq.every((sc) => SCOPES.includes(sc))) {
      throw new ConsentryError("invalid_argument", `grant consent: scopes must be some of ${SCOPES.join(", ")}`);
    }
    const ttl = options.ttlSeconds ?? 0;
    if (!Number.isSafeInteger(ttl) || ttl < 0) {
      throw new ConsentryError("invalid_argument", "grant consent: ttlSeconds must be a whole number of seconds, 0 or more");
    }
    const resp = await this.tr.grant(
      create(GrantRequestSchema, {
        appId: this.s.appId,
        appKey: this.s.appKey,
        scopes: uniq,
        consentTextVersion: this.s.consentTextVersion,
        ttlSeconds: BigInt(ttl),
      }),
      this.genAbort.signal,
    );
    // The expiry on the device's clock, which may be off from the
    // collector's: from the token's lifetime where it can be read.
    const now = Date.now();
    const life = tokenLifetimeMs(resp.consentToken);
    const expiresAtMs = life > 0 ? now + life : Number(resp.expiresAtUnixMs);
    if (!resp.consentToken || expiresAtMs <= now) {
      throw new ConsentryError("rejected", "grant consent: the collector answered no token, or an expired one");
    }
    const granted = resp.scopes.filter((sc): sc is Scope => SCOPES.includes(sc as Scope));
    try {
      await this.storageMu.run(async () => {
        // A replaced token is revoked, in the background: the collector's
        // consent records show the user's current choice, and the old
        // token, with its wider scopes, is accepted nowhere.
        const old = this.st.token;
        const revocations = old && old !== resp.consentToken ? [...this.st.revocations, { token: old, erase: false }] : this.st.revocations;
        await this.saveState({ ...this.st, token: resp.consentToken, scopes: granted.length > 0 ? granted : uniq, expiresAtMs, ended: "", revocations });
      });
    } catch (err) {
      throw storageFailure("grant consent", err);
    }
    if (!this.st.scopes.includes("location")) {
      this.location = null;
    }
    if (!this.st.scopes.includes("analytics")) {
      this.crumbs = [];
    }
    this.log("info", `consent granted for ${this.st.scopes.join(", ")}`);
    this.drain = this.queue.events > 0;
    this.schedule(0);
    if (this.tracking && this.appState === AppState.FOREGROUND && !this.session) {
      await this.startSession(); // the user opted in with the app in front
    }
    return this.consent();
  }

  /**
   * revokeConsent withdraws the user's consent: from the moment it is
   * called nothing more is recorded; the queue is purged and the
   * revocation kept in storage before it resolves. It then asks the
   * collector to revoke the token (and, with erase, to delete what was
   * stored under it, where the app's policy allows); offline, that is
   * retried in the background and on every start until the collector
   * confirms it.
   */
  async revokeConsent(options: { erase?: boolean } = {}): Promise<RevokeResult> {
    this.checkOpen("revoke consent");
    const token = this.st.token;
    if (token) {
      await this.stopConsent("revoked", { token, erase: options.erase ?? false });
      this.log("info", "consent revoked on the device; queue purged");
    }
    if (this.st.revocations.length === 0) {
      return { delivered: true };
    }
    try {
      const resp = await this.deliverRevocations(token);
      this.revAttempt = 0;
      if (!resp) {
        return { delivered: true };
      }
      const out: RevokeResult = {
        delivered: true,
        revokedAtMs: Number(resp.revokedAtUnixMs),
        propagationBoundMs: Number(resp.propagationBoundMs),
      };
      if (resp.receipt) {
        out.receipt = resp.receipt;
      }
      return out;
    } catch (err) {
      this.log("debug", `revocation not delivered yet (${summary(err)}); retrying in the background`);
      this.revAt = Date.now() + this.backoff(++this.revAttempt, err);
      this.schedule(0);
      return { delivered: false };
    }
  }

  /** startSession records a session's start (analytics) and marks the app in the foreground. */
  async startSession(): Promise<void> {
    this.checkOpen("start session");
    this.appState = AppState.FOREGROUND;
    if (!this.covers("analytics")) {
      return;
    }
    const prev = this.session;
    const id = randomBytes(this.s.crypto, 16);
    this.session = { id, start: now() };
    if (prev) {
      await this.sessionEnd(prev);
    }
    await this.record("analytics", { sessionId: id, payload: { case: "session", value: { phase: 1 } } });
  }

  /**
   * trackSessions starts and ends sessions as the app comes to the
   * foreground and leaves it, from React Native's AppState (or anything
   * with its shape), until the returned function is called: "active"
   * starts a session, "background" and "inactive" end it. A session is
   * started at once when the app is active now, and when consent is
   * granted while it is. Errors (a closed client, storage) are logged,
   * not thrown.
   */
  trackSessions(appState: {
    currentState?: string | null;
    addEventListener(type: "change", listener: (state: string) => void): { remove(): void };
  }): () => void {
    this.checkOpen("track sessions");
    const on = (state: string): void => {
      if (this.closed) {
        return;
      }
      const done = state === "active" ? this.startSession() : this.session ? this.endSession() : undefined;
      done?.catch((err: unknown) => this.log("warn", `session not recorded: ${summary(err)}`));
    };
    this.tracking = true;
    if (appState.currentState === "active" && !this.session) {
      on("active");
    }
    const sub = appState.addEventListener("change", on);
    return () => {
      this.tracking = false;
      sub.remove();
    };
  }

  /** endSession records the running session's end and length, and marks the app in the background. */
  async endSession(): Promise<void> {
    this.checkOpen("end session");
    this.appState = AppState.BACKGROUND;
    const prev = this.session;
    this.session = null;
    if (prev) {
      await this.sessionEnd(prev);
    }
  }

  private sessionEnd(s: { id: Uint8Array; start: number }): Promise<void> {
    const d = Math.min(Math.max(Math.round(now() - s.start), 0), MAX_SESSION_MS);
    return this.record("analytics", {
      sessionId: s.id,
      payload: { case: "session", value: { phase: 2, durationMs: BigInt(d) } },
    });
  }

  /** recordScreenView notes that the user opened a screen: a breadcrumb for crashes, not an event. */
  recordScreenView(screen: string): void {
    this.checkOpen("record screen view");
    if (!validName(screen, true) || screen === "") {
      throw new ConsentryError("invalid_argument", screenRule("record screen view"));
    }
    this.crumb(BreadcrumbType.SCREEN_VIEW, screen, GestureType.UNSPECIFIED);
  }

  /** recordBreadcrumb notes something the user did, for crashes: a name, not free text. */
  recordBreadcrumb(name: string): void {
    this.checkOpen("record breadcrumb");
    if (!validName(name, true) || name === "") {
      throw new ConsentryError("invalid_argument", screenRule("record breadcrumb"));
    }
    this.crumb(BreadcrumbType.CUSTOM, name, GestureType.UNSPECIFIED);
  }

  /** recordGesture records count gestures of one kind on a screen (analytics). */
  async recordGesture(kind: GestureKind, screen: string, options: { count?: number; durationMs?: number } = {}): Promise<void> {
    this.checkOpen("record gesture");
    const type = enumOf(GestureType, kind);
    if (type === undefined) {
      throw new ConsentryError("invalid_argument", "record gesture: kind must be tap, double_tap, long_press, swipe, pinch or scroll");
    }
    if (!validName(screen, true)) {
      throw new ConsentryError("invalid_argument", screenRule("record gesture"));
    }
    const count = options.count ?? 0;
    const durationMs = options.durationMs ?? 0;
    if (!isUint32(count) || !isUint32(durationMs)) {
      throw new ConsentryError("invalid_argument", "record gesture: count and durationMs must be whole numbers from 0 to 2^32-1");
    }
    this.crumb(BreadcrumbType.GESTURE, screen, type);
    await this.record("analytics", { payload: { case: "gesture", value: { type, screen, count, durationMs } } });
  }

  /** recordCustom records an app-defined event with scalar attributes (analytics). */
  async recordCustom(name: string, attributes: Record<string, AttributeValue> = {}): Promise<void> {
    this.checkOpen("record custom event");
    if (!validName(name, false)) {
      throw new ConsentryError("invalid_argument", `record custom event: name must be 1-${LIMITS.maxNameBytes} letters, digits, '.', '_' or '-'`);
    }
    const keys = Object.keys(attributes);
    if (keys.length > LIMITS.maxAttributes) {
      throw new ConsentryError("invalid_argument", `record custom event: more than ${LIMITS.maxAttributes} attributes`);
    }
    const out: Record<string, MessageInitShape<typeof AttributeValueSchema>> = {};
    for (const k of keys) {
      if (!validName(k, false)) {
        throw new ConsentryError("invalid_argument", `record custom event: attribute keys must be 1-${LIMITS.maxNameBytes} letters, digits, '.', '_' or '-'`);
      }
      out[k] = attributeValue(k, attributes[k]!);
    }
    this.crumb(BreadcrumbType.CUSTOM, name, GestureType.UNSPECIFIED);
    await this.record("analytics", { payload: { case: "custom", value: { name, attributes: out } } });
  }

  /** recordDiagnostic records a performance or health measurement (analytics). */
  async recordDiagnostic(
    kind: DiagnosticKindName,
    options: { durationMs?: number; startType?: "cold" | "warm" | "hot"; networkType?: "none" | "wifi" | "cellular" | "ethernet" | "other"; memoryBytes?: number } = {},
  ): Promise<void> {
    this.checkOpen("record diagnostic");
    const k = enumOf(DiagnosticKind, kind);
    if (k === undefined) {
      throw new ConsentryError("invalid_argument", "record diagnostic: kind must be app_start, memory_warning, network_change, hang, low_storage or thermal");
    }
    const startType = options.startType === undefined ? 0 : enumOf(AppStartType, options.startType);
    const networkType = options.networkType === undefined ? 0 : enumOf(NetworkType, options.networkType);
    if (startType === undefined || networkType === undefined) {
      throw new ConsentryError("invalid_argument", "record diagnostic: startType must be cold, warm or hot; networkType none, wifi, cellular, ethernet or other");
    }
    const durationMs = options.durationMs ?? 0;
    const memoryBytes = options.memoryBytes ?? 0;
    if (!isUint32(durationMs) || !Number.isSafeInteger(memoryBytes) || memoryBytes < 0) {
      throw new ConsentryError("invalid_argument", "record diagnostic: durationMs must be 0 to 2^32-1 and memoryBytes a whole number, 0 or more");
    }
    await this.record("analytics", {
      payload: { case: "diagnostic", value: { kind: k, durationMs, startType, networkType, memoryBytes: BigInt(memoryBytes) } },
    });
  }

  /**
   * recordCrash records a crash or a handled exception (crash_reports),
   * with the error's type, message and parsed stack, and, with the
   * analytics scope, the last breadcrumbs. The message is free text: the
   * collector scrubs it.
   */
  async recordCrash(
    error: unknown,
    options: { handled?: boolean; appState?: AppStateName; fingerprint?: string; thread?: string } = {},
  ): Promise<void> {
    this.checkOpen("record crash");
    let appState = this.appState;
    if (options.appState !== undefined) {
      const v = enumOf(AppState, options.appState);
      if (v === undefined) {
        throw new ConsentryError("invalid_argument", "record crash: appState must be foreground, background, launching or terminating");
      }
      appState = v;
    }
    if (!this.covers("crash_reports")) {
      return;
    }
    const { type, message, stack } = errorParts(error);
    const t = now();
    const breadcrumbs = this.covers("analytics")
      ? this.crumbs.map((b) => ({ type: b.type, name: b.name, gestureType: b.gesture, offsetMs: BigInt(Math.max(0, Math.round(t - b.mono))) }))
      : [];
    await this.record("crash_reports", {
      payload: {
        case: "crash",
        value: {
          exceptionType: truncateUtf8(type, LIMITS.maxNameBytes),
          message: truncateUtf8(message, LIMITS.maxTextBytes),
          frames: parseStack(stack, this.s.inApp),
          thread: truncateUtf8(options.thread ?? "main", LIMITS.maxNameBytes),
          handled: options.handled ?? false,
          appState,
          fingerprint: truncateUtf8(options.fingerprint ?? "", LIMITS.maxNameBytes),
          breadcrumbs,
        },
      },
    });
  }

  /**
   * captureUncaughtErrors records the errors nothing caught, as crashes
   * (crash_reports), until the returned function is called:
   *
   * - React Native: through ErrorUtils' global handler. On a fatal error
   *   the previous handler (which ends the app) is called once the crash
   *   is in storage, or after timeoutMs (default 1000) at the latest; it is
   *   sent on the next start.
   * - Browsers and web views: the window's "error" and
   *   "unhandledrejection" events, recorded as crashes the app survived
   *   (handled false, app state as it is).
   *
   * Elsewhere (Node.js) it installs nothing: record with recordCrash.
   */
  captureUncaughtErrors(options: { timeoutMs?: number; target?: EventTarget } = {}): () => void {
    this.checkOpen("capture uncaught errors");
    const timeoutMs = options.timeoutMs ?? 1000;
    const g = globalThis as {
      ErrorUtils?: {
        getGlobalHandler(): (error: unknown, isFatal?: boolean) => void;
        setGlobalHandler(h: (error: unknown, isFatal?: boolean) => void): void;
      };
      addEventListener?: unknown;
    };
    const record = (err: unknown, fatal: boolean): Promise<void> =>
      this.closed
        ? Promise.resolve()
        : this.recordCrash(err, fatal ? { appState: "terminating" } : {}).catch((e: unknown) => this.log("warn", `uncaught error not recorded: ${summary(e)}`));
    const eu = g.ErrorUtils;
    if (eu && !options.target) {
      const prev = eu.getGlobalHandler();
      const handler = (error: unknown, isFatal?: boolean): void => {
        const done = record(error, isFatal ?? false);
        if (!isFatal) {
          prev(error, isFatal);
          return;
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        void Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]).then(() => {
          clearTimeout(timer);
          prev(error, isFatal);
        });
      };
      eu.setGlobalHandler(handler);
      return () => {
        if (eu.getGlobalHandler() === handler) {
          eu.setGlobalHandler(prev);
        }
      };
    }
    const target = options.target ?? (typeof g.addEventListener === "function" ? (globalThis as unknown as EventTarget) : undefined);
    if (!target) {
      return () => undefined;
    }
    type Uncaught = { error?: unknown; message?: string; reason?: unknown };
    const onError = ((e: Uncaught) => void record(e.error ?? new Error(e.message ?? "uncaught error"), false)) as unknown as EventListener;
    const onRejection = ((e: Uncaught) => void record(e.reason, false)) as unknown as EventListener;
    target.addEventListener("error", onError);
    target.addEventListener("unhandledrejection", onRejection);
    return () => {
      target.removeEventListener("error", onError);
      target.removeEventListener("unhandledrejection", onRejection);
    };
  }

  /**
   * setLocation keeps an approximate location, rounded at once to one
   * decimal (about 11 km), in memory only, sent with batches while the
   * consent has the location scope. Without it the collector may derive a
   * country and region from the connection (also only with that scope).
   */
  setLocation(latitude: number, longitude: number): void {
    this.checkOpen("set location");
    if (!(latitude >= -90 && latitude <= 90 && longitude >= -180 && longitude <= 180)) {
      throw new ConsentryError("invalid_argument", "set location: latitude must be -90 to 90 and longitude -180 to 180");
    }
    if (!this.covers("location")) {
      return;
    }
    const round = (v: number) => Math.round(v * 10) / 10 || 0; // no negative zero
    this.location = { $typeName: "consentry.v1.CoarseLocation", latitude: round(latitude), longitude: round(longitude), countryCode: "", regionCode: "" };
  }

  /** clearLocation forgets the location. */
  clearLocation(): void {
    this.location = null;
  }

  /**
   * flush sends everything queued now, and pending revocations. It
   * rejects with the first failure; events that could not be sent stay
   * queued and are retried.
   */
  async flush(): Promise<void> {
    this.checkOpen("flush");
    await this.flushLocked();
  }

  private async flushLocked(): Promise<void> {
    await this.writePending();
    await this.sendMu.run(async () => {
      const wait = this.pushbackUntil - Date.now();
      if (wait > 0) {
        throw new ConsentryError("unavailable", `flush: the collector asked to wait ${wait} ms more`);
      }
      if (this.st.revocations.length > 0) {
        await this.deliverRevocations("");
      }
      await this.send(true);
    });
  }

  /** stats returns counters since open. */
  stats(): Stats & { queued: number } {
    return { ...this.counters, queued: this.queue.events + this.pending.length };
  }

  /**
   * close stops the client: what is recorded is in storage; it tries to
   * send it within closeTimeoutMs (what is not sent goes on the next
   * open), then stops all timers.
   */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    await this.writePending();
    if (this.s.closeTimeoutMs > 0 && ((this.queue.events > 0 && this.st.token !== "") || this.st.revocations.length > 0)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.s.closeTimeoutMs);
      });
      await Promise.race([this.flushLocked().catch(() => undefined), timeout]);
      clearTimeout(timer);
    }
    this.closed = true;
    clearTimeout(this.timer);
    this.genAbort.abort();
    inUse.get(this.s.storage)?.delete(this.s.storagePrefix);
  }

  // ---- recording ----

  private covers(scope: Scope): boolean {
    return this.st.token !== "" && Date.now() < this.st.expiresAtMs && this.st.scopes.includes(scope);
  }

  private crumb(type: BreadcrumbType, name: string, gesture: GestureType): void {
    if (this.s.maxBreadcrumbs === 0 || !this.covers("analytics")) {
      return;
    }
    this.crumbs.push({ type, name: truncateUtf8(name, LIMITS.maxBreadcrumbBytes), gesture, mono: now() });
    if (this.crumbs.length > this.s.maxBreadcrumbs) {
      this.crumbs.shift();
    }
  }

  private record(scope: Scope, init: MessageInitShape<typeof EventSchema>): Promise<void> {
    if (!this.covers(scope)) {
      return Promise.resolve();
    }
    const event = create(EventSchema, {
      ...init,
      eventId: randomBytes(this.s.crypto, 16),
      createdAtUnixMs: BigInt(Date.now()),
    });
    const bin = toBinary(EventSchema, event);
    return new Promise((resolve, reject) => {
      this.pending.push({ item: { event: bin, mono: now(), proc: this.proc }, gen: this.gen, resolve, reject });
      if (!this.writeScheduled) {
        this.writeScheduled = true;
        queueMicrotask(() => void this.writePending().catch(() => undefined));
      }
    });
  }

  /** writePending writes the recorded events to the queue: one segment per batch's worth. */
  private writePending(): Promise<void> {
    return this.storageMu.run(async () => {
      this.writeScheduled = false;
      const batch = this.pending.splice(0);
      if (batch.length === 0) {
        return;
      }
      const live = batch.filter((p) => p.gen === this.gen); // the rest: the consent ended since
      try {
        let seg: QueuedEvent[] = [];
        let bytes = 0;
        for (const p of live) {
          if (seg.length > 0 && (seg.length >= this.s.maxBatchEvents || bytes + p.item.event.length > this.s.maxBatchBytes)) {
            await this.appendMakingRoom(seg);
            seg = [];
            bytes = 0;
          }
          seg.push(p.item);
          bytes += p.item.event.length;
        }
        await this.appendMakingRoom(seg);
        this.counters.recorded += live.length;
        const evicted = await this.queue.evict(this.s.maxQueueBytes);
        if (evicted > 0) {
          this.counters.evicted += evicted;
          this.log("warn", `queue full: dropped the ${evicted} oldest events`);
        }
      } catch (err) {
        for (const p of batch) {
          p.reject(storageFailure("record", err));
        }
        return;
      }
      for (const p of batch) {
        p.resolve();
      }
      if (this.fullBatchQueued()) {
        this.schedule(0);
      }
    });
  }

  /**
   * appendMakingRoom appends events to the queue; when the storage is
   * full (the app's own data can fill it: localStorage's 5 MB per origin,
   * AsyncStorage's 6 MB on Android), it drops the oldest half of the
   * queue, as beyond maxQueueBytes, and tries once more.
   */
  private async appendMakingRoom(events: QueuedEvent[]): Promise<void> {
    await this.makingRoom(() => this.queue.append(events, this.st.epoch, this.data));
  }

  /**
   * makingRoom runs write; when the storage is full, it drops the oldest
   * half of the queue (counted as evicted; see Queue.makeRoom) and runs
   * write once more.
   */
  private async makingRoom(write: () => Promise<void>): Promise<void> {
    try {
      await write();
      return;
    } catch (err) {
      if (!storageFull(err)) {
        throw err;
      }
      const evicted = await this.queue.makeRoom(this.data);
      if (evicted === 0) {
        throw err;
      }
      this.counters.evicted += evicted;
      this.log("warn", `storage full: dropped the ${evicted} oldest queued events to make room`);
    }
    await write();
  }

  // ---- consent state ----

  /**
   * saveState saves next (the state, then its copy: see StateStore.save)
   * and makes it the state; on a full storage it makes room as a record
   * does. When it fails, storage holds the state from before the call.
   */
  private async saveState(next: State): Promise<void> {
    const sealed = await this.store.seal(next);
    await this.makingRoom(() => this.store.save(sealed));
    this.st = next;
  }

  /**
   * purgeLocked saves next with a new epoch and data key, then deletes the
   * queue: a segment a crash leaves behind can no longer be decrypted.
   * next is the state in memory from then on, saved or not: the consent
   * ends on the device even when the storage fails. On a full storage the
   * purge frees the queue's room for the state; where the queue held
   * none, the old state and its copy are removed before the new ones are
   * written (no stored state reads as no consent on the next start; a
   * state without its copy stands, and is copied on the next start).
   */
  private async purgeLocked(next: State): Promise<void> {
    const fresh = newState(this.s.crypto, this.st.epoch + 1);
    const st: State = { ...next, epoch: fresh.epoch, dataKey: fresh.dataKey };
    const sealed = await this.store.seal(st);
    let saveErr: unknown = null;
    try {
      await this.store.save(sealed);
    } catch (err) {
      saveErr = err;
    }
    this.st = st;
    this.data = await Sealer.create(this.s.crypto, base64Decode(fresh.dataKey));
    await this.queue.purge();
    if (saveErr === null) {
      return;
    }
    if (!storageFull(saveErr)) {
      throw saveErr;
    }
    try {
      await this.store.save(sealed);
      return;
    } catch {
      // still full: make the old state's room the new one's
    }
    switch (await this.store.replace(sealed)) {
      case 0:
        this.log("warn", "storage full: the ended consent could not be saved; none is stored, and a pending revocation is retried only while the app runs");
        break;
      case 1:
        this.log("warn", "storage full: the ended consent is saved without its copy; the next start makes the copy");
        break;
    }
  }

  /**
   * stopConsent ends the current consent on the device: nothing more is
   * recorded or sent under it from the moment it is called (records not
   * yet written are dropped, the request in flight is aborted); then the
   * state is saved without the token, as ended, with revoke added to the
   * pending revocations, the queue purged, and the session, location and
   * breadcrumbs forgotten.
   */
  private async stopConsent(ended: "revoked" | "expired", revoke?: { token: string; erase: boolean }): Promise<void> {
    this.gen++;
    this.genAbort.abort();
    this.genAbort = new AbortController();
    try {
      await this.storageMu.run(() =>
        this.purgeLocked({
          ...this.st,
          token: "",
          scopes: [],
          expiresAtMs: 0,
          ended,
          revocations: revoke ? [...this.st.revocations, revoke] : this.st.revocations,
        }),
      );
    } finally {
      this.session = null;
      this.location = null;
      this.crumbs = [];
    }
  }

  /** endConsent ends the consent of token when the collector reports it revoked, expired or invalid. */
  private async endConsent(token: string, state: ConsentState): Promise<void> {
    if (this.st.token !== token || token === "") {
      return;
    }
    const ended = state === ConsentState.REVOKED ? "revoked" : "expired";
    await this.stopConsent(ended);
    this.log("warn", `consent ${ended}: queue purged, recording stopped`);
    try {
      this.s.onConsentEnded?.(ended);
    } catch {
      // the app's callback must not stop the SDK
    }
  }

  /**
   * deliverRevocations sends the pending revocations, oldest first, and
   * forgets each once the collector confirms it or refuses it for good (a
   * token expired or invalid is refused anyway). It returns the response
   * for want, if delivered, and throws the first other failure.
   */
  private deliverRevocations(want: string) {
    return this.revMu.run(async () => {
      let found: Awaited<ReturnType<Transport["revoke"]>> | undefined;
      for (const p of [...this.st.revocations]) {
        try {
          const resp = await this.tr.revoke(create(RevokeRequestSchema, { consentToken: p.token, erase: p.erase }));
          if (p.token === want) {
            found = resp;
          }
        } catch (err) {
          if (!(err instanceof ConsentryError && err.call && permanent(err.call))) {
            throw err;
          }
          this.log("warn", `revocation refused for good (${summary(err)}); forgotten`);
        }
        await this.storageMu.run(() =>
          this.saveState({ ...this.st, revocations: this.st.revocations.filter((r) => r.token !== p.token) }),
        );
      }
      return found;
    });
  }

  // ---- sending ----

  private fullBatchQueued(): boolean {
    return this.queue.events >= this.s.maxBatchEvents || this.queue.bytes >= this.s.maxBatchBytes;
  }

  /** schedule runs the sender after delay ms at the latest. */
  private schedule(delay: number): void {
    if (this.closed) {
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), Math.max(0, delay));
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** tick is the sender: it delivers revocations, sends what is due, and schedules itself again. */
  private async tick(): Promise<void> {
    if (this.closed) {
      return;
    }
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      let t = Date.now();
      if (this.st.token && t >= this.st.expiresAtMs) {
        await this.endConsent(this.st.token, ConsentState.EXPIRED);
      }
      if (this.st.revocations.length > 0 && t >= this.revAt && t >= this.pushbackUntil) {
        try {
          await this.deliverRevocations("");
          this.revAttempt = 0;
        } catch (err) {
          this.revAt = Date.now() + this.backoff(++this.revAttempt, err);
          this.log("debug", `revocation not delivered (${summary(err)}); retrying`);
        }
      }
      t = Date.now();
      if (t >= this.nextDrain) {
        this.drain = true;
        this.nextDrain = t + this.s.flushIntervalMs;
      }
      if (t >= this.retryAt && t >= this.pushbackUntil && (this.drain || this.fullBatchQueued())) {
        await this.sendMu.run(() => this.send(this.drain)).catch(() => undefined);
      }
    } catch (err) {
      this.log("error", `sender: ${summary(err)}`); // storage failed: try again at the next wake
    } finally {
      this.ticking = false;
    }
    let wake = this.nextDrain;
    if (this.st.revocations.length > 0) {
      wake = Math.min(wake, Math.max(this.revAt, this.pushbackUntil));
    }
    if (this.drain) {
      wake = Math.min(wake, Math.max(this.retryAt, this.pushbackUntil));
    }
    if (this.again) {
      this.again = false;
      wake = Date.now();
    }
    this.schedule(wake - Date.now());
  }

  /** send sends queued batches and keeps the backoff; the caller holds sendMu. */
  private async send(all: boolean): Promise<void> {
    try {
      await this.sendQueued(all);
    } catch (err) {
      if (err instanceof ConsentryError && err.kind === "unavailable") {
        this.attempt++;
        this.retryAt = Date.now() + this.backoff(this.attempt, err);
        this.drain = true;
        this.counters.retries++;
        this.log("debug", `send failed (${summary(err)}); retrying`);
      }
      throw err;
    }
    this.attempt = 0;
    this.retryAt = 0;
    if (all) {
      this.drain = false;
    }
  }

  /**
   * backoff is the wait before retry n: exponential from minBackoffMs to
   * maxBackoffMs with full jitter, and at least the collector's pushback,
   * which also holds flush back.
   */
  private backoff(n: number, err: unknown): number {
    const ceiling = Math.min(this.s.maxBackoffMs, this.s.minBackoffMs * 2 ** Math.min(n - 1, 40));
    let d = Math.max(Math.floor(Math.random() * (ceiling + 1)), this.s.minBackoffMs);
    const pushback = err instanceof ConsentryError ? (err.call?.retryAfterMs ?? 0) : 0;
    if (pushback > 0) {
      const p = Math.min(pushback, MAX_PUSHBACK_MS);
      this.pushbackUntil = Date.now() + p;
      d = Math.max(d, p);
    }
    return d;
  }

  /**
   * sendQueued sends batches from the head of the queue: all of it, or
   * while a full batch is queued. It goes on past a batch refused for
   * good (throwing that at the end) and stops at the first other failure.
   */
  private async sendQueued(all: boolean): Promise<void> {
    let refused: unknown;
    while (!this.closed) {
      const token = this.st.token;
      if (!token || Date.now() >= this.st.expiresAtMs || (!all && !this.fullBatchQueued())) {
        break;
      }
      const gen = this.gen;
      const items: QueuedEvent[] = [];
      // Under the lock: an append in progress could add to a segment
      // after head counted it.
      const segs = await this.storageMu.run(async () => {
        const segs = this.queue.head(this.s.maxBatchEvents, this.s.maxBatchBytes);
        for (const seg of segs) {
          const got = seg.epoch === this.st.epoch ? await this.queue.read(seg, this.data) : [];
          if (got === null) {
            this.counters.unreadable += seg.n;
            this.log("warn", `${seg.n} queued events unreadable; dropped`);
          } else {
            items.push(...got);
          }
        }
        return segs;
      });
      if (segs.length === 0) {
        break;
      }
      if (gen !== this.gen) {
        break; // the consent ended while reading
      }
      try {
        await this.sendBatch(token, gen, segs, items);
      } catch (err) {
        if (err instanceof ConsentryError && err.kind === "rejected") {
          refused ??= err;
          continue;
        }
        throw err;
      }
    }
    if (refused) {
      throw refused;
    }
  }

  /** sendBatch sends items, the events of segs, and removes segs once the collector took them or refused them for good. */
  private async sendBatch(token: string, gen: number, segs: Segment[], items: QueuedEvent[]): Promise<void> {
    const t = Date.now();
    const mono = now();
    const events: Event[] = [];
    for (const it of items) {
      let e: Event;
      try {
        e = fromBinary(EventSchema, it.event);
      } catch {
        this.counters.unreadable++;
        continue;
      }
      if (Number(e.createdAtUnixMs) < t - this.s.maxEventAgeMs) {
        this.counters.tooOld++;
        continue;
      }
      if (!this.st.scopes.includes(e.payload.case === "crash" ? "crash_reports" : "analytics")) {
        this.counters.outOfScope++;
        continue;
      }
      e.ageMs = it.proc === this.proc ? BigInt(Math.max(0, Math.round(mono - it.mono))) : undefined;
      events.push(e);
    }
    let refused: ConsentryError | undefined;
    const post = async (part: Event[]): Promise<void> => {
      let resp: IngestResponse;
      try {
        resp = await this.tr.ingest(
          create(IngestRequestSchema, { consentToken: token, device: this.device(), sentAtUnixMs: BigInt(Date.now()), events: part }),
          this.genAbort.signal,
        );
      } catch (err) {
        if (gen !== this.gen) {
          throw new ConsentryError("consent_ended", "send: consent ended while sending");
        }
        if (!(err instanceof ConsentryError) || !err.call || !permanent(err.call)) {
          throw err;
        }
        if (tooLarge(err.call) && part.length > 1) {
          this.log("debug", `batch of ${part.length} events too large; splitting`);
          const mid = Math.ceil(part.length / 2);
          await post(part.slice(0, mid));
          await post(part.slice(mid));
          return;
        }
        this.counters.refused += part.length;
        this.log("warn", `batch of ${part.length} events refused (${summary(err)}); dropped, not retried`);
        refused ??= err;
        return;
      }
      const ended = consentEnded(resp);
      if (ended !== ConsentState.UNSPECIFIED) {
        await this.endConsent(token, ended);
        throw new ConsentryError("consent_ended", `send: the collector reports the consent ${ConsentState[ended].toLowerCase()}`);
      }
      this.counters.accepted += resp.accepted;
      this.counters.droppedByCollector += resp.dropped;
      this.counters.batches++;
    };
    if (events.length > 0) {
      await post(events);
    }
    await this.storageMu.run(() => this.queue.remove(segs.map((s) => s.id)));
    if (refused) {
      throw refused;
    }
  }

  private device(): DeviceContext {
    const s = this.s;
    const dev = create(DeviceContextSchema, {
      appId: s.appId,
      appVersion: s.appVersion,
      appBuild: s.appBuild,
      sdkVersion: SDK_VERSION,
      deviceClass: s.deviceClass ? (enumOf(DeviceClass, s.deviceClass) ?? 0) : 0,
      deviceModel: s.deviceModel,
      osName: s.osName ? (enumOf(OsName, s.osName) ?? 0) : 0,
      osVersion: s.osVersion,
      locale: coarseLocale(s.locale),
    });
    if (this.location && this.st.scopes.includes("location")) {
      dev.location = this.location;
    }
    return dev;
  }

  private checkOpen(op: string): void {
    if (this.closed) {
      throw new ConsentryError("closed", `${op}: client closed`);
    }
  }

  private log(level: LogLevel, msg: string): void {
    this.s.logger?.(level, msg);
  }
}

/** consentEnded returns the consent state a response reports if the consent is no longer usable, else UNSPECIFIED. */
function consentEnded(resp: IngestResponse): ConsentState {
  switch (resp.consentState) {
    case ConsentState.REVOKED:
    case ConsentState.EXPIRED:
    case ConsentState.INVALID:
    case ConsentState.MISSING:
      return resp.consentState;
  }
  for (const d of resp.drops) {
    switch (d.reason) {
      case DropReason.CONSENT_REVOKED:
        return ConsentState.REVOKED;
      case DropReason.CONSENT_EXPIRED:
        return ConsentState.EXPIRED;
      case DropReason.CONSENT_INVALID:
      case DropReason.CONSENT_WRONG_APP:
      case DropReason.CONSENT_MISSING:
        return ConsentState.INVALID;
    }
  }
  return ConsentState.UNSPECIFIED;
}

/** now is the monotonic clock, in ms. */
function now(): number {
  return performance.now();
}

function isUint32(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff;
}

function screenRule(op: string): string {
  return `${op}: a screen name must be at most ${LIMITS.maxNameBytes} letters, digits, '.', '_', '-', '/', ':' or spaces`;
}

function attributeValue(key: string, v: AttributeValue): MessageInitShape<typeof AttributeValueSchema> {
  switch (typeof v) {
    case "string":
      return { value: { case: "stringValue", value: truncateUtf8(v, LIMITS.maxTextBytes) } };
    case "boolean":
      return { value: { case: "boolValue", value: v } };
    case "bigint":
      if (v < -(2n ** 63n) || v >= 2n ** 63n) {
        break;
      }
      return { value: { case: "intValue", value: v } };
    case "number":
      if (!Number.isFinite(v)) {
        break;
      }
      return { value: Number.isSafeInteger(v) ? { case: "intValue", value: BigInt(v) } : { case: "doubleValue", value: v } };
  }
  throw new ConsentryError("invalid_argument", `record custom event: attribute ${JSON.stringify(key)} must be a string, a finite number, a 64-bit bigint or a boolean`);
}

/**
 * tokenLifetimeMs returns how long a consent token is valid, from its
 * claims (a compact JWS whose payload has iat and exp, in seconds), or 0
 * when they cannot be read or make no sense (over ten years).
 */
export function tokenLifetimeMs(token: string): number {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) {
    return 0;
  }
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(new TextDecoder().decode(base64Decode(b64 + "=".repeat((4 - (b64.length % 4)) % 4)))) as {
      iat?: unknown;
      exp?: unknown;
    };
    const { iat, exp } = claims;
    if (typeof iat !== "number" || typeof exp !== "number" || iat <= 0 || exp <= iat || exp - iat > 10 * 365 * 24 * 3600) {
      return 0;
    }
    return (exp - iat) * 1000;
  } catch {
    return 0;
  }
}

/** coarseLocale keeps a BCP 47 tag's language and region, e.g. "de-AT" of "de-Latn-AT-u-ca-buddhist". */
export function coarseLocale(tag: string): string {
  const m = /^([A-Za-z]{2,3})(?:[-_][A-Za-z]{4})?(?:[-_]([A-Za-z]{2}|\d{3}))?(?:[-_]|$)/.exec(tag);
  if (!m) {
    return "";
  }
  return m[2] ? `${m[1]!.toLowerCase()}-${m[2].toUpperCase()}` : m[1]!.toLowerCase();
}
