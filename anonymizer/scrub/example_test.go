package scrub_test

import (
	"fmt"

	"github.com/consentry/consentry/anonymizer/scrub"
)

func Example() {
	s := scrub.New(scrub.Config{})
	fmt.Println(s.String("sync failed for jane.doe@example.com at 203.0.113.7:443"))
	fmt.Println(s.String("open /Users/jane/Library/notes.db: permission denied"))
	fmt.Println(s.String("at com.example.notes.NoteEditor.save(NoteEditor.kt:42)"))
	// Output:
	// sync failed for [email] at [ip]:443
	// open /Users/[user]/Library/notes.db: permission denied
	// at com.example.notes.NoteEditor.save(NoteEditor.kt:42)
}

func ExampleScrubber_Find() {
	s := scrub.New(scrub.Config{})
	in := "Authorization: Bearer dXNlcjpwYXNzd29yZDEyMw user_id=829301"
	s.Find(in, func(k scrub.Kind, start, end int) {
		fmt.Printf("%s %q\n", k, in[start:end])
	})
	// Output:
	// token "dXNlcjpwYXNzd29yZDEyMw"
	// id "829301"
}

func ExampleScrubber_IsIdentifierKey() {
	s := scrub.New(scrub.Config{ExtraKeys: []string{"loyalty_number"}})
	for _, key := range []string{"user_email", "deviceId", "LoyaltyNumber", "screen_name", "latency_ms"} {
		fmt.Println(key, s.IsIdentifierKey(key))
	}
	// Output:
	// user_email true
	// deviceId true
	// LoyaltyNumber true
	// screen_name false
	// latency_ms false
}

func ExampleConfig() {
	s := scrub.New(scrub.Config{Disabled: []scrub.Kind{scrub.Coordinates}})
	fmt.Println(s.String("tile 48.20849, 16.37208 failed for jane@example.com"))
	// Output:
	// tile 48.20849, 16.37208 failed for [email]
}
