package project

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// stateWithPII decodes a state of key whose config carries scrubbing.
func stateWithPII(t *testing.T, key, scrubbing string) *State {
	t.Helper()
	st, err := DecodeState(fmt.Appendf(nil, `{"projectId":1,"rev":"1","publicKeys":[{"publicKey":%q,"isEnabled":true}],"config":{%s}}`, key, scrubbing))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Projects with the same scrubbing settings share one compiled PII config;
// different settings do not; and the table forgets a compiled config once
// no state uses it, so it is bounded by the states alive.
func TestPIISharedBetweenProjects(t *testing.T) {
	const defaults = `"datascrubbingSettings":{"scrubData":true,"scrubDefaults":true,"sensitiveFields":["card"]}`
	const other = `"datascrubbingSettings":{"scrubData":true,"scrubDefaults":true,"sensitiveFields":["iban"]}`
	const broken = `"datascrubbingSettings":{"scrubData":"yes"}`
	a, b := stateWithPII(t, "a", defaults), stateWithPII(t, "b", defaults)
	c := stateWithPII(t, "c", other)
	if a.PII == nil || a.PII != b.PII || a.PIIErr != nil {
		t.Fatalf("same settings: PII %p and %p (err %v), want one shared config", a.PII, b.PII, a.PIIErr)
	}
	if c.PII == nil || c.PII == a.PII {
		t.Fatalf("other settings: PII %p, defaults' %p: want its own", c.PII, a.PII)
	}
	d, e := stateWithPII(t, "d", broken), stateWithPII(t, "e", broken)
	if d.PIIErr == nil || e.PIIErr == nil || d.PII != nil {
		t.Fatalf("broken settings: PII %v, errors %v, %v", d.PII, d.PIIErr, e.PIIErr)
	}
	keys := []string{"{" + defaults + "}", "{" + other + "}", "{" + broken + "}"}
	for i := range keys {
		keys[i] = keys[i][len(`{"datascrubbingSettings":`):len(keys[i])-1] + "\x00"
		if !hasPIIEntry(keys[i]) {
			t.Fatalf("no table entry for %q", keys[i])
		}
	}
	runtime.KeepAlive([]*State{a, b, c, d, e})
	a, b, c, d, e = nil, nil, nil, nil, nil
	for deadline := time.Now().Add(10 * time.Second); hasPIIEntry(keys[0]) || hasPIIEntry(keys[1]) || hasPIIEntry(keys[2]); {
		if time.Now().After(deadline) {
			t.Fatal("table entries left after their states were collected")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run on their own goroutine after a GC
	}
}

func hasPIIEntry(key string) bool {
	piiShared.mu.Lock()
	defer piiShared.mu.Unlock()
	_, ok := piiShared.m[key]
	return ok
}
