package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/baton-relay/baton/envelope"
	evtree "github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/project"
)

// judge runs Apply on one event item of kind with the project's
// filterSettings, from client address 192.0.2.1, and returns the name of
// the filter that dropped it ("" when kept).
func judge(t *testing.T, settings string, global *project.GenericFilters, kind envelope.ItemType, payload string) string {
	t.Helper()
	a := decode(t, `{"filterSettings":`+settings+`}`)
	a.global = global
	class := map[envelope.ItemType]envelope.Class{
		envelope.ItemEvent: envelope.ClassError, envelope.ItemTransaction: envelope.ClassTransaction,
		envelope.ItemSecurity: envelope.ClassSecurity, envelope.ItemRawSecurity: envelope.ClassSecurity,
	}[kind]
	in := items(map[envelope.Class]int{class: 2, envelope.ClassSession: 1}) // the event and an attachment, and a session
	var v Verdict
	NewEnforcer(Options{}).Apply(&v, a, []byte(keyA), in, nil,
		func() netip.Addr { return netip.MustParseAddr("192.0.2.1") },
		func() (envelope.ItemType, []byte) { return kind, []byte(payload) })
	if v.Drop[envelope.ClassSession] {
		t.Fatalf("a filter dropped the session")
	}
	if (v.Filter != "") != v.Drop[class] || v.Drop[class] && v.Why[class] != outcome.ReasonFiltered {
		t.Fatalf("filter %q but drop %v (%v)", v.Filter, v.Drop[class], v.Why[class])
	}
	return v.Filter
}

func uaEvent(ua string) string {
	b, _ := json.Marshal(ua)
	return `{"request":{"headers":[["User-Agent",` + string(b) + `]]}}`
}

func exceptionEvent(ty, value string) string {
	m := map[string]any{}
	if ty != "" {
		m["type"] = ty
	}
	if value != "" {
		m["value"] = value
	}
	b, _ := json.Marshal(map[string]any{"exception": map[string]any{"values": []any{m}}})
	return string(b)
}

func check(t *testing.T, settings string, kind envelope.ItemType, payload, want string) {
	t.Helper()
	if got := judge(t, settings, nil, kind, payload); got != want {
		t.Errorf("%s on %s: filtered by %q, want %q", settings, payload, got, want)
	}
}

// Cases from Relay's relay-filter web_crawlers.rs tests.
func TestFilterWebCrawlers(t *testing.T) {
	on := `{"webCrawlers":{"isEnabled":true}}`
	for _, ua := range []string{
		"Mediapartners-Google", "AdsBot-Google", "Googlebot", "FeedFetcher-Google", "BingBot", "BingPreview",
		"Baiduspider", "Slurp", "Sogou", "facebook", "ia_archiver", "bots ", "bots;", "bots)", "spider ",
		"spider;", "spider)", "Calypso AppCrawler", "pingdom", "lyticsbot", "AWS Security Scanner",
		"Mozilla/5.0 (Linux; Android 6.0.1; Calypso AppCrawler Build/MMB30Y; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/53.0.2785.124 Mobile Safari/537.36",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		"Slack-ImgProxy 0.19 (+https://api.slack.com/robots)", "Twitterbot/1.0",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; HubSpot Crawler; web-crawlers@hubspot.com)",
		"Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
		"Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36",
	} {
		check(t, on, envelope.ItemEvent, uaEvent(ua), FilterWebCrawlers)
	}
	for _, ua := range []string{
		"some user agent", "IE", "ie", "opera", "safari",
		"APIs-Google (+https://developers.google.com/webmasters/APIs-Google.html)",
		"Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2228.0 Safari/537.36",
		"Slackbot 1.0(+https://api.slack.com/robots)",
	} {
		check(t, on, envelope.ItemEvent, uaEvent(ua), "")
	}
	check(t, `{"webCrawlers":{"isEnabled":false}}`, envelope.ItemEvent, uaEvent("Googlebot"), "")
	// The headers as an object, as SDKs send them.
	check(t, on, envelope.ItemTransaction, `{"request":{"headers":{"user-agent":"Googlebot"}}}`, FilterWebCrawlers)
}

// Cases from Relay's browser_extensions.rs tests.
func TestFilterBrowserExtensions(t *testing.T) {
	on := `{"browserExtensions":{"isEnabled":true}}`
	source := func(src string) string {
		b, _ := json.Marshal(src)
		return `{"exception":{"values":[{"stacktrace":{"frames":[{"abs_path":` + string(b) +
			`},{"abs_path":"<anonymous>"},{"abs_path":"<anonymous>"}]}},{},{}]}}`
	}
	for _, src := range []string{
		"https://graph.facebook.com/", "https://connect.facebook.net/en_US/sdk.js",
		"https://eatdifferent.com.woopra-ns.com/main.js", "https://static.woopra.com/js/woopra.js",
		"chrome-extension://my-extension/or/something", "chrome://my-extension/or/something",
		"moz-extension://my-extension/or/something", "safari-extension://my-extension/or/something",
		"safari-web-extension://my-extension/or/something", "127.0.0.1:4001/isrunning",
		"webappstoolbarba.texthelp.com/", "http://metrics.itunes.apple.com.edgesuite.net/itunespreview/itunes/browser:firefo",
		"https://fscr.kaspersky-labs.com/B-9B72-7B7/main.js", "webkit-masked-url:",
	} {
		check(t, on, envelope.ItemEvent, source(src), FilterBrowserExtensions)
	}
	for _, v := range []string{
		"what does conduitPage even do", "null is not an object (evaluating 'elt.parentNode')",
		"some error on top.GLOBALS", "biiig problem on originalCreateNotification", "canvas.contentDocument",
		"MyApp_RemoveAllHighlights", "http://tt.epicplay.com/not/very/good", "Can't find variable: ZiteReader, I wonder why?",
		"jigsaw is not defined and I'm not happy about it", "ComboSearch is not defined",
		"http://loading.retry.widdit.com/some/obscure/error", "atomicFindClose has messed up",
		"bad news, we have a fb_xd_fragment", "oh no! we have a case of: bmi_SafeAddOnload, again !",
		"watch out ! EBCallBackMessageReceived", "error _gCrWeb", "plugin.setSuspendState is not a function",
		"Extension context invalidated", "useless error webkit-masked-url: please filter",
		"TypeError: can't access dead object because dead stuff smells bad",
	} {
		check(t, on, envelope.ItemEvent, exceptionEvent("", v), FilterBrowserExtensions)
	}
	check(t, on, envelope.ItemEvent, source("https://some/resonable/source.js"), "")
	check(t, on, envelope.ItemEvent, exceptionEvent("", "some perfectly reasonable value"), "")
	check(t, `{"browserExtensions":{"isEnabled":false}}`, envelope.ItemEvent, exceptionEvent("", "fb_xd_fragment"), "")
}

// Cases from Relay's localhost.rs tests.
func TestFilterLocalhost(t *testing.T) {
	on := `{"localhost":{"isEnabled":true}}`
	for _, ip := range []string{"127.0.0.1", "::1"} {
		check(t, on, envelope.ItemEvent, `{"user":{"ip_address":"`+ip+`"}}`, FilterLocalhost)
	}
	for _, ip := range []string{"133.12.12.1", "2001:db8:0:0:0:ff00:42:8329"} {
		check(t, on, envelope.ItemEvent, `{"user":{"ip_address":"`+ip+`"}}`, "")
	}
	// {{auto}} is the client's address: 192.0.2.1 here.
	check(t, on, envelope.ItemEvent, `{"user":{"ip_address":"{{auto}}"}}`, "")
	check(t, on, envelope.ItemEvent, `{}`, "")
	for _, d := range []string{"127.0.0.1", "localhost", "foo.localhost", "foo.bar.baz.localhost"} {
		check(t, on, envelope.ItemEvent, `{"request":{"url":"http://`+d+`:8080/"}}`, FilterLocalhost)
	}
	for _, d := range []string{"my.dom.com", "123.123.123.44", "localhost.com", "foolocalhost", "localhostbar", "alocalhostgoesintoabar"} {
		check(t, on, envelope.ItemEvent, `{"request":{"url":"http://`+d+`:8080/"}}`, "")
	}
	check(t, on, envelope.ItemEvent, `{"request":{"url":"file:///Users/Maisey/work/squirrelchasers/src/leaderboard.html"}}`, FilterLocalhost)
	check(t, on, envelope.ItemEvent, `{"request":{"url":"http://www.squirrelchasers.com/leaderboard"}}`, "")
	for _, h := range []string{"Host", "X-Forwarded-Host"} {
		for _, v := range []string{"localhost:3000", "127.0.0.1:3000"} {
			check(t, on, envelope.ItemEvent, `{"request":{"headers":[["`+h+`","`+v+`"]]}}`, FilterLocalhost)
		}
		for _, v := range []string{"localhost.sentry.io", "localhost.sentry.io:3000"} {
			check(t, on, envelope.ItemEvent, `{"request":{"headers":[["`+h+`","`+v+`"]]}}`, "")
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		check(t, on, envelope.ItemEvent, `{"request":{"headers":[["X-Forwarded-For","`+ip+`"]]}}`, FilterLocalhost)
	}
	check(t, `{"localhost":{"isEnabled":false}}`, envelope.ItemEvent, `{"user":{"ip_address":"127.0.0.1"}}`, "")
}

// User agents of Relay's legacy_browsers.rs tests.
const (
	ie8UA          = "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0; Trident/4.0)"
	ieMobile9UA    = "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0; NOKIA; Lumia 710)"
	ie9UA          = "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 7.1; Trident/5.0)"
	ie10UA         = "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"
	ie11UA         = "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko"
	operaMiniPre8  = "Opera/9.80 (J2ME/MIDP; Opera Mini/7.0.32796/59.323; U; fr) Presto/2.12.423 Version/12.16"
	operaMini8     = "Opera/9.80 (J2ME/MIDP; Opera Mini/8.0.35158/36.2534; U; en) Presto/2.12.423 Version/12.16"
	operaPre15     = "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/27.0.1453.12 Safari/537.36 OPR/14.0.1116.4"
	opera15        = "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/28.0.1500.45 Safari/537.36 OPR/15.0.1147.61 (Edition Next)"
	androidPre4    = "Mozilla/5.0 (Linux; U; Android 3.2; nl-nl; GT-P6800 Build/HTJ85B) AppleWebKit/534.13 (KHTML, like Gecko) Version/4.0 Safari/534.13"
	android4       = "Mozilla/5.0 (Linux; U; Android 4.1.1; en-gb; Build/KLP) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Safari/534.30"
	safariPre6     = "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 1063; tr-DE) AppleWebKit/533.16 (KHTML like Gecko) Version/5.0 Safari/533.16"
	safari6        = "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.17.4; en-GB) AppleWebKit/605.1.5 (KHTML, like Gecko) Version/6.0 Safari/605.1.5"
	edgeLegacyUA   = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.10136"
	chromeModernUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)

func TestFilterLegacyBrowsers(t *testing.T) {
	with := func(on bool, opts ...string) string {
		b, _ := json.Marshal(map[string]any{"legacyBrowsers": map[string]any{"isEnabled": on, "options": opts}})
		return string(b)
	}
	check(t, with(false, "default"), envelope.ItemEvent, uaEvent(ie8UA), "")
	for _, ua := range []string{ie9UA, ieMobile9UA, safariPre6, operaPre15, androidPre4, operaMiniPre8} {
		check(t, with(true, "default"), envelope.ItemEvent, uaEvent(ua), FilterLegacyBrowsers)
	}
	for _, ua := range []string{ie10UA, safari6, opera15, android4, operaMini8, chromeModernUA} {
		check(t, with(true, "default"), envelope.ItemEvent, uaEvent(ua), "")
	}
	for _, tc := range []struct {
		ua   string
		opts []string
	}{
		{ie10UA, []string{"android_pre_4", "ie10"}}, {ie11UA, []string{"ie11"}}, {ie10UA, []string{"ie10"}},
		{ie9UA, []string{"ie9"}}, {ieMobile9UA, []string{"ie9"}}, {ie9UA, []string{"android_pre_4", "ie9"}},
		{ie8UA, []string{"ie_pre_9"}}, {ie8UA, []string{"opera_pre_15", "ie_pre_9"}},
		{operaPre15, []string{"opera_pre_15"}}, {operaPre15, []string{"ie10", "opera_pre_15"}},
		{operaMiniPre8, []string{"opera_mini_pre_8"}}, {androidPre4, []string{"android_pre_4"}},
		{safariPre6, []string{"safari_pre_6"}}, {safariPre6, []string{"opera_pre_15", "safari_pre_6"}},
		{edgeLegacyUA, []string{"edge_pre_79"}},
	} {
		check(t, with(true, tc.opts...), envelope.ItemEvent, uaEvent(tc.ua), FilterLegacyBrowsers)
	}
	for _, tc := range []struct{ ua, opt string }{
		{ie11UA, "ie10"}, {ie10UA, "ie9"}, {ie10UA, "ie11"}, {ie9UA, "ie_pre_9"}, {opera15, "opera_pre_15"},
		{operaMini8, "opera_mini_pre_8"}, {android4, "android_pre_4"}, {safari6, "safari_pre_6"},
		{ie8UA, "some_future_option"},
	} {
		check(t, with(true, tc.opt), envelope.ItemEvent, uaEvent(tc.ua), "")
	}
}

// Cases from Relay's error_messages.rs tests.
func TestFilterErrorMessages(t *testing.T) {
	configs := []string{
		`{"errorMessages":{"patterns":["filteredexception*","*this is a filtered exception.","","this is"]}}`,
		`{"errorMessages":{"patterns":["filteredexception: this is a filtered exception.","filteredexception","this is a filtered exception."]}}`,
	}
	cases := []struct {
		ty, value, formatted string
		keep                 bool
	}{
		{"UnfilteredException", "", "UnfilteredException", true},
		{"", "This is an unfiltered exception.", "This is an unfiltered exception.", true},
		{"", "", "This is an unfiltered exception.", true},
		{"", "", "", true},
		{"UnfilteredException", "This is an unfiltered exception.", "UnfilteredException: This is an unfiltered exception.", true},
		{"FilteredException", "", "FilteredException", false},
		{"", "This is a filtered exception.", "This is a filtered exception.", false},
		{"", "", "This is a filtered exception.", false},
		{"FilteredException", "This is a filtered exception.", "FilteredException: This is a filtered exception.", false},
		{"OtherException", "This is a random exception.", "FilteredException: This is a filtered exception.", false},
		{"", "", "FilteredException: This is a filtered exception.", false},
		{"FilteredException", "This is a filtered exception.", "hi this is a legit log message", false},
	}
	for _, cfg := range configs {
		for _, c := range cases {
			ev := map[string]any{"logentry": map[string]any{"formatted": c.formatted}}
			x := map[string]any{}
			if c.ty != "" {
				x["type"] = c.ty
			}
			if c.value != "" {
				x["value"] = c.value
			}
			ev["exception"] = map[string]any{"values": []any{x}}
			b, _ := json.Marshal(ev)
			want := FilterErrorMessages
			if c.keep {
				want = ""
			}
			check(t, cfg, envelope.ItemEvent, string(b), want)
		}
	}
	hydration := `{"errorMessages":{"patterns":["*https://reactjs.org/docs/error-decoder.html?invariant={418,419,422,423,425}*"]}}`
	check(t, hydration, envelope.ItemEvent, exceptionEvent("Error", "Minified React error #423; visit https://reactjs.org/docs/error-decoder.html?invariant=423 for the full message or use the non-minified dev environment for full errors and additional helpful warnings."), FilterErrorMessages)
	check(t, hydration, envelope.ItemEvent, exceptionEvent("Error", "Minified React error #424; visit https://reactjs.org/docs/error-decoder.html?invariant=424 for the full message"), "")
	chunks := `{"errorMessages":{"patterns":["ChunkLoadError: Loading chunk *","*Uncaught *: ChunkLoadError: Loading chunk *"]}}`
	for _, msg := range []string{
		"Error: Uncaught (in promise): ChunkLoadError: Loading chunk 175 failed.",
		"Uncaught (in promise): ChunkLoadError: Loading chunk 175 failed.",
		"ChunkLoadError: Loading chunk 552 failed.",
	} {
		b, _ := json.Marshal(map[string]any{"message": msg}) // as an SDK sends it, before normalization
		check(t, chunks, envelope.ItemEvent, string(b), FilterErrorMessages)
	}
}

// The csp filter with Sentry's default disallowedSources; the matcher
// itself is tested with Relay's table in relay/project (TestMatchesAnyOrigin).
func TestFilterCSP(t *testing.T) {
	sentry := `{"csp":{"disallowedSources":["about","ms-browser-extension","*.superfish.com","chrome://*","chrome-extension://*","chromeinvokeimmediate://*","chromenull://*","localhost"]}}`
	csp := func(blocked, source string) string {
		m := map[string]any{}
		if blocked != "" {
			m["blocked_uri"] = blocked
		}
		if source != "" {
			m["source_file"] = source
		}
		b, _ := json.Marshal(map[string]any{"csp": m})
		return string(b)
	}
	for _, c := range [][2]string{
		{"about", ""}, {"ms-browser-extension", ""}, {"http://foo.superfish.com", ""},
		{"", "chrome-extension://fdsa"}, {"", "http://localhost:8000"}, {"", "http://localhost"}, {"", "http://foo.superfish.com"},
	} {
		check(t, sentry, envelope.ItemSecurity, csp(c[0], c[1]), FilterCSP)
	}
	for _, c := range [][2]string{{"http://example.com", ""}, {"", "http://example.com"}, {"", ""}} {
		check(t, sentry, envelope.ItemSecurity, csp(c[0], c[1]), "")
	}
	// A raw report as the browser sends it, in both formats.
	check(t, sentry, envelope.ItemRawSecurity, `{"csp-report":{"document-uri":"https://example.com/","blocked-uri":"http://foo.superfish.com/x.js"}}`, FilterCSP)
	check(t, sentry, envelope.ItemRawSecurity, `[{"type":"csp-violation","body":{"blockedURL":"chrome-extension://abc/x.js"}}]`, FilterCSP)
	check(t, sentry, envelope.ItemRawSecurity, `{"csp-report":{"blocked-uri":"https://cdn.example.com/x.js"}}`, "")
	// Not a CSP report: the csp filter does not apply.
	check(t, sentry, envelope.ItemTransaction, `{"transaction":"t"}`, "")
}

// Cases from Relay's transaction_name.rs tests.
func TestFilterIgnoreTransactions(t *testing.T) {
	on := `{"ignoreTransactions":{"isEnabled":true,"patterns":["*healthcheck*","*/health"]}}`
	tx := func(name string) string { return fmt.Sprintf(`{"type":"transaction","transaction":%q}`, name) }
	for _, n := range []string{"a/b/healthcheck/c", "a_HEALTHCHECK_b", "healthcheck", "/health", "a/HEALTH"} {
		check(t, on, envelope.ItemTransaction, tx(n), FilterIgnoreTransactions)
	}
	for _, n := range []string{"bad", "/bad", "a/b/c", "health", "healthz", "/health/", "/healthz/", "/healthx", "/healthzx"} {
		check(t, on, envelope.ItemTransaction, tx(n), "")
	}
	check(t, on, envelope.ItemTransaction, `{"type":"transaction"}`, "")
	check(t, `{"ignoreTransactions":{"isEnabled":true,"patterns":[]}}`, envelope.ItemTransaction, tx("/health"), "")
	check(t, `{"ignoreTransactions":{"isEnabled":false,"patterns":["*healthcheck*","*/health"]}}`, envelope.ItemTransaction, tx("/health"), "")
	// Only transactions: an error with that transaction name is kept.
	check(t, on, envelope.ItemEvent, `{"transaction":"/health"}`, "")
}

// The releases filter reads the event's release, not only the trace
// context's.
func TestFilterReleasesFromEvent(t *testing.T) {
	on := `{"releases":{"releases":["1.2.*","0.9"]}}`
	check(t, on, envelope.ItemEvent, `{"release":"1.2.3"}`, FilterReleases)
	check(t, on, envelope.ItemTransaction, `{"release":"0.9"}`, FilterReleases)
	check(t, on, envelope.ItemEvent, `{"release":"1.3.0"}`, "")
	check(t, on, envelope.ItemEvent, `{}`, "")
}

// Cases from Relay's generic.rs tests, and the global config's filters.
func TestFilterGeneric(t *testing.T) {
	mock := `{"generic":{"version":1,"filters":[
		{"id":"firstReleases","isEnabled":true,"condition":{"op":"eq","name":"event.release","value":"1.0"}},
		{"id":"helloTransactions","isEnabled":true,"condition":{"op":"eq","name":"event.transaction","value":"/hello"}}]}}`
	check(t, mock, envelope.ItemEvent, `{"release":"1.0"}`, "firstReleases")
	check(t, mock, envelope.ItemTransaction, `{"transaction":"/hello"}`, "helloTransactions")
	check(t, mock, envelope.ItemTransaction, `{"release":"1.0","transaction":"/hello"}`, "firstReleases")
	check(t, mock, envelope.ItemTransaction, `{"transaction":"/world"}`, "")
	check(t, strings.Replace(mock, `"version":1`, `"version":2`, 1), envelope.ItemEvent, `{"release":"1.0"}`, "")
	// The older object form, and and/or/not/glob over tags and contexts.
	obj := `{"generic":{"version":1,"filters":{"chromeBeta":{"isEnabled":true,"condition":{"op":"and","inner":[
		{"op":"glob","name":"event.contexts.browser.name","value":["Chrome*"]},
		{"op":"not","inner":{"op":"eq","name":"event.tags.level","value":"fatal"}},
		{"op":"or","inner":[{"op":"eq","name":"event.environment","value":"beta"},{"op":"eq","name":"event.user.segment","value":"x"}]}]}}}}}`
	check(t, obj, envelope.ItemEvent, `{"environment":"beta","contexts":{"browser":{"name":"Chrome Mobile"}},"tags":{"level":"error"}}`, "chromeBeta")
	check(t, obj, envelope.ItemEvent, `{"environment":"beta","contexts":{"browser":{"name":"Chrome"}},"tags":[["level","fatal"]]}`, "")
	check(t, obj, envelope.ItemEvent, `{"environment":"prod","contexts":{"browser":{"name":"Chrome"}}}`, "")
	check(t, `{"generic":{"version":1,"filters":[{"id":"off","isEnabled":false,"condition":{"op":"eq","name":"event.release","value":"1.0"}}]}}`,
		envelope.ItemEvent, `{"release":"1.0"}`, "")

	global, err := project.ParseGlobalFilters([]byte(`{"measurements":{},"filters":{"version":1,"filters":[
		{"id":"helloTransactions","isEnabled":true,"condition":{"op":"eq","name":"event.transaction","value":"/hello"}},
		{"id":"flag","isEnabled":true,"condition":{"op":"eq","name":"event.release","value":"2.0"}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	project1 := `{"generic":{"version":1,"filters":[
		{"id":"firstReleases","isEnabled":true,"condition":{"op":"eq","name":"event.release","value":"1.0"}},
		{"id":"flag","isEnabled":false}]}}`
	for _, tc := range []struct{ payload, want string }{
		{`{"transaction":"/hello"}`, "helloTransactions"}, // from the global config
		{`{"release":"1.0"}`, "firstReleases"},
		{`{"release":"2.0"}`, ""}, // the project turns the global filter of that id off
	} {
		if got := judge(t, project1, global, envelope.ItemTransaction, tc.payload); got != tc.want {
			t.Errorf("global filters on %s: %q, want %q", tc.payload, got, tc.want)
		}
	}
	// With no project filters at all, the global ones still apply.
	if got := judge(t, `{}`, global, envelope.ItemTransaction, `{"release":"2.0"}`); got != "flag" {
		t.Errorf("global filter without project filters: %q", got)
	}
}

// Filters are compiled with the project's revision: a new revision with
// other patterns judges by the new ones, and the compiled form is built
// once per decoded state, not per event.
func TestFiltersCompiledPerRevision(t *testing.T) {
	rev := func(r, pattern string) *project.State {
		st, err := project.DecodeState([]byte(`{"projectId":1,"rev":"` + r + `","publicKeys":[{"publicKey":"` + keyA +
			`"}],"config":{"filterSettings":{"errorMessages":{"patterns":["` + pattern + `"]}}}}`))
		if err != nil || len(st.Broken) > 0 {
			t.Fatalf("decode: %v %v", err, st.Broken)
		}
		return st
	}
	r1, r2 := rev("r1", "*timeout*"), rev("r2", "*refused*")
	if r1.Filters.Event().ErrorMessages == r2.Filters.Event().ErrorMessages {
		t.Fatal("two revisions share compiled filters")
	}
	if first, again := r1.Filters.Event(), r1.Filters.Event(); first.ErrorMessages != again.ErrorMessages {
		t.Fatal("compiled filters rebuilt per call")
	}
	e := NewEnforcer(Options{})
	in := items(map[envelope.Class]int{envelope.ClassError: 1})
	run := func(st *project.State, msg string) string {
		var v Verdict
		e.Apply(&v, &Admission{State: st}, []byte(keyA), in, nil, nil,
			func() (envelope.ItemType, []byte) { return envelope.ItemEvent, []byte(`{"message":"` + msg + `"}`) })
		return v.Filter
	}
	if run(r1, "read timeout") != FilterErrorMessages || run(r1, "connection refused") != "" {
		t.Error("revision 1 judged wrongly")
	}
	if run(r2, "read timeout") != "" || run(r2, "connection refused") != FilterErrorMessages {
		t.Error("revision 2 judged wrongly")
	}
	if got := e.FilterCounts()[FilterErrorMessages]; got != 2 {
		t.Errorf("error-message counted %d times, want 2", got)
	}
	// A broken pattern breaks only the filters part.
	st, err := project.DecodeState([]byte(`{"projectId":1,"publicKeys":[{"publicKey":"` + keyA + `"}],"config":{"filterSettings":{"errorMessages":{"patterns":["{a,b"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, broken := st.Broken[project.PartFilters]; !broken {
		t.Error("an unclosed { did not break the filters part")
	}
}

// A project without event filters never asks for the event, and Apply
// still allocates nothing.
func TestNoEventFiltersNoEventRead(t *testing.T) {
	a := decode(t, `{"filterSettings":{"clientIps":{"blacklistedIps":["10.0.0.1"]}}}`)
	in := items(map[envelope.Class]int{envelope.ClassError: 1})
	e := NewEnforcer(Options{})
	var v Verdict
	asked := false
	ev := func() (envelope.ItemType, []byte) { asked = true; return envelope.ItemEvent, []byte(`{}`) }
	addr := func() netip.Addr { return netip.MustParseAddr("192.0.2.1") }
	e.Apply(&v, a, []byte(keyA), in, nil, addr, ev)
	if asked {
		t.Fatal("the event was read for a project without event filters")
	}
	if n := testing.AllocsPerRun(100, func() { e.Apply(&v, a, []byte(keyA), in, nil, addr, ev) }); n != 0 {
		t.Errorf("Apply allocates %v times without event filters", n)
	}
}

// BenchmarkApplyEventFilters is Apply's cost for one error event with no
// filter, and with every inbound filter on (the event kept, so every
// filter runs).
func BenchmarkApplyEventFilters(b *testing.B) {
	payload := []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"Something failed","level":"error","platform":"javascript","release":"web@1.4.2","environment":"production",` +
		`"exception":{"values":[{"type":"TypeError","value":"Cannot read properties of undefined (reading 'x')","stacktrace":{"frames":[{"abs_path":"https://example.com/app.js","function":"a","lineno":10},{"abs_path":"https://example.com/app.js","function":"b","lineno":20}]}}]},` +
		`"request":{"url":"https://example.com/checkout","headers":{"User-Agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36","Referer":"https://example.com/"}},` +
		`"user":{"id":"42","ip_address":"{{auto}}"},"tags":{"page":"checkout"},"contexts":{"browser":{"name":"Chrome","version":"120"}}}`)
	all := `{"filterSettings":{"browserExtensions":{"isEnabled":true},"webCrawlers":{"isEnabled":true},"localhost":{"isEnabled":true},
		"legacyBrowsers":{"isEnabled":true,"options":["default"]},"errorMessages":{"patterns":["*ResizeObserver loop*","ChunkLoadError*"]},
		"csp":{"disallowedSources":["chrome-extension://*"]},"releases":{"releases":["0.9.*"]},
		"ignoreTransactions":{"isEnabled":true,"patterns":["*/health"]},
		"generic":{"version":1,"filters":[{"id":"beta","isEnabled":true,"condition":{"op":"eq","name":"event.user.segment","value":"beta"}}]}}}`
	for _, tc := range []struct{ name, cfg string }{{"none", `{}`}, {"all", all}} {
		b.Run("filters="+tc.name, func(b *testing.B) {
			t := &testing.T{}
			a := decode(t, tc.cfg)
			in := items(map[envelope.Class]int{envelope.ClassError: 1})
			e := NewEnforcer(Options{})
			addr := func() netip.Addr { return netip.MustParseAddr("192.0.2.1") }
			ev := func() (envelope.ItemType, []byte) { return envelope.ItemEvent, payload }
			var v Verdict
			b.ReportAllocs()
			for b.Loop() {
				e.Apply(&v, a, []byte(keyA), in, nil, addr, ev)
				if v.Filter != "" {
					b.Fatalf("filtered by %s", v.Filter)
				}
			}
		})
	}
}

// BenchmarkFilterTree is the split path's cost with every filter on, for
// the same event read from the tree process has already parsed (Door,
// Filter on EventFromTree, Limit), against BenchmarkApplyEventFilters's
// filters=all, which parses the JSON.
func BenchmarkFilterTree(b *testing.B) {
	payload := []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","logentry":{"formatted":"Something failed"},"level":"error","platform":"javascript","release":"web@1.4.2","environment":"production",` +
		`"exception":{"values":[{"type":"TypeError","value":"Cannot read properties of undefined (reading 'x')","stacktrace":{"frames":[{"abs_path":"https://example.com/app.js","function":"a","lineno":10},{"abs_path":"https://example.com/app.js","function":"b","lineno":20}]}}]},` +
		`"request":{"url":"https://example.com/checkout","headers":[["Referer","https://example.com/"],["User-Agent","Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"]]},` +
		`"user":{"id":"42","ip_address":"192.0.2.1"},"tags":[["page","checkout"]],"contexts":{"browser":{"name":"Chrome","version":"120"}}}`)
	all := `{"filterSettings":{"browserExtensions":{"isEnabled":true},"webCrawlers":{"isEnabled":true},"localhost":{"isEnabled":true},
		"legacyBrowsers":{"isEnabled":true,"options":["default"]},"errorMessages":{"patterns":["*ResizeObserver loop*","ChunkLoadError*"]},
		"csp":{"disallowedSources":["chrome-extension://*"]},"releases":{"releases":["0.9.*"]},
		"ignoreTransactions":{"isEnabled":true,"patterns":["*/health"]},
		"generic":{"version":1,"filters":[{"id":"beta","isEnabled":true,"condition":{"op":"eq","name":"event.user.segment","value":"beta"}}]}}}`
	a := decode(&testing.T{}, all)
	in := items(map[envelope.Class]int{envelope.ClassError: 1})
	e := NewEnforcer(Options{})
	tree, err := evtree.Parse(payload)
	if err != nil {
		b.Fatal(err)
	}
	defer tree.Release()
	var v Verdict
	b.ReportAllocs()
	for b.Loop() {
		e.Door(&v, a, []byte(keyA), in, nil, nil)
		if e.Filter(&v, a, in, EventFromTree(envelope.ItemEvent, tree.Root())) {
			b.Fatalf("filtered by %s", v.Filter)
		}
		e.Limit(&v, a, []byte(keyA), in, nil)
	}
}
