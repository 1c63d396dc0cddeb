package relay

import (
	"slices"
	"testing"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/record"
)

// A digest carries what a dropped record's outcomes need, and the
// digester stops keeping them past maxDropDigests.
func TestDropDigestRoundTrip(t *testing.T) {
	lim := envelope.DefaultLimits()
	d := &dropDigester{limits: &lim}
	env := []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n" + `{"type":"event"}` + "\n{}\n" +
		`{"type":"attachment","length":3}` + "\nabc\n")
	rec := record.Record{Class: envelope.ClassError, Items: 2, ReceivedAt: 1e18, ProjectID: 42,
		PublicKey: []byte("k1"), ClientIP: []byte("10.0.0.1, 203.0.113.9")} // the client first, as recordOrigin reads it
	v := record.Append(nil, &rec, env)
	s := record.StreamFor(envelope.ClassError, 0).ID()

	dst := d.digest(nil, s, v)
	dst = d.digest(dst, s, []byte("garbage"))      // does not decode: no entry
	dst = d.digest(dst, record.Outcomes().ID(), v) // outcomes are not digested
	e, rest, ok := cutBytes(dst)
	if !ok || len(rest) != 0 {
		t.Fatalf("want one entry, got %q (rest %q)", dst, rest)
	}
	var o outcome.Origin
	n, pairs, ok := decodeDropDigest(e, &o, nil)
	if !ok || n != 2 || o.ProjectID != 42 || string(o.Key) != "k1" || o.Received.UnixNano() != 1e18 ||
		o.EventID.String() != "9ec79c33ec9942ab8353589fcb2e04dc" || o.RemoteAddr != "10.0.0.1" {
		t.Errorf("decoded items %d, origin %+v, ok %v", n, o, ok)
	}
	want := []dropPair{{envelope.CategoryError, 1}, {envelope.CategoryAttachment, 3}, {envelope.CategoryAttachmentItem, 1}}
	if !slices.Equal(pairs, want) {
		t.Errorf("quantities %v, want %v", pairs, want)
	}

	full := make([]byte, maxDropDigests)
	if got := d.digest(full, s, v); len(got) != maxDropDigests {
		t.Errorf("past maxDropDigests the digester appended %d bytes", len(got)-maxDropDigests)
	}
}
