package project

import "testing"

// loadConfig is the state baton-load's fake Sentry serves for every key
// (cmd/baton-load/sentry.go): Sentry's default data scrubbing.
const loadConfig = `{"projectId":42,"rev":"1","publicKeys":[{"publicKey":"a7c3e9f1b5d24680ace13579bdf02468","isEnabled":true}],` +
	`"config":{"allowedDomains":["*"],"datascrubbingSettings":{"excludeFields":[],"scrubData":true,"scrubDefaults":true,"scrubIpAddresses":false,"sensitiveFields":[]}}}`

// BenchmarkDecodeState is the decode of a managed-mode cache miss.
func BenchmarkDecodeState(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeState([]byte(loadConfig)); err != nil {
			b.Fatal(err)
		}
	}
}
