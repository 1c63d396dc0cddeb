// Package useragent is the process's one User-Agent parser: uap-core's
// rules (the ones Relay uses), through uap-go, compiled on first use and
// shared by the legacy-browsers inbound filter (relay/policy) and the
// normalizer's browser, OS and device contexts (relay/normalize).
// Compiling the rules takes about 50 ms and 12 MiB of heap, so a process
// pays it once, and only when an event needs it; parsed agents are kept
// in one bounded cache (CacheSize per kind: browser, OS, device).
package useragent

import (
	"fmt"
	"sync"

	"github.com/ua-parser/uap-go/uaparser"
)

// CacheSize is how many parsed User-Agent strings the parser keeps, per
// kind of lookup (each string is at most server.max_header_bytes).
const CacheSize = 1024

// Result is what a User-Agent says: browser, operating system, device.
// Each is non-nil, with Family "Other" when not recognised.
type Result struct {
	Browser *uaparser.UserAgent
	OS      *uaparser.Os
	Device  *uaparser.Device
}

var parser = sync.OnceValues(func() (*uaparser.Parser, error) {
	p, err := uaparser.New(uaparser.WithCacheSize(CacheSize))
	if err != nil {
		return nil, fmt.Errorf("useragent: uap-core rules: %w", err)
	}
	return p, nil
})

// Browser parses the browser of ua, building the parser on the first call.
func Browser(ua string) (*uaparser.UserAgent, error) {
	p, err := parser()
	if err != nil {
		return nil, err
	}
	return p.ParseUserAgent(ua), nil
}

// Parse parses browser, OS and device of ua, one after the other
// (uaparser.Parser.Parse starts a goroutine for each).
func Parse(ua string) (Result, error) {
	p, err := parser()
	if err != nil {
		return Result{}, err
	}
	return Result{Browser: p.ParseUserAgent(ua), OS: p.ParseOs(ua), Device: p.ParseDevice(ua)}, nil
}
