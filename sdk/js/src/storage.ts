/**
 * Storage is where the SDK keeps its consent state and its queue: string
 * values under string keys. React Native's AsyncStorage and the browser's
 * localStorage fit it as they are. Every value the SDK writes is
 * encrypted, but for the key items (the key and its copy) when no
 * encryptionKey is configured.
 */
export interface Storage {
  getItem(key: string): Promise<string | null> | string | null;
  setItem(key: string, value: string): Promise<void> | void;
  removeItem(key: string): Promise<void> | void;
}

/** MemoryStorage keeps items in memory: nothing survives the process. */
export class MemoryStorage implements Storage {
  /** The items, by key (for tests and inspection). */
  readonly items = new Map<string, string>();

  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }

  removeItem(key: string): void {
    this.items.delete(key);
  }
}
