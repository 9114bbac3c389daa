//go:build !race

package collector

// raceEnabled tells tests that sync.Pool drops what it is given at random.
const raceEnabled = false
