//go:build race

package testutil

// RaceEnabled reports a build with the race detector. Under it sync.Pool
// drops items at random and the regexp package's pooled machines with them,
// so allocation counts and memory figures of pooled paths mean nothing.
const RaceEnabled = true
