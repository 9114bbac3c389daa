import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStack, LIMITS, coarseLocale } from "../src/index.js";
import { retryAfter } from "../src/transport.js";
import { truncateUtf8, validConsentTextVersion, validName } from "../src/wire.js";

describe("parseStack", () => {
  const cases: { name: string; stack: string; want: { function: string; file: string; module: string; line: number; inApp: boolean }[] }[] = [
    {
      name: "V8 (Chrome, Node.js)",
      stack: [
        "TypeError: cannot read properties of undefined",
        "    at NoteEditor.save (/Users/alice/app/src/NoteEditor.js:42:13)",
        "    at async Promise.all (index 0)",
        "    at file:///home/bob/app/main.js:7:1",
        "    at Object.run (/srv/app/node_modules/@scope/lib/index.js:3:9)",
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
      ].join("\n"),
      want: [
        { function: "NoteEditor.save", file: "NoteEditor.js", module: "", line: 42, inApp: true },
        { function: "Promise.all", file: "", module: "", line: 0, inApp: false },
        { function: "", file: "main.js", module: "", line: 7, inApp: true },
        { function: "Object.run", file: "index.js", module: "node_modules/@scope/lib", line: 3, inApp: false },
        { function: "process.processTicksAndRejections", file: "task_queues", module: "node", line: 95, inApp: false },
      ],
    },
    {
      name: "JavaScriptCore (Safari, React Native without Hermes)",
      stack: "save@http://localhost:8081/index.bundle?platform=ios&dev=true:1200:33\nglobal code@http://localhost:8081/index.bundle:9:1\n[native code]",
      want: [
        { function: "save", file: "index.bundle", module: "", line: 1200, inApp: true },
        { function: "global code", file: "index.bundle", module: "", line: 9, inApp: true },
        { function: "", file: "", module: "native", line: 0, inApp: false },
      ],
    },
    {
      name: "Hermes (React Native)",
      stack: "Error: boom\n    at onPress (address at index.android.bundle:1:52345)\n    at anonymous (native)",
      want: [
        { function: "onPress", file: "index.android.bundle", module: "", line: 1, inApp: true },
        { function: "anonymous", file: "", module: "native", line: 0, inApp: false },
      ],
    },
    { name: "no stack", stack: "", want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(parseStack(c.stack), c.want);
    });
  }

  it("keeps no directory of a file, which could name the user", () => {
    for (const f of parseStack("Error\n    at f (/Users/alice.smith/Library/app.js:1:1)\n    at g (C:/Users/bob/app.js:2:2)")) {
      assert.doesNotMatch(f.file + f.module + f.function, /alice|bob/);
    }
  });

  it("takes the app's own rule for in-app frames", () => {
    const frames = parseStack("Error\n    at a (/app/src/a.js:1:1)\n    at b (/app/vendor/b.js:1:1)", (p) => p.includes("/src/"));
    assert.deepEqual(frames.map((f) => f.inApp), [true, false]);
  });

  it("bounds the frames and never throws on arbitrary text", () => {
    const deep = Array.from({ length: 1000 }, (_, i) => `    at f${i} (/a.js:${i}:1)`).join("\n");
    assert.equal(parseStack(deep).length, LIMITS.maxFrames);
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed);
    const alphabet = " \n\t:@()/.?#at0123456789abcdefxyz\u00e9\ud83d\ude00";
    for (let n = 0; n < 2000; n++) {
      let s = "";
      for (let i = rnd() % 200; i > 0; i--) {
        s += alphabet[rnd() % alphabet.length];
      }
      for (const f of parseStack(s)) {
        assert.ok(Number.isSafeInteger(f.line) && f.line >= 0 && f.line <= 0xffffffff);
        assert.ok(Buffer.byteLength(f.function) <= LIMITS.maxNameBytes);
      }
    }
  });
});

describe("wire rules", () => {
  it("coarsens locales to language and region", () => {
    const cases: [string, string][] = [
      ["de-AT", "de-AT"],
      ["de_at", "de-AT"],
      ["sr-Latn-RS", "sr-RS"],
      ["th-TH-u-ca-buddhist", "th-TH"],
      ["es-419", "es-419"],
      ["en", "en"],
      ["x-private", ""],
      ["", ""],
    ];
    for (const [in_, want] of cases) {
      assert.equal(coarseLocale(in_), want, in_);
    }
  });

  it("checks names as the collector does", () => {
    assert.ok(validName("settings.privacy", true));
    assert.ok(validName("tab/home: main", true));
    assert.ok(!validName("tab/home", false));
    assert.ok(!validName("a".repeat(257), false));
    assert.ok(!validName("", false));
    assert.ok(validName("", true));
    assert.ok(!validName("café", false));
  });

  it("checks consent text versions", () => {
    assert.ok(validConsentTextVersion("2026-11 (v2)"));
    assert.ok(!validConsentTextVersion("2026\n11"));
    assert.ok(!validConsentTextVersion("x".repeat(65)));
  });

  it("truncates on a character boundary", () => {
    assert.equal(truncateUtf8("aé😀", 4), "aé");
    assert.equal(truncateUtf8("aé😀", 7), "aé😀");
  });

  it("reads Retry-After in seconds and as a date", () => {
    assert.equal(retryAfter("3"), 3000);
    assert.equal(retryAfter(null), 0);
    assert.equal(retryAfter("soon"), 0);
    assert.equal(retryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  });
});
