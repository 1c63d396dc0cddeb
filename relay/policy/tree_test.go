package policy

import (
	"testing"

	"github.com/baton-relay/baton/envelope"
	evtree "github.com/baton-relay/baton/relay/event"
)

// An event read from its parsed tree answers every filter as the same
// event read from its JSON, in the SDK's shapes and in normalized ones.
func TestEventFromTreeMatchesJSON(t *testing.T) {
	events := []string{
		`{"message":"plain","release":"1.0","dist":7,"environment":"prod","platform":"javascript","logger":"l","level":"error","user":{"id":42,"email":"a@b","ip_address":"127.0.0.1","segment":"beta","username":"u"},"sdk":{"name":"sentry.js","version":"8.0"}}`,
		`{"logentry":{"message":"Error %s","formatted":"Error x"},"tags":[["a","b"],["n",1],["bad"]],"contexts":{"browser":{"name":"Firefox","version":"128.0"},"os":{"name":"Linux","n":3,"obj":{}}}}`,
		`{"sentry.interfaces.Message":{"message":"legacy"},"tags":{"a":"b","t":true}}`,
		`{"message":{"message":"obj","formatted":"objf"}}`,
		`{"exception":{"values":[{"type":"TypeError","value":"Extension context invalidated","stacktrace":{"frames":[{"abs_path":"chrome-extension://x/a.js"},{"abs_path":"<anonymous>"}]}}]}}`,
		`{"exception":[{"type":"E"},{"value":"v"}]}`,
		`{"request":{"url":"http://localhost:3000/app","method":"GET","headers":[["User-Agent","Mozilla/5.0 (compatible; Googlebot/2.1)"],["X-Forwarded-For","::1"],["Host","localhost:80"]]}}`,
		`{"request":{"headers":{"User-Agent":"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0)"}}}`,
		`{"type":"transaction","transaction":"/api/health"}`,
		`{"type":"csp","csp":{"blocked_uri":"chrome-extension://abc","source_file":"https://example.com/a.js"}}`,
		`[1,2]`,
		`{}`,
	}
	fields := []string{
		"event.release", "event.dist", "event.environment", "event.transaction", "event.platform", "event.logger",
		"event.level", "event.message", "event.user.id", "event.user.email", "event.user.segment", "event.user.username",
		"event.user.ip_address", "event.request.url", "event.request.method", "event.sdk.name", "event.sdk.version",
		"event.user_agent", "event.is_local_ip", "event.has_bad_browser_extensions", "event.web_crawlers",
		"event.tags.a", "event.tags.n", "event.tags.t", "event.contexts.browser.name", "event.contexts.os.n",
		"event.contexts.os.obj", "event.contexts.none.name",
	}
	for _, kind := range []envelope.ItemType{envelope.ItemEvent, envelope.ItemTransaction} {
		for _, src := range events {
			tree, err := evtree.Parse([]byte(src))
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			fromTree, fromJSON := EventFromTree(kind, tree.Root()).e, EventFromJSON(kind, []byte(src)).e
			for _, f := range fields {
				tv, tok := fromTree.Field(f)
				jv, jok := fromJSON.Field(f)
				if tv != jv || tok != jok {
					t.Errorf("%s of %s: tree %q %v, JSON %q %v", f, src, tv, tok, jv, jok)
				}
			}
			if tl, jl := matchLegacyBrowser([]string{"ie_pre_9"}, fromTree), matchLegacyBrowser([]string{"ie_pre_9"}, fromJSON); tl != jl {
				t.Errorf("legacy browser of %s: tree %v, JSON %v", src, tl, jl)
			}
			tc, jc := fromTree.csp(), fromJSON.csp()
			if (tc == nil) != (jc == nil) || tc != nil && (*tc.BlockedURI != *jc.BlockedURI || *tc.SourceFile != *jc.SourceFile) {
				t.Errorf("csp of %s: tree %+v, JSON %+v", src, tc, jc)
			}
			tree.Release()
		}
	}
}

// Split into Door, Filter and Limit, quotas count only what the filters
// left: a filtered event is not charged.
func TestFilterBeforeQuota(t *testing.T) {
	a := decode(t, `{"filterSettings":{"localhost":{"isEnabled":true}},"quotas":[{"id":"q1","categories":["error"],"scope":"project","limit":1,"window":60,"reasonCode":"too_many"}]}`)
	e := NewEnforcer(Options{})
	in := items(map[envelope.Class]int{envelope.ClassError: 1})
	send := func(payload string) Verdict {
		t.Helper()
		var v Verdict
		if !e.Door(&v, a, []byte(keyA), in, nil, nil) {
			t.Fatal("Door left nothing to do for a project with filters and quotas")
		}
		if !e.FiltersEvent(&v, a, in) {
			t.Fatal("FiltersEvent: false for a project with the localhost filter")
		}
		tree, err := evtree.Parse([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Release()
		e.Filter(&v, a, in, EventFromTree(envelope.ItemEvent, tree.Root()))
		e.Limit(&v, a, []byte(keyA), in, nil)
		return v
	}
	for range 3 {
		if v := send(`{"user":{"ip_address":"127.0.0.1"}}`); v.Filter != FilterLocalhost || len(v.RateLimits) > 0 {
			t.Fatalf("local event: filter %q, limits %v; want localhost and no limit", v.Filter, v.RateLimits)
		}
	}
	if v := send(`{"user":{"ip_address":"192.0.2.1"}}`); v.Drop[envelope.ClassError] {
		t.Fatalf("the first kept event was dropped (%v): filtered events were charged", v.Why[envelope.ClassError])
	}
	if v := send(`{"user":{"ip_address":"192.0.2.1"}}`); !v.Drop[envelope.ClassError] || len(v.RateLimits) != 1 {
		t.Fatalf("the second kept event passed a quota of 1: %+v", v)
	}
}
