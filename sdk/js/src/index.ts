/**
 * Consentry's SDK for JavaScript apps (React Native, web, Node.js). See
 * README.md: open a client with Consentry.open, ask for consent with
 * grantConsent when the user opts in, record diagnostics, and call
 * revokeConsent from the app's consent toggle.
 */
export {
  Consentry,
  SDK_VERSION,
  coarseLocale,
  type AppStateName,
  type AttributeValue,
  type ConsentStatus,
  type DiagnosticKindName,
  type GestureKind,
  type RevokeResult,
  type Stats,
} from "./client.js";
export { DEFAULTS, type Config, type DeviceClassName, type LogLevel, type OsNameName } from "./config.js";
export { ConsentryError, type CallFailure, type ErrorKind } from "./errors.js";
export { parseStack, type Frame } from "./stack.js";
export { MemoryStorage, type Storage } from "./storage.js";
export { PATHS, type Fetch } from "./transport.js";
export { LIMITS, SCOPES, type Scope } from "./wire.js";
