//go:build !race

package scrub

// raceEnabled: see race_test.go.
const raceEnabled = false
