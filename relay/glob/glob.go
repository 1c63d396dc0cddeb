// Package glob matches Relay's simple globs, where '*' is any run of
// characters and every other byte matches itself, case-sensitively (release
// globs of dynamic sampling rules, inbound filters and tail-sampling rules).
//
// Patterns and subjects are client- or config-controlled, so Match
// backtracks only to the last star: at most len(pattern)×len(s) steps for
// any input, no recursion, no allocation.
package glob

import "strings"

// Match reports whether s matches pattern.
func Match[S ~string | ~[]byte](pattern string, s S) bool {
	if pattern == "*" {
		return true
	}
	if !strings.Contains(pattern, "*") {
		if len(pattern) != len(s) {
			return false
		}
		for i := range len(s) {
			if pattern[i] != s[i] {
				return false
			}
		}
		return true
	}
	px, sx, starPx, starSx := 0, 0, -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starPx >= 0:
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
