//go:build !cgo

package main

// cgoBuild: Pebble's memtables and block cache are Go byte slices, on the Go
// heap and inside GOMEMLIMIT.
const cgoBuild = false
