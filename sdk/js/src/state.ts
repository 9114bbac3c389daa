import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import type { LogLevel } from "./config.js";
import { ConsentryError, storageFailure, summary } from "./errors.js";
import { KEY_SIZE, randomBytes, Sealer } from "./seal.js";
import type { Storage } from "./storage.js";
import type { Scope } from "./wire.js";

/**
 * COPY_SUFFIX names the second copy of a value the SDK cannot lose: the
 * consent state's and the generated key's ("<prefix>state.copy",
 * "<prefix>key.copy"). A lost pending revocation is an erasure the
 * collector never hears of.
 */
export const COPY_SUFFIX = ".copy";

/** The consent state, sealed whole under <prefix>state and its copy. */
export interface State {
  v: 1;
  /**
   * Numbers the saves (see StateStore): of the state and its copy, the
   * one with the higher seq is the newer. Absent (0) in the storage of
   * versions that kept no copy.
   */
  seq?: number;
  token: string;
  scopes: Scope[];
  expiresAtMs: number;
  ended: "" | "revoked" | "expired";
  epoch: number;
  /** The current epoch's data key, base64. */
  dataKey: string;
  revocations: { token: string; erase: boolean }[];
}

/** The label the state is sealed under. */
const STATE_LABEL = "consentry.state.v1";

/** newState returns a state without consent for the queue epoch epoch, with a fresh data key. */
export function newState(crypto: Crypto, epoch: number): State {
  return {
    v: 1,
    token: "",
    scopes: [],
    expiresAtMs: 0,
    ended: "",
    epoch,
    dataKey: base64Encode(randomBytes(crypto, KEY_SIZE)),
    revocations: [],
  };
}

/** withCopy returns the storage key key and its copy's. */
export function withCopy(key: string): [string, string] {
  return [key, key + COPY_SUFFIX];
}

/** Repair is what an open put right from the copies, for its log. */
export interface Repair {
  /** The storage keys rewritten: their values were missing, damaged or older than their copy's. */
  restored: string[];
  /** One of them was there (damaged or older), not only missing. */
  damaged: boolean;
  /** Why values could not be rewritten (a full storage): read from their copy all the same. */
  errors: unknown[];
}

/** joinRepairs returns what a and b put right. */
export function joinRepairs(a: Repair, b: Repair): Repair {
  return { restored: [...a.restored, ...b.restored], damaged: a.damaged || b.damaged, errors: [...a.errors, ...b.errors] };
}

/**
 * logRepair logs what an open put right: at warn when a value was
 * damaged or older than its copy; at info when copies were only missing,
 * as in the storage of an earlier version (or after the app ended
 * between writing a new key and its copy).
 */
export function logRepair(logger: ((level: LogLevel, msg: string) => void) | undefined, r: Repair): void {
  const names = r.restored.join(", ");
  if (r.damaged) {
    logger?.("warn", `storage: ${names} damaged, lost or behind its copy; restored from the copy`);
  } else if (r.restored.length > 0) {
    logger?.("info", `storage: ${names} written from its copy`);
  }
  if (r.errors.length > 0) {
    logger?.("warn", `storage: a lost or damaged value could not be restored; read from its copy: ${r.errors.map(summary).join("; ")}`);
  }
}

/**
 * restore writes want under each of keys whose value (in raw) is not
 * want, and returns what it did.
 */
async function restore(storage: Storage, keys: readonly string[], raw: readonly (string | null)[], want: string): Promise<Repair> {
  const r: Repair = { restored: [], damaged: false, errors: [] };
  for (const [i, key] of keys.entries()) {
    const had = raw[i] ?? null;
    if (had === want) {
      continue;
    }
    try {
      await storage.setItem(key, want);
    } catch (err) {
      r.errors.push(err);
      continue;
    }
    r.restored.push(key);
    r.damaged ||= had !== null;
  }
  return r;
}

/** readBoth returns the values under keys, null where there is none. */
async function readBoth(storage: Storage, keys: readonly [string, string]): Promise<[string | null, string | null]> {
  return [await storage.getItem(keys[0]), await storage.getItem(keys[1])];
}

/** decodeKey returns the 32-byte key a stored key value holds, or null if it holds none. */
function decodeKey(v: string): Uint8Array | null {
  try {
    const key = base64Decode(v);
    return key.length === KEY_SIZE ? key : null;
  } catch {
    return null;
  }
}

/**
 * loadMasterKeys returns the candidates for the master key: the
 * configured encryptionKey if there is one; otherwise the generated key,
 * kept under <prefix>key and its copy, both written if neither is there
 * (it rejects with the storage's failure if either cannot be). Where the
 * two differ (one damaged), both are candidates, <prefix>key's first:
 * the one that opens the consent state is the key (see openState), and
 * repairMasterKey puts the other value right. It rejects with
 * "state_unreadable" when a key is stored but neither value holds one.
 */
export async function loadMasterKeys(storage: Storage, prefix: string, crypto: Crypto, configured?: Uint8Array): Promise<Uint8Array[]> {
  if (configured) {
    return [configured];
  }
  const keys = withCopy(prefix + "key");
  const raw = await readBoth(storage, keys);
  const found = new Map<string, Uint8Array>(); // by base64: one candidate where both hold the key
  for (const v of raw) {
    const key = v === null ? null : decodeKey(v);
    if (key) {
      found.set(base64Encode(key), key);
    }
  }
  if (found.size > 0) {
    return [...found.values()];
  }
  if (raw[0] !== null || raw[1] !== null) {
    throw new ConsentryError("state_unreadable", "the stored key is damaged, and so is its copy; call Consentry.deleteStorage");
  }
  const key = randomBytes(crypto, KEY_SIZE);
  for (const k of keys) {
    try {
      await storage.setItem(k, base64Encode(key));
    } catch (err) {
      throw storageFailure("open", err);
    }
  }
  return [key];
}

/**
 * repairMasterKey rewrites whichever of the generated key's two values
 * does not hold master as it was written (missing, damaged, or changed in
 * a way that decodes the same), and returns what it did.
 */
export async function repairMasterKey(storage: Storage, prefix: string, master: Uint8Array): Promise<Repair> {
  const keys = withCopy(prefix + "key");
  return restore(storage, keys, await readBoth(storage, keys), base64Encode(master));
}

/** What openState found. */
export interface OpenedState {
  store: StateStore;
  /** The candidate key that opens the state. */
  master: Uint8Array;
  st: State;
  /** What was put right from the copy. */
  repair: Repair;
}

/** A stored state value that opened. */
interface Opened {
  st: State;
  /** The value as it was written (base64 that decodes the same may differ). */
  sealed: string;
}

/**
 * openState reads the consent state with the first of masters that opens
 * <prefix>state or its copy (a generated key may have two candidates, see
 * loadMasterKeys), taking the newer state (the higher seq) where both
 * open, and rewrites a value that is missing, does not open or holds the
 * older state; a failure to rewrite is reported in the repair, and the
 * state read all the same. With neither value there, it saves a new state
 * (a new queue epoch) under masters[0]. With values there that no key
 * opens, it rejects with "state_unreadable".
 */
export async function openState(storage: Storage, prefix: string, crypto: Crypto, masters: readonly Uint8Array[]): Promise<OpenedState> {
  const keys = withCopy(prefix + "state");
  const raw = await readBoth(storage, keys);
  for (const master of masters) {
    const sealer = await Sealer.create(crypto, master);
    const best = newer(await openSealed(sealer, raw[0]), await openSealed(sealer, raw[1]));
    if (best === null) {
      continue;
    }
    const repair = await restore(storage, keys, raw, best.sealed);
    return { store: new StateStore(storage, keys, sealer, best.st.seq ?? 0), master, st: best.st, repair };
  }
  if (raw[0] !== null || raw[1] !== null) {
    throw new ConsentryError(
      "state_unreadable",
      "consent state unreadable, and so is its copy: a different encryptionKey, or damaged storage; pass the earlier key or call Consentry.deleteStorage",
    );
  }
  return firstState(storage, keys, crypto, masters[0]!);
}

/** firstState saves a new state, without consent, under master: the storage has none. */
async function firstState(storage: Storage, keys: readonly [string, string], crypto: Crypto, master: Uint8Array): Promise<OpenedState> {
  const store = new StateStore(storage, keys, await Sealer.create(crypto, master), 0);
  const st = newState(crypto, 1);
  try {
    await store.save(await store.seal(st));
  } catch (err) {
    throw storageFailure("open", err);
  }
  return { store, master, st, repair: { restored: [], damaged: false, errors: [] } };
}

/** newer returns the one of a and b with the higher seq (a on a tie), or null if neither opened. */
function newer(a: Opened | null, b: Opened | null): Opened | null {
  if (a === null || b === null) {
    return a ?? b;
  }
  return (b.st.seq ?? 0) > (a.st.seq ?? 0) ? b : a;
}

/** openSealed decrypts and decodes a stored state value; null if there is none or it does not open. */
async function openSealed(sealer: Sealer, v: string | null): Promise<Opened | null> {
  if (v === null) {
    return null;
  }
  try {
    const sealed = base64Encode(base64Decode(v));
    const st = JSON.parse(new TextDecoder().decode(await sealer.open(STATE_LABEL, sealed))) as State;
    if (base64Decode(st.dataKey).length !== KEY_SIZE) {
      return null;
    }
    return { st, sealed };
  } catch {
    return null;
  }
}

/**
 * StateStore writes the sealed consent state. It is kept twice, under
 * <prefix>state and <prefix>state.copy, written one after the other: a
 * damaged character or a lost value leaves the other, and an open reads
 * the newer of the two that open and puts the other right (openState).
 * Each save carries a number one above the last (seq), so that after the
 * app ended between the two writes the newer state is the one read.
 * Callers serialize every call.
 */
export class StateStore {
  constructor(
    private readonly storage: Storage,
    private readonly keys: readonly [string, string],
    private readonly sealer: Sealer,
    /** The seq of the state last read or sealed. */
    private seq: number,
  ) {}

  /** seal numbers st as the next save (setting its seq) and encrypts it. */
  async seal(st: State): Promise<string> {
    st.seq = ++this.seq;
    return this.sealer.seal(STATE_LABEL, new TextEncoder().encode(JSON.stringify(st)));
  }

  /**
   * save replaces the state with sealed: the state first, then its copy.
   * If the copy cannot be written (a full storage), the state is removed,
   * which needs no room, and the copy's error thrown: the copy keeps the
   * state from before the call, as the error reports (a grant reported
   * failed must not come back after a restart), and the next open puts
   * the state right.
   */
  async save(sealed: string): Promise<void> {
    await this.storage.setItem(this.keys[0], sealed);
    try {
      await this.storage.setItem(this.keys[1], sealed);
    } catch (err) {
      try {
        await this.storage.removeItem(this.keys[0]);
      } catch {
        // the save failed all the same: err says why
      }
      throw err;
    }
  }

  /**
   * replace removes the state and its copy, then writes sealed as both:
   * for a full storage, where the old values' room is what the new ones
   * need. Until the state is written there is none, which an open reads
   * as no consent. It throws if a value cannot be removed, and returns how
   * many of the two it wrote: 0 when the state could not be written
   * (none is stored then), 1 when only its copy could not be (the state
   * stands; the next save or open copies it).
   */
  async replace(sealed: string): Promise<number> {
    for (const k of this.keys) {
      await this.storage.removeItem(k);
    }
    for (const [i, k] of this.keys.entries()) {
      try {
        await this.storage.setItem(k, sealed);
      } catch {
        return i;
      }
    }
    return this.keys.length;
  }
}
