package pipeline

import "context"

// unhurriedKey marks a context as Unhurried.
type unhurriedKey struct{}

// Unhurried returns ctx marked for a store that nobody is waiting on and
// that has nothing queued behind it: a spool shipping what it received
// while it keeps up. The store should then spend its work one piece at a
// time (one table after another rather than all at once), leaving the
// machine's other cores to the requests being acknowledged; a store
// behind on its work, or one a request waits for, gets an unmarked
// context and goes at full speed.
func Unhurried(ctx context.Context) context.Context {
	return context.WithValue(ctx, unhurriedKey{}, true)
}

// IsUnhurried reports whether ctx was marked by Unhurried.
func IsUnhurried(ctx context.Context) bool {
	v, _ := ctx.Value(unhurriedKey{}).(bool)
	return v
}
