//go:build race

package adauth

// raceEnabled: the race detector slows the handler several times over and
// makes timing measurements meaningless.
const raceEnabled = true
