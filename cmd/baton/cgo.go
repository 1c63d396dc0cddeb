//go:build cgo

package main

// cgoBuild: Pebble's memtables and block cache come from C's malloc, outside
// the Go heap and outside GOMEMLIMIT.
const cgoBuild = true
