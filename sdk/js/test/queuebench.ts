// queuebench measures what the offline queue writes to storage while an
// app records events one at a time with the collector unreachable, and
// how long sending the backlog takes once it is back:
//
//	npx tsc -p . && node dist/test/queuebench.js [events, default 3000]
//
// It prints one JSON line; the README's figures come from it.
import { Consentry } from "../src/index.js";
import { CountingStorage, FakeCollector, config } from "./fake.js";

const n = Number(process.argv[2] ?? 3000);
const fake = new FakeCollector();
const storage = new CountingStorage();
const c = await Consentry.open(config(fake, storage));
await c.grantConsent(["analytics"]);
fake.offline = true;

const perEvent: number[] = [];
const start = performance.now();
const before = storage.written;
for (let i = 0; i < n; i++) {
  const w = storage.written;
  await c.recordCustom("screen_view", { i });
  perEvent.push(storage.written - w);
}
const recordMs = performance.now() - start;
const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
const window = Math.min(500, n);
const indexBytes = storage.items.get("consentry.queue")?.length ?? 0;
const storageItems = storage.items.size;

fake.offline = false;
const sendStart = performance.now();
await c.flush();
const sendMs = performance.now() - sendStart;
await c.close();

console.log(
  JSON.stringify({
    events: n,
    writtenMB: Number(((storage.written - before) / 1e6).toFixed(1)),
    bytesPerEventFirst: mean(perEvent.slice(0, window)),
    bytesPerEventLast: mean(perEvent.slice(-window)),
    indexBytes,
    storageItems,
    recordMs: Math.round(recordMs),
    sendMs: Math.round(sendMs),
    delivered: fake.events().length,
  }),
);
