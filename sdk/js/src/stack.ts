import { LIMITS, truncateUtf8 } from "./wire.js";

/** One frame of a parsed stack trace, innermost first. */
export interface Frame {
  /** The function, e.g. "NoteEditor.save"; "" when anonymous. */
  function: string;
  /** The source file's name, without its directories, query or fragment, e.g. "NoteEditor.js". */
  file: string;
  /** The package or bundle the file belongs to, e.g. "node_modules/react-native" or "index.android.bundle". */
  module: string;
  /** The line number, 0 if unknown. */
  line: number;
  /** Whether the frame is the app's own code. */
  inApp: boolean;
}

// V8 (Chrome, Node.js, Hermes): "    at fn (file:1:2)", "    at file:1:2",
// "    at async fn (file:1:2)", "    at fn (native)".
const V8 = /^\s*at (?:async )?(?:(.*?) \((.*?)\)|(.*))$/;
// JavaScriptCore (Safari, older React Native) and Firefox: "fn@file:1:2",
// "@file:1:2", "file:1:2" (global code).
const JSC = /^(?:(.*?)@)?(\S+?:\d+(?::\d+)?|\[native code\])$/;
const LOCATION = /^(.*?)(?::(\d+))?(?::\d+)?$/;

/**
 * parseStack turns an Error's stack text into frames, innermost first, at
 * most the collector's limit. Only the file's base name is kept: its
 * directories can hold a user's name (the collector would scrub it; the
 * SDK does not send it). inApp decides which files are the app's own; by
 * default, all but the platform's and node_modules'.
 */
export function parseStack(stack: string, inApp?: (path: string) => boolean): Frame[] {
  const frames: Frame[] = [];
  for (const raw of stack.split("\n")) {
    if (frames.length >= LIMITS.maxFrames) {
      break;
    }
    const line = raw.trimEnd();
    let fn = "";
    let loc = "";
    const v8 = V8.exec(line);
    if (v8) {
      fn = v8[1] ?? "";
      loc = v8[2] ?? v8[3] ?? "";
    } else {
      const jsc = JSC.exec(line.trim());
      if (!jsc) {
        continue; // the "Error: message" line, or text that is no frame
      }
      fn = jsc[1] ?? "";
      loc = jsc[2] ?? "";
    }
    // Hermes: "address at file:1:2".
    loc = loc.replace(/^address at /, "");
    const m = LOCATION.exec(loc)!;
    // A location without a line ("native", "index 0" of Promise.all) names no file.
    const path = m[2] ? (m[1] ?? "").replace(/[?#].*$/, "") : "";
    const lineNo = m[2] ? Number(m[2]) : 0;
    frames.push({
      function: truncateUtf8(fn.trim(), LIMITS.maxNameBytes),
      file: truncateUtf8(baseName(path), LIMITS.maxNameBytes),
      module: /^(native|\[native code\])$/.test(loc) ? "native" : truncateUtf8(moduleOf(path), LIMITS.maxNameBytes),
      line: Number.isSafeInteger(lineNo) && lineNo <= 0xffffffff ? lineNo : 0,
      inApp: path !== "" && (inApp ?? defaultInApp)(path),
    });
  }
  return frames;
}

function baseName(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? path : path.slice(i + 1);
}

/** moduleOf names the package of a file in node_modules, or the platform's code. */
function moduleOf(path: string): string {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (nm) {
    return "node_modules/" + nm[1];
  }
  if (path.startsWith("node:")) {
    return "node";
  }
  return "";
}

function defaultInApp(path: string): boolean {
  return moduleOf(path) === "";
}

/** errorParts returns what a crash report takes from a thrown value. */
export function errorParts(err: unknown): { type: string; message: string; stack: string } {
  if (err instanceof Error) {
    const type = err.name && err.name !== "Error" ? err.name : (err.constructor?.name ?? "Error");
    return { type: type || "Error", message: err.message, stack: err.stack ?? "" };
  }
  return { type: typeof err, message: typeof err === "string" ? err : "", stack: "" };
}
