import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";

/** The size of every key: AES-256. */
export const KEY_SIZE = 32;
const NONCE_SIZE = 12;
const encoder = new TextEncoder();

/**
 * Sealer encrypts what the SDK stores with AES-256-GCM (WebCrypto). A
 * sealed value is the base64 of a random 12-byte nonce followed by the
 * ciphertext and tag; its label (what the value is) is the additional
 * authenticated data, so a queue segment cannot pass for the consent
 * state or the reverse.
 */
export class Sealer {
  private constructor(
    private readonly subtle: SubtleCrypto,
    private readonly random: (b: Uint8Array) => Uint8Array,
    private readonly key: CryptoKey,
  ) {}

  /** create returns a Sealer for a 32-byte key. */
  static async create(crypto: Crypto, raw: Uint8Array): Promise<Sealer> {
    if (raw.length !== KEY_SIZE) {
      throw new Error(`key has ${raw.length} bytes, want ${KEY_SIZE}`);
    }
    const key = await crypto.subtle.importKey("raw", plainBuffer(raw), { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
    return new Sealer(crypto.subtle, (b) => crypto.getRandomValues(b), key);
  }

  /** seal encrypts plain under label. */
  async seal(label: string, plain: Uint8Array): Promise<string> {
    const nonce = this.random(new Uint8Array(NONCE_SIZE));
    const ct = new Uint8Array(
      await this.subtle.encrypt({ name: "AES-GCM", iv: plainBuffer(nonce), additionalData: encoder.encode(label) }, this.key, plainBuffer(plain)),
    );
    const out = new Uint8Array(NONCE_SIZE + ct.length);
    out.set(nonce);
    out.set(ct, NONCE_SIZE);
    return base64Encode(out);
  }

  /** open decrypts a sealed value; it throws if the value was changed or sealed under another key or label. */
  async open(label: string, sealed: string): Promise<Uint8Array> {
    const b = base64Decode(sealed);
    if (b.length < NONCE_SIZE + 16) {
      throw new Error("sealed value truncated");
    }
    return new Uint8Array(
      await this.subtle.decrypt(
        { name: "AES-GCM", iv: plainBuffer(b.subarray(0, NONCE_SIZE)), additionalData: encoder.encode(label) },
        this.key,
        plainBuffer(b.subarray(NONCE_SIZE)),
      ),
    );
  }
}

/** plainBuffer returns b over a plain ArrayBuffer, as WebCrypto, Blob and fetch take it. */
export function plainBuffer(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);
}

/** randomBytes returns n random bytes. */
export function randomBytes(crypto: Crypto, n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}
