//go:build race

package scrub

// raceEnabled: the race detector makes sync.Pool drop buffers at random,
// so tests cannot count allocations of texts that need the detection copy.
const raceEnabled = true
