// Package sdk is Consentry's client library for apps: it asks the collector
// for a consent token when the user opts in, records diagnostics (sessions,
// gestures, crashes, custom events and performance diagnostics) only while
// that consent covers them, keeps them in an encrypted queue on the device,
// and sends them in gzip-compressed batches with retries.
//
// # Guarantees
//
//   - Consent first. Before GrantConsent succeeds, and after RevokeConsent,
//     nothing is recorded, queued or sent: the Record methods return nil
//     and do nothing. An event whose scope the consent does not cover
//     ("analytics" for sessions, gestures, custom events and diagnostics;
//     "crash_reports" for crashes; "location" for coordinates) is not
//     recorded either.
//   - Revocation purges. RevokeConsent deletes the queue at once and
//     persists the revocation before it returns; a revocation made offline
//     is retried in the background and after a restart until the collector
//     confirms it, and is never evicted. When the collector reports the
//     consent revoked or expired, the queue is purged and sending stops.
//   - Nothing lost to a bad network. Events stay in the queue, which
//     survives restarts, until the collector has accepted them (or dropped
//     them for a reason retrying cannot fix). Each event carries a random
//     16-byte id, so a batch sent twice is stored once. On a full disk a
//     record drops the oldest queued events to make room rather than fail
//     (ErrStorageFull only when nothing is left to drop), and a revocation
//     is still saved.
//   - Encrypted at rest. Queue records and the consent token are sealed
//     with AES-256-GCM under a key the app supplies (Config.QueueKey, kept
//     in the Android Keystore or the iOS Keychain) or one the SDK keeps in
//     the storage folder.
//   - No identifiers. The SDK reads no device, advertising or install id,
//     no host name and no address; coordinates are rounded to one decimal
//     (about 11 km) before they are kept anywhere. Its log messages never
//     hold payloads or tokens. Breadcrumbs, the last screen views,
//     gestures and custom events before a crash, are kept in memory only
//     while the consent covers analytics, and sent only inside a crash.
//
// # Crashes
//
// RecoverPanic records a Go panic: the exception type names the runtime
// error or the error's type, the thread is the goroutine, the frames of
// the app's own code are marked in-app without configuration (the main
// module, package main, the app id's package; see Config.InAppPrefixes),
// and the crash carries the app state (SetAppState) and the breadcrumbs
// (RecordScreenView, LeaveBreadcrumb). Mobile apps pass their crashes to
// RecordCrash or RecordCrashReport.
//
// # Use
//
//	c, err := sdk.New(&sdk.Config{
//		Endpoint: "collector.example.com:443", AppID: "com.example.notes",
//		AppKey: appKey, StorageDir: dir, ConsentTextVersion: "2026-11",
//	})
//	...
//	defer c.Close()
//	err = c.GrantConsent("analytics,crash_reports") // when the user opts in
//	err = c.RecordGesture("tap", "settings.privacy", 1, 0)
//	err = c.RevokeConsent(false) // when the user opts out
//
// The API is bindable with gomobile: methods take and return strings,
// booleans, integers, floats, byte slices, errors and pointers to the
// package's structs. The few that are not (Stats, FlushContext,
// RecordCrashFrames, CapturePanics) are marked Go-only. The README
// describes the queue, the retry rules and the mobile bindings in detail.
package sdk
