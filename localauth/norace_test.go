//go:build !race

package localauth

const raceEnabled = false
