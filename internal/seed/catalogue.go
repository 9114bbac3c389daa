package seed

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/pipeline"
)

// Names of the bugs of the catalogue (see Bugs), with the scenario each
// plays.
const (
	// BugEditorDetached: a common Kotlin IllegalStateException on Android,
	// in every version and on every day (steady).
	BugEditorDetached = "editor-detached"
	// BugSettingsDetached: the same exception type and message shape as
	// BugEditorDetached from a different stack, so a separate group.
	BugSettingsDetached = "settings-detached"
	// BugListIndex: a Swift runtime failure (index out of range) on iOS,
	// steady.
	BugListIndex = "list-index-out-of-range"
	// BugImageDecoderSEGV: a native SIGSEGV in the app's image codec on
	// Android, with fault addresses and code offsets, steady.
	BugImageDecoderSEGV = "image-decoder-segv"
	// BugSyncNullTitle: a NullPointerException only in 4.11.2 and 4.12.0,
	// fixed in 4.12.1.
	BugSyncNullTitle = "sync-null-title"
	// BugShareAdapterIndex: an IndexOutOfBoundsException in 4.12.0, fixed
	// in 4.12.1 and back in 4.13.0: a regression.
	BugShareAdapterIndex = "share-adapter-index"
	// BugPDFRenderer: a crash first seen on the last day, in every
	// version: a new bug.
	BugPDFRenderer = "pdf-renderer-uninitialized"
	// BugListUpdate: an NSInternalInconsistencyException on iOS with a
	// few crashes a day that jumps tenfold on the last day: escalating.
	BugListUpdate = "list-update-inconsistency"
	// BugDatabaseANR: an Android ANR whose stack has one in-app frame, so
	// it is grouped by type and normalized message (the fingerprint's
	// fallback).
	BugDatabaseANR = "database-anr"
	// BugLaunchWatchdog: an iOS watchdog termination at launch, one in-app
	// frame among system frames (libsystem_kernel.dylib, ...): grouped by
	// type and normalized message too.
	BugLaunchWatchdog = "launch-watchdog"
	// BugSyncConflict: a handled exception on both platforms that the app
	// groups with the custom key "sync-conflict", although its stacks and
	// types differ.
	BugSyncConflict = "sync-conflict"
	// BugUploadFailed: a handled IOException on Android whose message
	// carries different scrubbed markers ([email], [phone]).
	BugUploadFailed = "upload-failed"
	// BugAttachmentDecode: a handled Swift DecodingError on iOS.
	BugAttachmentDecode = "attachment-decode"
)

// Bug is one bug of the catalogue the rows' crashes come from.
type Bug struct {
	// Name identifies the bug, one of the Bug* constants.
	Name string
	// Scenario says what the bug plays in tests.
	Scenario string
	// Fingerprint is the fingerprint (fingerprint.Sum) every occurrence
	// of the bug has, whatever its version, line numbers, addresses and
	// message.
	Fingerprint uint64
	// OSName is the platform the bug occurs on, "android" or "ios"; ""
	// for both.
	OSName string
	// Handled is true for a handled exception, false for a crash.
	Handled bool
	// CustomKey is the grouping key the app chose, "" for none.
	CustomKey string
	// Versions are the app versions the bug occurs in, oldest first.
	Versions []string
	// LastDayOnly is true for a bug seen on the last day only.
	LastDayOnly bool
	// LastDayFactor is how many times its usual daily rate the bug
	// occurs on the last day; 1 for most.
	LastDayFactor float64
	// Fallback is true if the bug's stack has fewer than
	// fingerprint.MinFrames in-app frames, so that its fingerprint rests
	// on the exception type and the normalized message.
	Fallback bool
	// Example is one occurrence, with zero Common fields except
	// OSName, OSVersion and AppVersion.
	Example pipeline.CrashRow
}

// Bugs returns the catalogue of bugs, in a fixed order. The rows of every
// Config share it.
func Bugs() []Bug {
	bugs := make([]Bug, len(catalogue))
	for i := range catalogue {
		bugs[i] = catalogue[i].export()
	}
	return bugs
}

// BugNamed returns the bug of the catalogue called name.
func BugNamed(name string) (Bug, bool) {
	for i := range catalogue {
		if catalogue[i].name == name {
			return catalogue[i].export(), true
		}
	}
	return Bug{}, false
}

// bugDef is a bug of the catalogue: when it occurs and how an occurrence
// looks.
type bugDef struct {
	name, scenario string
	// os is "android", "ios" or "" for both.
	os      string
	handled bool
	custom  string
	// versions are the indexes into appVersions it occurs in; nil for all.
	versions []int
	// rate is the share of eligible sessions (of its platform and
	// versions) it hits a day.
	rate          float64
	lastDayOnly   bool
	lastDayFactor float64
	// background is the share of handled occurrences in the background.
	background float64
	// build makes an occurrence: type, message, frames and thread.
	build func(o *occurrence) pipeline.CrashRow
}

func (b *bugDef) inVersion(v int) bool { return b.versions == nil || slices.Contains(b.versions, v) }

// occurrenceOf returns an occurrence of b in app version v (an index into
// appVersions) on the OS os at osVersion, without Common fields and
// fingerprint.
func (b *bugDef) occurrenceOf(r *rand.Rand, v int, os, osVersion string) pipeline.CrashRow {
	row := b.build(&occurrence{r: r, version: v, os: os, osVersion: osVersion})
	row.Handled = b.handled
	row.AppState = "foreground"
	if b.handled && r.Float64() < b.background {
		row.AppState = "background"
	}
	// What the user did before, as the anonymizer stores it (offsets
	// rounded to the minute): the same steps for every occurrence, with no
	// random draw, so a seed's other rows stay what they were.
	row.Breadcrumbs = []pipeline.Breadcrumb{
		{Type: "screen_view", Name: "home", OffsetMs: 180_000},
		{Type: "screen_view", Name: "editor", OffsetMs: 60_000},
		{Type: "tap", Name: "editor", OffsetMs: 0},
	}
	return row
}

// export returns b as a Bug, with its example occurrence and fingerprint.
func (b *bugDef) export() Bug {
	bug := Bug{
		Name:          b.name,
		Scenario:      b.scenario,
		OSName:        b.os,
		Handled:       b.handled,
		CustomKey:     b.custom,
		LastDayOnly:   b.lastDayOnly,
		LastDayFactor: 1,
	}
	if b.lastDayFactor > 0 {
		bug.LastDayFactor = b.lastDayFactor
	}
	for v, av := range appVersions {
		if b.inVersion(v) {
			bug.Versions = append(bug.Versions, av.name)
		}
	}
	// The example runs on a common version of its OS (fakedata's).
	os, osVersion := osAndroid, "13"
	if b.os == osIOS {
		os, osVersion = osIOS, "17.4.1"
	}
	v := len(appVersions) - 1
	if b.versions != nil {
		v = b.versions[0]
	}
	ex := b.occurrenceOf(rand.New(rand.NewPCG(1, 2)), v, os, osVersion)
	ex.OSName, ex.OSVersion, ex.AppVersion = os, osVersion, appVersions[v].name
	ex.Fingerprint = fingerprint.Sum(&ex, b.custom)
	bug.Example, bug.Fingerprint = ex, ex.Fingerprint
	inApp := 0
	for _, f := range ex.Frames {
		if f.InApp {
			inApp++
		}
	}
	bug.Fallback = b.custom == "" && inApp < fingerprint.MinFrames
	return bug
}

// occurrence is what varies between occurrences of a bug: the random
// source, the app version and the OS.
type occurrence struct {
	r         *rand.Rand
	version   int
	os        string
	osVersion string
}

// versionShift moves the app's line numbers and code offsets from one
// release to the next, as edits elsewhere in a file do.
var versionShift = []int{0, 4, 6, 13}

// line is an in-app line number: base in 4.11.2, moved in later versions.
func (o *occurrence) line(base int) uint32 {
	return uint32(base + versionShift[o.version]*(1+base%3))
}

// offset is an in-app code offset: base in 4.11.2, moved in later
// versions, a multiple of 4 as on arm64.
func (o *occurrence) offset(base int) int { return base + 4*versionShift[o.version]*(1+base%5) }

// sysLine is a line number of Android's own code, which differs between
// OS versions.
func (o *occurrence) sysLine(base int) uint32 {
	switch o.osVersion {
	case "14":
		return uint32(base + 17)
	case "15":
		return uint32(base + 31)
	}
	return uint32(base)
}

// sysOffset is a code offset in an iOS system library, which differs
// between iOS versions.
func (o *occurrence) sysOffset(base int) int {
	if o.osVersion == "18.1" {
		return base + 16
	}
	return base
}

// appFrame and sysFrame make an in-app and a system frame.
func appFrame(module, function, file string, line uint32) pipeline.Frame {
	return pipeline.Frame{Module: module, Function: function, File: file, Line: line, InApp: true}
}

func sysFrame(module, function, file string, line uint32) pipeline.Frame {
	return pipeline.Frame{Module: module, Function: function, File: file, Line: line}
}

// Modules of the app's own code.
const (
	androidApp = "com.example.notes"
	iosApp     = "NotesApp"
)

// iosAppFrame returns an in-app iOS frame with an offset, as symbolicated
// reports show it: "NoteListViewModel.item(at:) + 412".
func (o *occurrence) iosAppFrame(function string, offset int, file string, line int) pipeline.Frame {
	return appFrame(iosApp, fmt.Sprintf("%s + %d", function, o.offset(offset)), file, o.line(line))
}

// iosSysFrame returns a system iOS frame with an offset.
func (o *occurrence) iosSysFrame(module, function string, offset int) pipeline.Frame {
	return sysFrame(module, fmt.Sprintf("%s + %d", function, o.sysOffset(offset)), "", 0)
}

// mainLoop is the bottom of an Android main-thread stack.
func (o *occurrence) mainLoop() []pipeline.Frame {
	return []pipeline.Frame{
		sysFrame("android.os", "Handler.handleCallback", "Handler.java", o.sysLine(958)),
		sysFrame("android.os", "Handler.dispatchMessage", "Handler.java", o.sysLine(99)),
		sysFrame("android.os", "Looper.loopOnce", "Looper.java", o.sysLine(205)),
		sysFrame("android.os", "Looper.loop", "Looper.java", o.sysLine(294)),
		sysFrame("android.app", "ActivityThread.main", "ActivityThread.java", o.sysLine(8177)),
		sysFrame("java.lang.reflect", "Method.invoke", "Method.java", 0),
		sysFrame("com.android.internal.os", "RuntimeInit$MethodAndArgsCaller.run", "RuntimeInit.java", o.sysLine(552)),
		sysFrame("com.android.internal.os", "ZygoteInit.main", "ZygoteInit.java", o.sysLine(971)),
	}
}

// mainCoroutine is the bottom of a coroutine resumed on Android's main
// thread.
func (o *occurrence) mainCoroutine() []pipeline.Frame {
	return append([]pipeline.Frame{
		sysFrame("kotlin.coroutines.jvm.internal", "BaseContinuationImpl.resumeWith", "ContinuationImpl.kt", 33),
		sysFrame("kotlinx.coroutines", "DispatchedTask.run", "DispatchedTask.kt", 108),
	}, o.mainLoop()...)
}

// backgroundCoroutine is the bottom of a coroutine on a worker of
// Kotlin's default dispatcher.
func backgroundCoroutine() []pipeline.Frame {
	return []pipeline.Frame{
		sysFrame("kotlin.coroutines.jvm.internal", "BaseContinuationImpl.resumeWith", "ContinuationImpl.kt", 33),
		sysFrame("kotlinx.coroutines", "DispatchedTask.run", "DispatchedTask.kt", 108),
		sysFrame("kotlinx.coroutines.scheduling", "CoroutineScheduler.runSafely", "CoroutineScheduler.kt", 584),
		sysFrame("kotlinx.coroutines.scheduling", "CoroutineScheduler$Worker.executeTask", "CoroutineScheduler.kt", 793),
		sysFrame("kotlinx.coroutines.scheduling", "CoroutineScheduler$Worker.runWorker", "CoroutineScheduler.kt", 697),
		sysFrame("kotlinx.coroutines.scheduling", "CoroutineScheduler$Worker.run", "CoroutineScheduler.kt", 684),
	}
}

// threadPool is the bottom of a Java thread-pool thread.
func (o *occurrence) threadPool() []pipeline.Frame {
	return []pipeline.Frame{
		sysFrame("java.util.concurrent", "ThreadPoolExecutor.runWorker", "ThreadPoolExecutor.java", o.sysLine(1145)),
		sysFrame("java.util.concurrent", "ThreadPoolExecutor$Worker.run", "ThreadPoolExecutor.java", o.sysLine(644)),
		sysFrame("java.lang", "Thread.run", "Thread.java", o.sysLine(1012)),
	}
}

// iosRunLoop is the bottom of an iOS main-thread stack.
func (o *occurrence) iosRunLoop() []pipeline.Frame {
	return []pipeline.Frame{
		o.iosSysFrame("CoreFoundation", "__CFRUNLOOP_IS_CALLING_OUT_TO_AN_OBSERVER_CALLBACK_FUNCTION__", 36),
		o.iosSysFrame("CoreFoundation", "__CFRunLoopDoObservers", 532),
		o.iosSysFrame("CoreFoundation", "__CFRunLoopRun", 1048),
		o.iosSysFrame("CoreFoundation", "CFRunLoopRunSpecific", 608),
		o.iosSysFrame("GraphicsServices", "GSEventRunModal", 164),
		o.iosSysFrame("UIKitCore", "-[UIApplication _run]", 888),
		o.iosSysFrame("UIKitCore", "UIApplicationMain", 340),
		o.iosSysFrame("dyld", "start", 2240),
	}
}

// iosWorkQueue is the bottom of an iOS dispatch worker thread.
func (o *occurrence) iosWorkQueue() []pipeline.Frame {
	return []pipeline.Frame{
		o.iosSysFrame("libdispatch.dylib", "_dispatch_call_block_and_release", 32),
		o.iosSysFrame("libdispatch.dylib", "_dispatch_client_callout", 20),
		o.iosSysFrame("libdispatch.dylib", "_dispatch_root_queue_drain", 864),
		o.iosSysFrame("libdispatch.dylib", "_dispatch_worker_thread2", 156),
		o.iosSysFrame("libsystem_pthread.dylib", "_pthread_wqthread", 228),
		o.iosSysFrame("libsystem_pthread.dylib", "start_wqthread", 8),
	}
}

// fragmentHash is the hex identity hash a Fragment's toString shows.
func (o *occurrence) fragmentHash() string { return fmt.Sprintf("%07x", o.r.Uint32()>>4) }

// catalogue is the bugs the rows' crashes come from. Rates are shares of
// a day's eligible sessions: together about 3% of sessions crash and 2%
// report a handled exception.
var catalogue = []bugDef{
	{
		name:     BugEditorDetached,
		scenario: "steady: a common Kotlin IllegalStateException on every Android version and day",
		os:       osAndroid,
		rate:     0.009,
		build: func(o *occurrence) pipeline.CrashRow {
			// The Fragment's id, a UUID, was scrubbed to [uuid].
			return pipeline.CrashRow{
				ExceptionType: "java.lang.IllegalStateException",
				Message:       fmt.Sprintf("Fragment NoteEditorFragment{%s} ([uuid]) not attached to a context.", o.fragmentHash()),
				Frames: append([]pipeline.Frame{
					sysFrame("androidx.fragment.app", "Fragment.requireContext", "Fragment.java", 972),
					appFrame(androidApp, "NoteEditorFragment.saveDraft", "NoteEditorFragment.kt", o.line(214)),
					appFrame(androidApp, "NoteEditor.save", "NoteEditor.kt", o.line(88)),
					appFrame(androidApp, "NoteEditor$autosave$1.invokeSuspend", "NoteEditor.kt", o.line(61)),
				}, o.mainCoroutine()...),
				Thread: "main",
			}
		},
	},
	{
		name:     BugSettingsDetached,
		scenario: "steady, rare: same exception type and message shape as editor-detached, different stack, so a different group",
		os:       osAndroid,
		rate:     0.0025,
		build: func(o *occurrence) pipeline.CrashRow {
			return pipeline.CrashRow{
				ExceptionType: "java.lang.IllegalStateException",
				Message:       fmt.Sprintf("Fragment PrivacySettingsFragment{%s} ([uuid]) not attached to a context.", o.fragmentHash()),
				Frames: append([]pipeline.Frame{
					sysFrame("androidx.fragment.app", "Fragment.requireContext", "Fragment.java", 972),
					appFrame(androidApp, "PrivacySettingsFragment.onConsentChanged", "PrivacySettingsFragment.kt", o.line(131)),
					appFrame(androidApp, "ConsentPreference.notifyChanged", "ConsentPreference.kt", o.line(47)),
					sysFrame("androidx.preference", "Preference.callChangeListener", "Preference.java", 1180),
				}, o.mainLoop()...),
				Thread: "main",
			}
		},
	},
	{
		name:     BugListIndex,
		scenario: "steady: a Swift runtime failure (index out of range) on every iOS version and day",
		os:       osIOS,
		rate:     0.01,
		build: func(o *occurrence) pipeline.CrashRow {
			line := o.line(87)
			return pipeline.CrashRow{
				ExceptionType: "EXC_BREAKPOINT",
				Message:       fmt.Sprintf("Fatal error: Index out of range: file NotesApp/NoteListViewModel.swift, line %d", line),
				Frames: append([]pipeline.Frame{
					o.iosSysFrame("libswiftCore.dylib", "_assertionFailure(_:_:file:line:flags:)", 264),
					appFrame(iosApp, fmt.Sprintf("NoteListViewModel.item(at:) + %d", o.offset(412)), "NoteListViewModel.swift", line),
					o.iosAppFrame("NoteListViewController.tableView(_:cellForRowAt:)", 96, "NoteListViewController.swift", 142),
					o.iosSysFrame("UIKitCore", "-[UITableView _createPreparedCellForGlobalRow:withIndexPath:willDisplay:]", 1532),
					o.iosSysFrame("UIKitCore", "-[UITableView _updateVisibleCellsNow:]", 2044),
					o.iosSysFrame("UIKitCore", "-[UITableView layoutSubviews]", 140),
					o.iosSysFrame("QuartzCore", "CA::Layer::layout_if_needed(CA::Transaction*)", 496),
				}, o.iosRunLoop()...),
				Thread: "main",
			}
		},
	},
	{
		name:     BugImageDecoderSEGV,
		scenario: "steady: a native SIGSEGV in the app's image codec on Android; fault addresses, thread ids and code offsets vary",
		os:       osAndroid,
		rate:     0.005,
		build: func(o *occurrence) pipeline.CrashRow {
			addr := 0x7b00000000 + o.r.Uint64N(0xffffffff)&^7
			return pipeline.CrashRow{
				ExceptionType: "SIGSEGV",
				Message:       fmt.Sprintf("Fatal signal 11 (SIGSEGV), code 1 (SEGV_MAPERR), fault addr 0x%x in tid %d (ImageDecoder)", addr, 9000+o.r.IntN(30000)),
				Frames: append([]pipeline.Frame{
					appFrame("libimagecodec.so", fmt.Sprintf("decode_tile+0x%x", o.offset(0x1a4)), "tile.cc", o.line(318)),
					appFrame("libimagecodec.so", fmt.Sprintf("ImageDecoder::decodeRegion(Rect const&)+0x%x", o.offset(0x88)), "image_decoder.cc", o.line(142)),
					appFrame("libimagecodec.so", fmt.Sprintf("Java_com_example_notes_image_NativeDecoder_decode+0x%x", o.offset(0x5c)), "jni.cc", o.line(57)),
					sysFrame("libart.so", "art_quick_generic_jni_trampoline+0x98", "", 0),
					sysFrame("libart.so", "art_quick_invoke_static_stub+0x238", "", 0),
					appFrame(androidApp, "NativeDecoder.decode", "NativeDecoder.kt", o.line(29)),
					appFrame(androidApp, "ImageCache.load", "ImageCache.kt", o.line(112)),
				}, o.threadPool()...),
				Thread: "ImageDecoder",
			}
		},
	},
	{
		name:     BugSyncNullTitle,
		scenario: "fixed: a NullPointerException in 4.11.2 and 4.12.0 only, fixed in 4.12.1",
		os:       osAndroid,
		versions: []int{v4112, v4120},
		rate:     0.01,
		build: func(o *occurrence) pipeline.CrashRow {
			return pipeline.CrashRow{
				ExceptionType: "java.lang.NullPointerException",
				Message:       "Attempt to invoke virtual method 'java.lang.String com.example.notes.sync.RemoteNote.getTitle()' on a null object reference",
				Frames: append([]pipeline.Frame{
					appFrame(androidApp, "SyncMapper.toLocal", "SyncMapper.kt", o.line(54)),
					appFrame(androidApp, "SyncEngine.applyRemoteChanges", "SyncEngine.kt", o.line(203)),
					appFrame(androidApp, "SyncWorker.doWork", "SyncWorker.kt", o.line(41)),
					sysFrame("androidx.work", "Worker$1.run", "Worker.java", 82),
				}, o.threadPool()...),
				Thread: fmt.Sprintf("pool-%d-thread-1", 2+o.r.IntN(4)),
			}
		},
	},
	{
		name:     BugShareAdapterIndex,
		scenario: "regression: an IndexOutOfBoundsException in 4.12.0, gone in 4.12.1, back in 4.13.0",
		os:       osAndroid,
		versions: []int{v4120, v4130},
		rate:     0.012,
		build: func(o *occurrence) pipeline.CrashRow {
			n := 1 + o.r.IntN(12)
			return pipeline.CrashRow{
				ExceptionType: "java.lang.IndexOutOfBoundsException",
				Message:       fmt.Sprintf("Index %d out of bounds for length %d", n, n),
				Frames: append([]pipeline.Frame{
					sysFrame("jdk.internal.util", "Preconditions.outOfBounds", "Preconditions.java", 64),
					sysFrame("jdk.internal.util", "Preconditions.checkIndex", "Preconditions.java", 266),
					sysFrame("java.util", "ArrayList.get", "ArrayList.java", o.sysLine(434)),
					appFrame(androidApp, "ShareTargetAdapter.targetAt", "ShareTargetAdapter.kt", o.line(38)),
					appFrame(androidApp, "ShareTargetAdapter.onBindViewHolder", "ShareTargetAdapter.kt", o.line(52)),
					sysFrame("androidx.recyclerview.widget", "RecyclerView$Adapter.onBindViewHolder", "RecyclerView.java", 7254),
					sysFrame("androidx.recyclerview.widget", "RecyclerView$Adapter.bindViewHolder", "RecyclerView.java", 7337),
					sysFrame("androidx.recyclerview.widget", "RecyclerView$Recycler.tryBindViewHolderByDeadline", "RecyclerView.java", 6194),
				}, o.mainLoop()...),
				Thread: "main",
			}
		},
	},
	{
		name:        BugPDFRenderer,
		scenario:    "new: first seen on the last day, in every Android version (a server-side template change)",
		os:          osAndroid,
		rate:        0.025,
		lastDayOnly: true,
		build: func(o *occurrence) pipeline.CrashRow {
			return pipeline.CrashRow{
				ExceptionType: "kotlin.UninitializedPropertyAccessException",
				Message:       "lateinit property pageRenderer has not been initialized",
				Frames: append([]pipeline.Frame{
					appFrame(androidApp, "PdfExporter.getPageRenderer", "PdfExporter.kt", o.line(27)),
					appFrame(androidApp, "PdfExporter.renderPage", "PdfExporter.kt", o.line(96)),
					appFrame(androidApp, "PdfExporter.export", "PdfExporter.kt", o.line(71)),
					appFrame(androidApp, "ExportViewModel$exportPdf$1.invokeSuspend", "ExportViewModel.kt", o.line(44)),
				}, o.mainCoroutine()...),
				Thread: "main",
			}
		},
	},
	{
		name:          BugListUpdate,
		scenario:      "escalating: a few crashes a day on iOS, about ten times as many on the last day",
		os:            osIOS,
		rate:          0.01,
		lastDayFactor: 10,
		build: func(o *occurrence) pipeline.CrashRow {
			before := 3 + o.r.IntN(40)
			inserted := 1 + o.r.IntN(3)
			return pipeline.CrashRow{
				ExceptionType: "NSInternalInconsistencyException",
				Message: fmt.Sprintf("Invalid update: invalid number of rows in section 0. The number of rows contained in an existing section after the update (%d) must be equal to the number of rows contained in that section before the update (%d), plus or minus the number of rows inserted or deleted from that section (%d inserted, 0 deleted).",
					before+inserted+1, before, inserted),
				Frames: append([]pipeline.Frame{
					o.iosSysFrame("CoreFoundation", "__exceptionPreprocess", 164),
					o.iosSysFrame("libobjc.A.dylib", "objc_exception_throw", 60),
					o.iosSysFrame("Foundation", "-[NSAssertionHandler handleFailureInMethod:object:file:lineNumber:description:]", 172),
					o.iosSysFrame("UIKitCore", "-[UITableView _endCellAnimationsWithContext:]", 12044),
					o.iosSysFrame("UIKitCore", "-[UITableView endUpdates]", 72),
					o.iosAppFrame("NoteListViewController.apply(_:animated:)", 612, "NoteListViewController.swift", 201),
					o.iosAppFrame("NoteListViewController.notesDidChange(_:)", 188, "NoteListViewController.swift", 176),
					o.iosAppFrame("closure #1 in NoteStore.observe(_:)", 96, "NoteStore.swift", 58),
					o.iosSysFrame("libdispatch.dylib", "_dispatch_call_block_and_release", 32),
					o.iosSysFrame("libdispatch.dylib", "_dispatch_main_queue_drain", 984),
					o.iosSysFrame("CoreFoundation", "__CFRUNLOOP_IS_SERVICING_THE_MAIN_DISPATCH_QUEUE__", 16),
				}, o.iosRunLoop()[2:]...),
				Thread: "main",
			}
		},
	},
	{
		name:     BugDatabaseANR,
		scenario: "fallback: an Android ANR with one in-app frame, grouped by type and normalized message",
		os:       osAndroid,
		rate:     0.007,
		build: func(o *occurrence) pipeline.CrashRow {
			return pipeline.CrashRow{
				ExceptionType: "ANR",
				Message: fmt.Sprintf("Input dispatching timed out (com.example.notes/.MainActivity is not responding. Waited %dms for MotionEvent(deviceId=%d, source=0x00001002, action=DOWN))",
					5000+o.r.IntN(120), 2+o.r.IntN(8)),
				Frames: append([]pipeline.Frame{
					sysFrame("android.database.sqlite", "SQLiteConnection.nativeExecuteForCursorWindow", "SQLiteConnection.java", 0),
					sysFrame("android.database.sqlite", "SQLiteConnection.executeForCursorWindow", "SQLiteConnection.java", o.sysLine(1002)),
					sysFrame("android.database.sqlite", "SQLiteSession.executeForCursorWindow", "SQLiteSession.java", o.sysLine(838)),
					sysFrame("android.database.sqlite", "SQLiteQuery.fillWindow", "SQLiteQuery.java", o.sysLine(62)),
					sysFrame("android.database.sqlite", "SQLiteCursor.fillWindow", "SQLiteCursor.java", o.sysLine(157)),
					sysFrame("android.database.sqlite", "SQLiteCursor.getCount", "SQLiteCursor.java", o.sysLine(140)),
					appFrame(androidApp, "NoteDatabase.searchAll", "NoteDatabase.kt", o.line(233)),
				}, o.mainLoop()...),
				Thread: "main",
			}
		},
	},
	{
		name:     BugLaunchWatchdog,
		scenario: "fallback: an iOS watchdog kill at launch, one in-app frame among system frames, grouped by type and normalized message",
		os:       osIOS,
		rate:     0.004,
		build: func(o *occurrence) pipeline.CrashRow {
			return pipeline.CrashRow{
				ExceptionType: "EXC_CRASH (SIGKILL)",
				Message: fmt.Sprintf("Termination Reason: FRONTBOARD 0x8badf00d scene-create watchdog transgression: application<com.example.notes>:%d exhausted real (wall clock) time allowance of 19.97 seconds (CPU time used: %d.%02d seconds)",
					300+o.r.IntN(9000), o.r.IntN(4), o.r.IntN(100)),
				Frames: append([]pipeline.Frame{
					o.iosSysFrame("libsystem_kernel.dylib", "mach_msg2_trap", 8),
					o.iosSysFrame("libsystem_kernel.dylib", "mach_msg2_internal", 80),
					o.iosSysFrame("libsystem_kernel.dylib", "mach_msg_overwrite", 436),
					o.iosSysFrame("libsystem_kernel.dylib", "mach_msg", 24),
					o.iosSysFrame("libdispatch.dylib", "_dispatch_mach_send_and_wait_for_reply", 548),
					o.iosSysFrame("libxpc.dylib", "xpc_connection_send_message_with_reply_sync", 256),
					o.iosSysFrame("Security", "SecItemCopyMatching", 340),
					o.iosAppFrame("AppDelegate.application(_:didFinishLaunchingWithOptions:)", 412, "AppDelegate.swift", 33),
					o.iosSysFrame("UIKitCore", "-[UIApplication _handleDelegateCallbacksWithOptions:isSuspended:restoreState:]", 316),
				}, o.iosRunLoop()[3:]...),
				Thread: "main",
			}
		},
	},
	{
		name:       BugSyncConflict,
		scenario:   "custom key: a handled exception on both platforms that the app groups as \"sync-conflict\" although its types and stacks differ",
		handled:    true,
		custom:     "sync-conflict",
		rate:       0.01,
		background: 0.6,
		build:      syncConflict,
	},
	{
		name:       BugUploadFailed,
		scenario:   "handled: an IOException on Android whose message carries different scrubbed markers ([email], [phone])",
		os:         osAndroid,
		handled:    true,
		rate:       0.01,
		background: 0.3,
		build: func(o *occurrence) pipeline.CrashRow {
			marker := []string{"[email]", "[phone]"}[o.r.IntN(2)]
			return pipeline.CrashRow{
				ExceptionType: "java.io.IOException",
				Message:       fmt.Sprintf("Upload of attachment shared with %s failed: HTTP %d after %d retries", marker, 502+o.r.IntN(3), 1+o.r.IntN(3)),
				Frames: append([]pipeline.Frame{
					appFrame(androidApp, "AttachmentUploader.checkResponse", "AttachmentUploader.kt", o.line(118)),
					appFrame(androidApp, "AttachmentUploader.upload", "AttachmentUploader.kt", o.line(74)),
					appFrame(androidApp, "AttachmentUploader$uploadAll$1.invokeSuspend", "AttachmentUploader.kt", o.line(52)),
				}, backgroundCoroutine()...),
				Thread: fmt.Sprintf("DefaultDispatcher-worker-%d", 1+o.r.IntN(8)),
			}
		},
	},
	{
		name:       BugAttachmentDecode,
		scenario:   "handled: a Swift DecodingError on iOS",
		os:         osIOS,
		handled:    true,
		rate:       0.01,
		background: 0.2,
		build: func(o *occurrence) pipeline.CrashRow {
			return pipeline.CrashRow{
				ExceptionType: "Swift.DecodingError.dataCorrupted",
				Message: fmt.Sprintf("The given data was not valid JSON. (Unexpected character '%c' around line %d, column %d.)",
					"<}x\\"[o.r.IntN(4)], 1+o.r.IntN(40), 1+o.r.IntN(80)),
				Frames: append([]pipeline.Frame{
					o.iosSysFrame("Foundation", "JSONDecoder.decode<A>(_:from:)", 204),
					o.iosAppFrame("AttachmentManifest.load(from:)", 312, "AttachmentManifest.swift", 41),
					o.iosAppFrame("AttachmentStore.refresh()", 88, "AttachmentStore.swift", 97),
					o.iosAppFrame("closure #1 in AttachmentStore.observe()", 52, "AttachmentStore.swift", 63),
				}, o.iosWorkQueue()...),
				Thread: "com.apple.root.user-initiated-qos",
			}
		},
	},
}

// syncConflict builds an occurrence of BugSyncConflict: one of a few
// stacks on either platform.
func syncConflict(o *occurrence) pipeline.CrashRow {
	local := 2 + o.r.IntN(200)
	remote := local + 1 + o.r.IntN(3)
	if o.os == osIOS {
		frames := [][]pipeline.Frame{
			{
				o.iosAppFrame("ConflictResolver.resolve(_:_:)", 220, "ConflictResolver.swift", 64),
				o.iosAppFrame("SyncEngine.merge(_:with:)", 480, "SyncEngine.swift", 151),
			},
			{
				o.iosAppFrame("NoteRepository.applyRemote(_:)", 132, "NoteRepository.swift", 88),
				o.iosAppFrame("SyncEngine.pull()", 344, "SyncEngine.swift", 97),
				o.iosAppFrame("closure #2 in SyncEngine.start()", 60, "SyncEngine.swift", 42),
			},
		}[o.r.IntN(2)]
		return pipeline.CrashRow{
			ExceptionType: "NotesApp.SyncError",
			Message:       fmt.Sprintf("conflict(local: %d, remote: %d)", local, remote),
			Frames:        append(frames, o.iosWorkQueue()...),
			Thread:        "com.apple.root.utility-qos",
		}
	}
	frames := [][]pipeline.Frame{
		{
			appFrame(androidApp, "ConflictResolver.resolve", "ConflictResolver.kt", o.line(64)),
			appFrame(androidApp, "SyncEngine.merge", "SyncEngine.kt", o.line(151)),
			appFrame(androidApp, "SyncEngine$sync$2.invokeSuspend", "SyncEngine.kt", o.line(120)),
		},
		{
			appFrame(androidApp, "NoteRepository.applyRemote", "NoteRepository.kt", o.line(88)),
			appFrame(androidApp, "SyncEngine.pull", "SyncEngine.kt", o.line(97)),
			appFrame(androidApp, "SyncWorker.doWork", "SyncWorker.kt", o.line(41)),
		},
		{
			appFrame(androidApp, "SyncEngine.push", "SyncEngine.kt", o.line(176)),
			appFrame(androidApp, "SyncEngine$push$1.invokeSuspend", "SyncEngine.kt", o.line(170)),
		},
	}[o.r.IntN(3)]
	return pipeline.CrashRow{
		ExceptionType: "com.example.notes.sync.SyncConflictException",
		Message:       fmt.Sprintf("Note revision %d conflicts with server revision %d", local, remote),
		Frames:        append(frames, backgroundCoroutine()...),
		Thread:        fmt.Sprintf("DefaultDispatcher-worker-%d", 1+o.r.IntN(8)),
	}
}
