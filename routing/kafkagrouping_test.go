package routing

import (
	"testing"

	"github.com/baton-relay/baton/envelope"
)

func TestEventGrouping(t *testing.T) {
	t.Parallel()
	f := func(env, wantHash, wantFinal string) {
		t.Helper()
		hash, final := eventGrouping([]byte(env))
		if string(hash) != wantHash || string(final) != wantFinal || (hash == nil) != (wantHash == "") {
			t.Errorf("%q: hash %q final %q, want %q %q", env, hash, final, wantHash, wantFinal)
		}
	}
	const h = "0123456789abcdef0123456789abcdef"
	f("{}\n{\"type\":\"event\",\"grouping_hash\":\""+h+"\",\"grouping_final\":true,\"length\":2}\n{}\n", h, "true")
	f("{}\n{\"type\":\"event\",\"grouping_final\":false,\"grouping_hash\":\""+h+"\"}\n{}\n", h, "false")
	// An attachment first, with a payload that looks like an item header.
	f("{}\n{\"type\":\"attachment\",\"length\":35}\n{\"type\":\"event\",\"grouping_hash\":1}\n{\"type\":\"event\",\"grouping_hash\":\"abc\"}\n{}\n", "abc", "false")
	f("{}\n{\"type\":\"security\",\"grouping_hash\":\""+h+"\",\"grouping_final\":false}\n{}\n", h, "false")
	f("{}\n{\"type\":\"event\"}\n{}\n", "", "")
	f("{}\n{\"type\":\"event\",\"grouping_hash\":\"a\\u0062\"}\n{}\n", "", "")
	f("{}\n{\"type\":\"attachment\",\"length\":99}\n{}\n", "", "")
	f("{}", "", "")
}

// Error and security records carry the item's grouping as headers; other
// classes and events without a hash carry none.
func TestKafkaGroupingHeaders(t *testing.T) {
	t.Parallel()
	const h = "0123456789abcdef0123456789abcdef"
	body := "{}\n{\"type\":\"event\",\"grouping_hash\":\"" + h + "\",\"grouping_final\":true}\n{}\n"
	grouped, plain, other := testMsg(1, body), testMsg(1, "{}\n{\"type\":\"event\"}\n{}\n"), testMsg(1, body)
	other.Class = envelope.ClassTransaction
	security := testMsg(1, "{}\n{\"type\":\"security\",\"grouping_hash\":\""+h+"\",\"grouping_final\":false}\n{}\n")
	security.Class = envelope.ClassSecurity
	var kb kafkaBatch
	recs := kb.build("events", []Message{grouped, plain, other, security})
	get := func(i int, key string) string {
		for _, hd := range recs[i].Headers {
			if hd.Key == key {
				return string(hd.Value)
			}
		}
		return ""
	}
	if get(0, HeaderGroupingHash) != h || get(0, HeaderGroupingFinal) != "true" || get(0, HeaderProjectID) != "1" {
		t.Errorf("grouped error headers %v", recs[0].Headers)
	}
	if get(3, HeaderGroupingHash) != h || get(3, HeaderGroupingFinal) != "false" {
		t.Errorf("grouped security report headers %v", recs[3].Headers)
	}
	for i := 1; i < 3; i++ {
		if get(i, HeaderGroupingHash) != "" || get(i, HeaderGroupingFinal) != "" {
			t.Errorf("record %d has grouping headers %v", i, recs[i].Headers)
		}
	}
}

// BenchmarkEventGrouping is what build adds to an error record: finding
// the event item header behind the envelope header.
func BenchmarkEventGrouping(b *testing.B) {
	env := []byte("{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"sent_at\":\"2025-03-01T12:30:00.5Z\",\"sdk\":{\"name\":\"sentry.go\"}}\n" +
		"{\"type\":\"event\",\"length\":2,\"fully_normalized\":true,\"grouping_hash\":\"0123456789abcdef0123456789abcdef\",\"grouping_final\":true}\n{}\n")
	b.ReportAllocs()
	for b.Loop() {
		eventGrouping(env)
	}
}
