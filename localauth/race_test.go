//go:build race

package localauth

// raceEnabled: the race detector makes hashing some 30 times slower and
// its timing meaningless.
const raceEnabled = true
