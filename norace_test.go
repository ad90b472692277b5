//go:build !race

package adauth

const raceEnabled = false
