package project

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/baton-relay/baton/relay/pii"
)

// Compiled PII configs are shared between projects whose piiConfig and
// datascrubbingSettings are the same bytes: most projects keep Sentry's
// defaults, and one compiled config holds about 20 KB of tables, three
// quarters of a cached state (BENCHMARKS.md, "Projects"). A compiled
// config is read-only once built, as it already is across the requests of
// one project.
//
// The table holds weak pointers, so an entry lives only while some State
// uses it: its size is bounded by the states the cache holds, and a
// cleanup removes the entry once the last of them is collected.
var piiShared = struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[compiledPII]
}{m: make(map[string]weak.Pointer[compiledPII])}

// compiledPII is what compilePII fills a State with.
type compiledPII struct {
	pii *pii.Config
	att *pii.Attachments
	vh  *pii.ViewHierarchy
	err error
}

// sharedPII returns the compiled form of settings and piiConfig (raw JSON,
// nil when absent), compiling it unless a live State shares it already.
func sharedPII(settings, piiConfig json.RawMessage) *compiledPII {
	key := string(settings) + "\x00" + string(piiConfig)
	if c := lookupPII(key); c != nil {
		return c
	}
	c := compilePIIParts(settings, piiConfig)
	piiShared.mu.Lock()
	defer piiShared.mu.Unlock()
	if old := piiShared.m[key].Value(); old != nil {
		return old // compiled meanwhile by another fetch
	}
	piiShared.m[key] = weak.Make(c)
	runtime.AddCleanup(c, dropPII, key)
	return c
}

func lookupPII(key string) *compiledPII {
	piiShared.mu.Lock()
	defer piiShared.mu.Unlock()
	return piiShared.m[key].Value()
}

// dropPII removes key's entry once its compiled config was collected,
// unless a newer one took the key meanwhile.
func dropPII(key string) {
	piiShared.mu.Lock()
	defer piiShared.mu.Unlock()
	if wp, ok := piiShared.m[key]; ok && wp.Value() == nil {
		delete(piiShared.m, key)
	}
}

func compilePIIParts(settingsRaw, piiConfig json.RawMessage) *compiledPII {
	var settings pii.DataScrubbingSettings
	c := &compiledPII{}
	fields := map[string]json.RawMessage{}
	if settingsRaw != nil {
		fields["datascrubbingSettings"] = settingsRaw
	}
	if err := decodeField(fields, "datascrubbingSettings", &settings, nil); err != nil {
		c.err = fmt.Errorf("%w: %v", pii.ErrInvalidConfig, err)
		return c
	}
	c.pii, c.err = pii.Compile(settings, piiConfig)
	if c.err == nil {
		// The same piiConfig compiled: it cannot fail where Compile did not.
		c.att, _ = pii.CompileAttachments(piiConfig)
		c.vh = c.pii.ViewHierarchy() // its piiConfig pass, not compiled again
	}
	return c
}
