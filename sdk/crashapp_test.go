package sdk_test

import (
	"slices"

	"github.com/consentry/consentry/sdk"
)

// The apps the crash helper runs (see TestPanicWithDefaults): app code in
// a package of the test binary's main module that is not the SDK's.
func init() {
	sdk.RegisterCrashApp("nil-map-write", func(c *sdk.Client) {
		if err := c.RecordScreenView("editor"); err != nil {
			panic(err)
		}
		if err := c.RecordGesture("tap", "editor", 1, 0); err != nil {
			panic(err)
		}
		// The comparator runs inside the standard library's sort.
		slices.SortFunc([]int{2, 1}, func(a, b int) int {
			saveDraft(nil)
			return a - b
		})
	})
}

// saveDraft writes to a nil map: a runtime error, whose panic value is of
// an unexported runtime type.
//
//go:noinline
func saveDraft(drafts map[string]string) {
	drafts["current"] = "text"
}
