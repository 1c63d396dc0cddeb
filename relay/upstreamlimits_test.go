package relay

import (
	"testing"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/forward"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/record"
	"github.com/baton-relay/baton/routing"
)

// A limit the forwarders learned applies to records that waited for their
// project's config too: the releaser drops a limited class with
// rate_limited and moves the others on.
func TestReleaseChecksUpstreamLimits(t *testing.T) {
	const key = "a7c3e9f1b5d24680ace13579bdf02468"
	r := &Relay{enforcer: policy.NewEnforcer(policy.Options{}), partitions: 1}
	p, err := policy.New(config.Config{Mode: config.ModeStatic, Projects: map[string]config.Project{"42": {PublicKeys: []string{key}}}}, nil, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.policy.Store(p)
	upstreamLimits{r}.RecordLimits(42, key, []routing.RateLimit{{RetryAfter: time.Minute, Categories: []string{"error"}, Scope: "project"}})

	rp := &releasePolicy{r: r}
	rec := record.Record{Class: envelope.ClassError, Items: 1, ProjectID: 42, PublicKey: []byte(key), Envelope: []byte("{}\n{\"type\":\"event\"}\n{}\n")}
	if v := rp.Decide(&rec); v.Action != forward.Drop || v.Reason != outcome.ReasonRateLimited {
		t.Fatalf("limited error released as %+v, want a rate_limited drop", v)
	}
	rec.Class, rec.Envelope = envelope.ClassTransaction, []byte("{}\n{\"type\":\"transaction\"}\n{}\n")
	if v := rp.Decide(&rec); v.Action != forward.Forward {
		t.Fatalf("transaction released as %+v, want forwarded", v)
	}
	rec.Class, rec.ProjectID = envelope.ClassError, 43 // another project
	if v := rp.Decide(&rec); v.Action == forward.Drop && v.Reason == outcome.ReasonRateLimited {
		t.Fatalf("another project's error dropped rate_limited")
	}
}
