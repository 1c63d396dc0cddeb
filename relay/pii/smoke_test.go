package pii

import "testing"

func TestSmoke(t *testing.T) {
	got := scrub(t, DataScrubbingSettings{}, `{"applications":{"$string":["@anything:hash"]}}`, `{"extra":{"myvalue":"foobar"}}`)
	t.Log(got)
	got = scrub(t, DataScrubbingSettings{}, `{"rules":{"remove_bad_headers":{"type":"redact_pair","keyPattern":"(?i)cookie|secret[-_]?key"}},"applications":{"$string":["@ip"],"$object.**":["remove_bad_headers"]}}`,
		`{"logentry":{"formatted":"Hello world!"},"request":{"env":{"SECRET_KEY":"134141231231231231231312"},"headers":[["Cookie","super secret"],["X-Forwarded-For","127.0.0.1"]]},"tags":[["forwarded_for","127.0.0.1"]]}`)
	t.Log(got)
}
