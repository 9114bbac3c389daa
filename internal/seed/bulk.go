package seed

import (
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/fakedata"
)

// BulkFingerprints is the number of distinct fingerprints BulkCrashesSQL
// spreads its rows over; all of them occur once n is a few tens of
// thousands.
const BulkFingerprints = 500

// crashColumns are the columns of the crashes table (package clickhouse's
// schema), in the order BulkCrashesSQL's SELECT yields them.
var crashColumns = []string{
	"app_id", "event_date", "event_time", "event_id", "session_key",
	"app_version", "app_build", "sdk_version", "device_class", "device_model",
	"os_name", "os_version", "locale", "country", "region", "consent_key",
	"exception_type", "fingerprint", "message",
	"frame_module", "frame_function", "frame_file", "frame_line", "frame_in_app",
	"thread", "handled", "app_state",
	"breadcrumb_types", "breadcrumb_names", "breadcrumb_offsets_ms",
}

// BulkCrashesSQL returns one statement, INSERT INTO database.crashes ...
// SELECT ... FROM numbers(n), that makes n synthetic crash rows of
// DefaultAppID on the server itself, spread evenly over days UTC days
// ending with end's (days below 1 count as 1). It is for benchmarks: the
// server makes the rows itself, so the time is the server's to write them
// (200,000 rows take about five seconds on ClickHouse 18.16 with one
// thread on a small machine, a million about twenty). database must be a
// plain identifier.
//
// The rows fall into BulkFingerprints groups of Zipf-like sizes (the k-th
// largest group about 1/k the size of the largest); each group has one
// platform, exception type, message pattern and stack, whose parallel
// frame arrays hold 3 to 8 frames, in some groups only one in-app frame.
// Line numbers change with the app version. App versions (newer ones on
// later days), OS versions, device models, regions and locales (those of
// internal/fakedata, places in their shares) vary per
// row; every row has its own session key, event id (generateUUIDv4) and a
// time truncated to the minute. Fingerprints are a hash of the group, not
// fingerprint.Sum of the stack. About one group in seven is a handled
// exception. Every row has the breadcrumbs the seeded rows have (Rows).
//
// The statement uses only what ClickHouse 18.16 already had (numbers,
// cityHash64, intDiv, pow, range, arraySlice, arrayMap, array literals,
// ANY LEFT JOIN), so it runs there and on current releases alike. Its rows
// are the same on every run except for the event ids.
func BulkCrashesSQL(database string, n, days int, end time.Time) string {
	days = max(days, 1)
	n = max(n, 0)
	first := end.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(days - 1))
	builds := make([]string, len(appVersions))
	for i, v := range appVersions {
		builds[i] = v.build
	}
	android, ios := bulkDevicesOf(fakedata.OSAndroid), bulkDevicesOf(fakedata.OSIOS)
	androidOS := fakedata.Values(fakedata.OSVersions(fakedata.OSAndroid))
	iosOS := fakedata.Values(fakedata.OSVersions(fakedata.OSIOS))
	var locales, countries, regions, slots []string
	for i, p := range fakedata.Places() {
		locales, countries, regions = append(locales, p.Value.Locale), append(countries, p.Value.Country), append(regions, p.Value.Region)
		// A place takes slots in proportion to its share, so a uniform
		// draw of a slot follows the shares.
		for range max(1, int(p.Weight)) {
			slots = append(slots, strconv.Itoa(i))
		}
	}
	return strings.NewReplacer(
		"{database}", database,
		"{columns}", strings.Join(crashColumns, ", "),
		"{app}", sqlString(DefaultAppID),
		"{first_day}", sqlString(first.Format(time.DateOnly)),
		"{first_unix}", strconv.FormatInt(first.Unix(), 10),
		"{seconds}", strconv.Itoa(days*86400),
		"{days}", strconv.Itoa(days),
		"{n}", strconv.Itoa(n),
		"{groups}", strconv.Itoa(BulkFingerprints),
		"{stacks}", strconv.Itoa(BulkFingerprints*len(appVersions)),
		"{versions}", sqlArray(Versions()),
		"{builds}", sqlArray(builds),
		"{android_sdk}", sqlString(fakedata.SDKVersion(fakedata.OSAndroid)),
		"{ios_sdk}", sqlString(fakedata.SDKVersion(fakedata.OSIOS)),
		"{android_models}", sqlArray(android.models),
		"{android_classes}", sqlArray(android.classes),
		"{android_models_n}", strconv.Itoa(len(android.models)),
		"{ios_models}", sqlArray(ios.models),
		"{ios_classes}", sqlArray(ios.classes),
		"{ios_models_n}", strconv.Itoa(len(ios.models)),
		"{android_os}", sqlArray(androidOS),
		"{android_os_n}", strconv.Itoa(len(androidOS)),
		"{ios_os}", sqlArray(iosOS),
		"{ios_os_n}", strconv.Itoa(len(iosOS)),
		"{locales}", sqlArray(locales),
		"{countries}", sqlArray(countries),
		"{regions}", sqlArray(regions),
		"{place_slots}", "["+strings.Join(slots, ", ")+"]",
		"{place_slots_n}", strconv.Itoa(len(slots)),
		"{android_types}", sqlArray(bulkAndroidTypes),
		"{ios_types}", sqlArray(bulkIOSTypes),
		"{messages}", sqlArray(bulkMessages),
		"{classes}", sqlArray(repeat(2, bulkClasses)),
		"{methods}", sqlArray(repeat(2, bulkMethods)),
		"{android_modules}", sqlArray(repeat(3, bulkAndroidModules)),
		"{ios_modules}", sqlArray(repeat(3, bulkIOSModules)),
	).Replace(bulkTemplate)
}

// bulkTemplate is BulkCrashesSQL's statement. The left side of the join
// draws independent hashes of the row number and turns them into the
// row's own values; the right side makes each group's stack once per app
// version, as functions over arrays are slow per row on 18.16 (which also
// cannot use a subquery's columns in a lambda outside it). Array literals
// are indexed from 1.
const bulkTemplate = `INSERT INTO {database}.crashes ({columns})
SELECT
    {app},
    toDate({first_day}) + intDiv(sec, 86400),
    toDateTime({first_unix} + intDiv(sec, 60) * 60),
    generateUUIDv4(),
    bitOr(cityHash64(number, 6), 1),
    {versions}[vi + 1],
    {builds}[vi + 1],
    if(android, {android_sdk}, {ios_sdk}),
    if(android, {android_classes}[mi + 1], {ios_classes}[mi + 1]),
    if(android, {android_models}[mi + 1], {ios_models}[mi + 1]),
    if(android, 'android', 'ios'),
    if(android, {android_os}[h4 % {android_os_n} + 1], {ios_os}[h4 % {ios_os_n} + 1]),
    {locales}[ri + 1],
    {countries}[ri + 1],
    {regions}[ri + 1],
    '',
    if(android, {android_types}[g % 8 + 1], {ios_types}[g % 8 + 1]),
    cityHash64('consentry-bulk', g),
    concat({messages}[g % 8 + 1], toString(h5 % 10000), ' (group ', toString(g), ')'),
    f_module,
    f_function,
    f_file,
    f_line,
    f_in_app,
    if(handled = 1, if(android, 'DefaultDispatcher-worker-1', 'com.apple.root.utility-qos'), 'main'),
    handled,
    if(handled = 1 AND h5 % 3 = 0, 'background', 'foreground'),
    ['screen_view', 'screen_view', 'tap'],
    ['home', 'editor', 'editor'],
    [toInt64(180000), toInt64(60000), toInt64(0)]
FROM
(
    SELECT
        number,
        cityHash64(number, 1) AS h1,
        cityHash64(number, 2) AS h2,
        cityHash64(number, 3) AS h3,
        cityHash64(number, 4) AS h4,
        cityHash64(number, 5) AS h5,
        toUInt64(floor(pow({groups} + 1, (h1 % 1000000) / 1000000.)) - 1) AS g,
        g % 5 < 3 AS android,
        h2 % {seconds} AS sec,
        toUInt64(intDiv(intDiv(sec, 86400) * 3, {days}) + h3 % 2) AS vi,
        if(android, intDiv(h4, 7) % {android_models_n}, intDiv(h4, 7) % {ios_models_n}) AS mi,
        {place_slots}[intDiv(h3, 2) % {place_slots_n} + 1] AS ri,
        toUInt8(g % 7 = 3) AS handled
    FROM numbers({n})
) AS crash
ANY LEFT JOIN
(
    SELECT
        toUInt64(number % {groups}) AS g,
        toUInt64(intDiv(number, {groups})) AS vi,
        g % 5 < 3 AS group_android,
        toUInt64(3 + g % 6) AS frames,
        g % 2 AS app_lo,
        1 + g % 3 AS app_n,
        arraySlice({classes}, g % 10 + 1, frames) AS f_class,
        arraySlice({methods}, (g * 3) % 10 + 1, frames) AS f_method,
        if(group_android, arraySlice({android_modules}, g % 4 + 1, frames), arraySlice({ios_modules}, g % 4 + 1, frames)) AS f_system,
        if(group_android, 'com.example.notes', 'NotesApp') AS app_module,
        if(group_android, '.kt', '.swift') AS app_ext,
        if(group_android, '.java', '.swift') AS system_ext,
        arrayMap(i -> toUInt8(i >= app_lo AND i < app_lo + app_n), range(frames)) AS f_in_app,
        arrayMap((a, m) -> if(a = 1, app_module, m), f_in_app, f_system) AS f_module,
        arrayMap((c, m) -> concat(c, '.', m), f_class, f_method) AS f_function,
        arrayMap((c, a) -> concat(c, if(a = 1, app_ext, system_ext)), f_class, f_in_app) AS f_file,
        arrayMap(i -> toUInt32(20 + (g * 31 + i * 97 + vi * 13) % 900), range(frames)) AS f_line
    FROM numbers({stacks})
) AS stack
USING (g, vi)`

// sqlString returns s as a single-quoted SQL string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// sqlArray returns an array literal of the strings ss.
func sqlArray(ss []string) string {
	quoted := make([]string, len(ss))
	for i, s := range ss {
		quoted[i] = sqlString(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// repeat returns times copies of s, one after the other.
func repeat(times int, s []string) []string {
	var out []string
	for range times {
		out = append(out, s...)
	}
	return out
}

// bulkDevices are the parallel model and class lists of one OS.
type bulkDevices struct{ models, classes []string }

// bulkDevicesOf returns fakedata's devices of os.
func bulkDevicesOf(os string) bulkDevices {
	var d bulkDevices
	for _, w := range fakedata.DevicesOf(os) {
		d.models, d.classes = append(d.models, w.Value.Model), append(d.classes, w.Value.Class)
	}
	return d
}

// What the bulk rows are made of. A group's frames take consecutive names
// from a position its number picks, so the statement repeats the lists to
// cover the longest stack.
var (
	bulkAndroidTypes = []string{
		"java.lang.IllegalStateException", "java.lang.NullPointerException", "java.lang.IndexOutOfBoundsException",
		"java.lang.IllegalArgumentException", "kotlin.UninitializedPropertyAccessException", "java.io.IOException",
		"SIGSEGV", "ANR",
	}
	bulkIOSTypes = []string{
		"EXC_BREAKPOINT", "NSInternalInconsistencyException", "EXC_BAD_ACCESS", "NSInvalidArgumentException",
		"EXC_CRASH (SIGABRT)", "NotesApp.SyncError", "Swift.DecodingError.dataCorrupted", "EXC_CRASH (SIGKILL)",
	}
	bulkMessages = []string{
		"Fragment not attached to a context, tag ", "Attempt to invoke virtual method on a null object reference, offset ",
		"Index out of bounds for length ", "Invalid argument, code ", "lateinit property not initialized, page ",
		"Upload failed for [email], HTTP ", "Fatal signal 11 (SIGSEGV), code 1 (SEGV_MAPERR), fault addr 0x7b",
		"Input dispatching timed out, waited ms ",
	}
	bulkClasses = []string{
		"NoteEditor", "SyncEngine", "NoteListAdapter", "ImageCache", "PdfExporter",
		"SearchIndex", "SettingsScreen", "ShareSheet", "AttachmentStore", "NoteRepository",
	}
	bulkMethods        = []string{"save", "load", "bind", "decode", "render", "query", "apply", "merge", "refresh", "update"}
	bulkAndroidModules = []string{"android.os", "android.app", "java.util.concurrent", "kotlinx.coroutines"}
	bulkIOSModules     = []string{"UIKitCore", "CoreFoundation", "libdispatch.dylib", "libsystem_kernel.dylib"}
)
