package grouping

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func md5hex(parts ...string) string {
	s := md5.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(s[:])
}

func hashOf(t *testing.T, src string) Result {
	t.Helper()
	r, err := HashJSON([]byte(src))
	if err != nil {
		t.Fatalf("HashJSON: %v", err)
	}
	sumAgrees(t, []byte(src))
	return r
}

func variant(r Result, name string) *Variant {
	for i := range r.Variants {
		if r.Variants[i].Name == name {
			return &r.Variants[i]
		}
	}
	return nil
}

// want checks the hash of each named variant ("" = present with a null
// hash) and the primary hash.
func want(t *testing.T, r Result, primary string, variants map[string]string) {
	t.Helper()
	if r.Primary != primary {
		t.Errorf("primary = %q, want %q", r.Primary, primary)
	}
	if len(r.Variants) != len(variants) {
		var names []string
		for _, v := range r.Variants {
			names = append(names, v.Name)
		}
		t.Errorf("variants %v, want %d", names, len(variants))
	}
	for name, h := range variants {
		v := variant(r, name)
		if v == nil {
			t.Errorf("no variant %q", name)
			continue
		}
		if v.Hash != h {
			t.Errorf("variant %s hash = %q, want %q", name, v.Hash, h)
		}
	}
}

// The documented example: a frame-only JavaScript event hashes the
// concatenated contributing values.
func TestFrameOnlyJavaScript(t *testing.T) {
	r := hashOf(t, `{"platform":"javascript","stacktrace":{"frames":[{"filename":"foo.py","function":"bar"}]}}`)
	want(t, r, md5hex("foo.py", "bar"), map[string]string{"app": "", "system": md5hex("foo.py", "bar")})
	if !r.Final {
		t.Errorf("final = false (%s)", r.Reason)
	}
}

func TestMessage(t *testing.T) {
	for _, c := range []struct{ name, event, value string }{
		{"logentry template wins", `{"logentry":{"message":"user %s failed","formatted":"user 42 failed"}}`, "user %s failed"},
		{"formatted", `{"logentry":{"formatted":"took 1.5s for 12 rows at 2024-01-02"}}`, "took <duration> for <int> rows at <date>"},
		{"legacy message string", `{"message":"id=0xdeadbeef from 10.0.0.1"}`, "id=<hex> from <ip>"},
		{"two lines kept", `{"logentry":{"formatted":"first 1\n\nsecond 2\nthird 3"}}`, "first <int>\nsecond <int>..."},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hashOf(t, c.event)
			want(t, r, md5hex(c.value), map[string]string{"default": md5hex(c.value)})
		})
	}
}

func TestCustomFingerprint(t *testing.T) {
	r := hashOf(t, `{"fingerprint":["deploy-failed","migrate"],"logentry":{"formatted":"boom"}}`)
	want(t, r, md5hex("deploy-failed", "migrate"), map[string]string{"custom-fingerprint": md5hex("deploy-failed", "migrate"), "default": ""})
	if h := variant(r, "default").Hint; !strings.Contains(h, "custom fingerprint") {
		t.Errorf("default hint = %q", h)
	}
	if !r.Final {
		t.Errorf("final = false (%s)", r.Reason)
	}
}

func TestFingerprintDefaultOnly(t *testing.T) {
	r := hashOf(t, `{"fingerprint":["{{ default }}"],"logentry":{"formatted":"boom"}}`)
	want(t, r, md5hex("boom"), map[string]string{"default": md5hex("boom")})
}

func TestHybridFingerprint(t *testing.T) {
	r := hashOf(t, `{"fingerprint":["{{default}}","x","y"],"logentry":{"formatted":"boom"}}`)
	want(t, r, md5hex("boom", "x", "y"), map[string]string{"default": md5hex("boom", "x", "y")})
	if v := variant(r, "default"); v.Type != "salted-component" {
		t.Errorf("type = %q", v.Type)
	}
}

func TestFingerprintVariableNotFinal(t *testing.T) {
	r := hashOf(t, `{"fingerprint":["{{ transaction }}"],"logentry":{"formatted":"boom"}}`)
	if r.Final || !strings.Contains(r.Reason, "fingerprint variable") {
		t.Errorf("final = %v, reason %q", r.Final, r.Reason)
	}
}

// A checksum replaces every other variant (Sentry's
// checksum-regex-match / checksum-no-regex-match snapshots).
func TestChecksum(t *testing.T) {
	const sum = "0123456789abcdef0123456789abcdef"
	r := hashOf(t, `{"checksum":"`+sum+`","logentry":{"formatted":"boom"}}`)
	want(t, r, sum, map[string]string{"checksum": sum})
	r = hashOf(t, `{"checksum":"not a legit checksum","message":"Dogs are great!"}`)
	want(t, r, "not a legit checksum", map[string]string{"checksum": "not a legit checksum", "hashed-checksum": "de46d023e69b171b90ccf3ebca7aede4"})
}

const pyFrames = `[
 {"module":"django.core.handlers","filename":"django/core/handlers/base.py","abs_path":"/usr/lib/python3/site-packages/django/core/handlers/base.py","function":"get_response","context_line":"    response = callback(request)","in_app":true},
 {"module":"shop.views","filename":"shop/views.py","abs_path":"/srv/shop/views.py","function":"checkout","context_line":"    total = cart[\"total\"]","in_app":true}
]`

// In-app frames make the app variant; the built-in rules take
// site-packages out of the app even when the SDK said in_app.
func TestExceptionAppAndSystem(t *testing.T) {
	r := hashOf(t, `{"platform":"python","exception":{"values":[{"type":"KeyError","value":"'total'","stacktrace":{"frames":`+pyFrames+`}}]}}`)
	app := md5hex("shop.views", "checkout", `total = cart["total"]`, "KeyError")
	system := md5hex("django.core.handlers", "get_response", "response = callback(request)", "shop.views", "checkout", `total = cart["total"]`, "KeyError")
	want(t, r, app, map[string]string{"app": app, "system": system})
	if !r.Final {
		t.Errorf("final = false (%s)", r.Reason)
	}
}

func TestNoInAppFramesDefersToSystem(t *testing.T) {
	r := hashOf(t, `{"platform":"python","exception":{"values":[{"type":"KeyError","value":"x","stacktrace":{"frames":[{"module":"lib","function":"f","in_app":false}]}}]}}`)
	system := md5hex("lib", "f", "KeyError")
	want(t, r, system, map[string]string{"app": "", "system": system})
	if h := variant(r, "app").Components[0].Hint; !strings.Contains(h, "system variant does") {
		t.Errorf("app hint = %q", h)
	}
}

func TestExceptionWithoutStacktraceUsesValue(t *testing.T) {
	r := hashOf(t, `{"exception":{"values":[{"type":"ValueError","value":"bad id 1234"}]}}`)
	want(t, r, md5hex("ValueError", "bad id <int>"), map[string]string{"app": md5hex("ValueError", "bad id <int>")})
}

func TestSyntheticMechanismDropsType(t *testing.T) {
	r := hashOf(t, `{"exception":{"values":[{"type":"SIGSEGV","value":"crash","mechanism":{"type":"signal","synthetic":true}}]}}`)
	want(t, r, md5hex("crash"), map[string]string{"app": md5hex("crash")})
}

func TestChainedExceptions(t *testing.T) {
	r := hashOf(t, `{"platform":"python","exception":{"values":[
	 {"type":"OSError","value":"disk 1 full"},
	 {"type":"RuntimeError","value":"save failed","stacktrace":{"frames":[{"module":"app.store","function":"save","in_app":true}]}}]}}`)
	app := md5hex("OSError", "disk <int> full", "app.store", "save", "RuntimeError")
	system := md5hex("app.store", "save", "RuntimeError")
	want(t, r, app, map[string]string{"app": app, "system": system})
	if c := variant(r, "app").Components[0]; c.ID != "chained-exception" || len(c.Children) != 2 {
		t.Errorf("app component %s with %d children", c.ID, len(c.Children))
	}
}

func TestRecursionCollapsed(t *testing.T) {
	frame := `{"module":"app.tree","function":"walk","lineno":10,"in_app":true}`
	one := hashOf(t, `{"platform":"python","stacktrace":{"frames":[`+frame+`]}}`)
	many := hashOf(t, `{"platform":"python","stacktrace":{"frames":[`+frame+`,`+frame+`,`+frame+`]}}`)
	if one.Primary == "" || one.Primary != many.Primary {
		t.Errorf("recursion: %q vs %q", one.Primary, many.Primary)
	}
	other := hashOf(t, `{"platform":"python","stacktrace":{"frames":[`+frame+`,`+strings.Replace(frame, "10", "11", 1)+`]}}`)
	if other.Primary == one.Primary {
		t.Error("a different line is not recursion: hashes should differ")
	}
}

func TestJavaRules(t *testing.T) {
	r := hashOf(t, `{"platform":"java","exception":{"values":[{"type":"IllegalStateException","module":"java.lang","value":"x","stacktrace":{"frames":[
	 {"module":"com.shop.Cart","function":"add","filename":"Cart.java","in_app":true},
	 {"module":"io.sentry.SentryClient","function":"capture","filename":"SentryClient.java","in_app":true},
	 {"module":"com.shop.Cart$$Lambda$12/0x1234","function":"lambda$run$0","in_app":true}
	]}}]}}`)
	app := md5hex("com.shop.Cart", "add", "IllegalStateException")
	want(t, r, app, map[string]string{"app": app, "system": ""})
}

func TestJavaScriptFunctionTrim(t *testing.T) {
	r := hashOf(t, `{"platform":"node","stacktrace":{"frames":[
	 {"filename":"node:internal/process/task_queues","function":"processTicksAndRejections","in_app":false},
	 {"filename":"/app/src/cart.js","abs_path":"/app/src/cart.js","function":"Object.aha","context_line":"  throw new Error('x')","in_app":true}]}}`)
	app := md5hex("cart.js", "aha", "throw new Error('x')")
	want(t, r, app, map[string]string{"app": app, "system": ""})
}

func TestCSP(t *testing.T) {
	r := hashOf(t, `{"csp":{"effective_directive":"script-src","blocked_uri":"https://evil.example.com/x.js","violated_directive":"script-src 'self'"},"logentry":{"formatted":"Blocked 'script' from 'evil.example.com'"}}`)
	want(t, r, md5hex("script-src", "evil.example.com"), map[string]string{"default": md5hex("script-src", "evil.example.com")})
	r = hashOf(t, `{"csp":{"effective_directive":"script-src","blocked_uri":"self","violated_directive":"script-src 'unsafe-inline'"}}`)
	want(t, r, md5hex("script-src", "'unsafe-inline'"), map[string]string{"default": md5hex("script-src", "'unsafe-inline'")})
	r = hashOf(t, `{"expectct":{"hostname":"www.example.com"}}`)
	want(t, r, md5hex("expect-ct", "www.example.com"), map[string]string{"default": md5hex("expect-ct", "www.example.com")})
}

func TestThreads(t *testing.T) {
	r := hashOf(t, `{"platform":"python","threads":{"values":[{"id":1,"crashed":true,"stacktrace":{"frames":[{"module":"app.worker","function":"run","in_app":true}]}}]},"logentry":{"formatted":"hang"}}`)
	app := md5hex("app.worker", "run")
	want(t, r, app, map[string]string{"app": app, "system": "", "default": ""})
	// The message stays in its own variant, outranked (as in Sentry's
	// java_chained snapshot: "exception of system takes precedence").
	if h := variant(r, "default").Components[0].Hint; h != "ignored because threads of app takes precedence" {
		t.Errorf("default hint = %q", h)
	}
	r = hashOf(t, `{"platform":"python","threads":{"values":[
	 {"id":1,"stacktrace":{"frames":[{"module":"a","function":"f"}]}},
	 {"id":2,"stacktrace":{"frames":[{"module":"b","function":"g"}]}}]},"logentry":{"formatted":"hang"}}`)
	if r.Final {
		t.Error("several threads: final should be false")
	}
}

func TestNotFinal(t *testing.T) {
	for _, c := range []struct{ name, event, reason string }{
		{"native", `{"platform":"native","exception":{"values":[{"type":"EXC_BAD_ACCESS","stacktrace":{"frames":[{"instruction_addr":"0x1000"}]}}]}}`, "symbolicat"},
		{"minified js", `{"platform":"javascript","exception":{"values":[{"type":"TypeError","value":"x","stacktrace":{"frames":[{"abs_path":"https://shop.example/static/app.min.js","filename":"/static/app.min.js","function":"n","lineno":1,"colno":5123}]}}]}}`, "source maps"},
		{"proguard", `{"platform":"java","debug_meta":{"images":[{"type":"proguard","uuid":"x"}]},"exception":{"values":[{"type":"a.b.c","stacktrace":{"frames":[{"module":"a.b","function":"a"}]}}]}}`, "ProGuard"},
		{"obfuscated java", `{"platform":"java","exception":{"values":[{"type":"E","stacktrace":{"frames":[{"module":"o.Zz","function":"a"}]}}]}}`, "obfuscated"},
		{"exception group", `{"exception":{"values":[{"type":"ExceptionGroup","value":"x","mechanism":{"type":"chained","is_exception_group":true}}]}}`, "exception group"},
		{"chunk load", `{"platform":"javascript","exception":{"values":[{"type":"ChunkLoadError","value":"Loading chunk 7 failed."}]}}`, "built-in"},
		{"message drift", `{"message":"GET HTTP/1.1-8080 refused"}`, "parameterization"},
		{"logentry drift", `{"logentry":{"formatted":"handle 9af8 lost"}}`, "4-7 digit hex"},
		{"exception value drift", `{"exception":{"values":[{"type":"E","value":"bind 2012:d157::cbe:908:2013 failed"}]}}`, "IPv6"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hashOf(t, c.event)
			if r.Final || !strings.Contains(r.Reason, c.reason) {
				t.Errorf("final = %v, reason %q, want it to mention %q", r.Final, r.Reason, c.reason)
			}
		})
	}
}

// A value Sentry versions parameterize differently only matters where it
// feeds the hash: an exception value behind a contributing stack trace, or
// a message behind an exception, leaves the hash final.
func TestDriftOnlyWhenHashed(t *testing.T) {
	for name, ev := range map[string]string{
		"plain message":             `{"message":"order 1234 failed"}`,
		"value behind a stacktrace": `{"platform":"python","exception":{"values":[{"type":"E","value":"handle 9af8 lost","stacktrace":{"frames":[{"module":"app","function":"f","in_app":true}]}}]}}`,
		"message behind exception":  `{"message":"handle 9af8 lost","exception":{"values":[{"type":"E","value":"x"}]}}`,
	} {
		if r := hashOf(t, ev); !r.Final {
			t.Errorf("%s: not final (%s)", name, r.Reason)
		}
	}
}

func TestNoGroupingData(t *testing.T) {
	r := hashOf(t, `{"level":"error"}`)
	if r.Primary != "" || len(r.Variants) != 0 {
		t.Errorf("got %+v", r)
	}
	if _, err := HashJSON([]byte(`[1]`)); err != ErrNotObject {
		t.Errorf("array: err = %v", err)
	}
	if _, err := HashJSON([]byte(`{`)); err == nil {
		t.Error("truncated JSON: no error")
	}
}

func TestVariantJSON(t *testing.T) {
	b, err := json.Marshal([]Variant{{Name: "app", Type: "component"}, {Name: "system", Type: "component", Hash: "abc", Contributes: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"app","type":"component","contributes":false,"hash":null},{"name":"system","type":"component","contributes":true,"hash":"abc"}]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// PrimaryVariant names the variant the primary hash comes from.
func TestPrimaryVariant(t *testing.T) {
	for ev, want := range map[string]string{
		`{"message":"m"}`:                                     "default",
		`{"message":"m","fingerprint":["a"]}`:                 "custom-fingerprint",
		`{"message":"m","fingerprint":["{{ default }}","a"]}`: "default",
		`{"checksum":"x"}`:                                    "checksum",
		`{"platform":"python","exception":{"values":[{"type":"E","stacktrace":{"frames":[{"module":"lib","function":"f"}]}}]}}`:               "system",
		`{"platform":"python","exception":{"values":[{"type":"E","stacktrace":{"frames":[{"module":"app","function":"f","in_app":true}]}}]}}`: "app",
		`{"level":"error"}`: "",
	} {
		if r := hashOf(t, ev); r.PrimaryVariant != want {
			t.Errorf("%s: primary variant %q, want %q", ev, r.PrimaryVariant, want)
		}
	}
}

// TestRuleFamilies: one table per frame and report rule family of
// docs/grouping.md ("Frames", "Security reports"), each hash written from
// the rule: md5 of the contributing values in order.
func TestRuleFamilies(t *testing.T) {
	long := strings.Repeat("x", 121)
	frame := func(platform, f string) string {
		return `{"platform":"` + platform + `","stacktrace":{"frames":[` + f + `]}}`
	}
	for _, c := range []struct {
		name, event, variant, want string
	}{
		// php: anonymous functions and classes.
		{"php closure", frame("php", `{"filename":"/app/src/x.php","function":"{closure}"}`), "system", md5hex("x.php", "{closure}")},
		{"php [Anonymous function]", frame("php", `{"filename":"/app/src/x.php","function":"[Anonymous function]"}`), "system", md5hex("x.php")},
		{"php anonymous class, NUL form", frame("php", `{"filename":"/app/src/x.php","function":"class@anonymous\u0000/app/src/x.php:12$0::handle"}`), "system", md5hex("x.php")},
		{"php anonymous class method", frame("php", `{"filename":"/app/src/x.php","function":"class@anonymous/app/src/x.php:12$0::handle"}`), "system", md5hex("x.php", "handle")},
		// csharp: raw_function over function.
		{"csharp raw_function", frame("csharp", `{"module":"App.Svc","filename":"Svc.cs","function":"Run","raw_function":"App.Svc.Run(Int32 x)"}`), "system", md5hex("App.Svc", "App.Svc.Run(Int32 x)")},
		{"csharp function without raw", frame("csharp", `{"module":"App.Svc","filename":"Svc.cs","function":"Run"}`), "system", md5hex("App.Svc", "Run")},
		// ruby: blocks.
		{"ruby block in", frame("ruby", `{"filename":"app/a.rb","function":"block in process"}`), "system", md5hex("a.rb", "block")},
		{"ruby nested block", frame("ruby", `{"filename":"app/a.rb","function":"block (2 levels) in Foo#bar"}`), "system", md5hex("a.rb", "block")},
		{"ruby method", frame("ruby", `{"filename":"app/a.rb","function":"blocking"}`), "system", md5hex("a.rb", "blocking")},
		// native: placeholders for unknown symbols.
		{"native <redacted>", frame("native", `{"filename":"x.c","function":"<redacted>"}`), "system", md5hex("x.c")},
		{"native <unknown>", frame("native", `{"filename":"x.c","function":"<unknown>"}`), "system", md5hex("x.c")},
		{"native named", frame("native", `{"filename":"x.c","function":"main"}`), "system", md5hex("x.c", "main")},
		// java: generated class names.
		{"java CGLIB", frame("java", `{"module":"com.example.Foo$$EnhancerBySpringCGLIB$$1a2b3c4d","function":"run"}`), "system", md5hex("com.example.Foo$$EnhancerBySpringCGLIB$$<auto>", "run")},
		{"java CGLIB numbered", frame("java", `{"module":"com.example.Foo$$FastClassByCGLIB$$1a2b3c4d_2","function":"run"}`), "system", md5hex("com.example.Foo$$FastClassByCGLIB$$<auto>", "run")},
		{"java javassist module", frame("java", `{"module":"com.example.Foo_$$_javassist_123","function":"run"}`), "system", md5hex("com.example.Foo_$$_javassist<auto>", "run")},
		{"java javassist seam", frame("java", `{"module":"com.example.Foo_$$_javassist_seam_7","function":"run"}`), "system", md5hex("com.example.Foo_$$_javassist<auto>", "run")},
		{"java javassist filename", frame("java", `{"filename":"Foo_$$_javassist_77.java","function":"run"}`), "system", md5hex("foo_$$_javassist<auto>.java", "run")},
		{"clojure fn", frame("java", `{"module":"myapp.core$fn__1234","function":"invoke"}`), "system", md5hex("myapp.core$fn__<auto>", "invoke")},
		// context lines: 120 characters at most.
		{"context line 120", frame("python", `{"module":"app.x","function":"f","context_line":"`+long[:120]+`"}`), "system", md5hex("app.x", "f", long[:120])},
		{"context line 121", frame("python", `{"module":"app.x","function":"f","context_line":"`+long+`"}`), "system", md5hex("app.x", "f")},
		{"context line collapsed", frame("python", `{"module":"app.x","function":"f","context_line":"   return  a +\tb  "}`), "system", md5hex("app.x", "f", "return a + b")},
		// [native code]: a dropped javascript frame, an ignored filename elsewhere.
		{"javascript [native code] frame", frame("javascript", `{"filename":"/app.js","abs_path":"/app.js","function":"run","context_line":"run()"},`+
			`{"filename":"[native code]","abs_path":"[native code]","function":"Array.forEach"}`), "system", md5hex("app.js", "run", "run()")},
		{"[native code] filename", frame("python", `{"filename":"[native code]","function":"f"}`), "system", md5hex("f")},
		// Security reports: salt, then the hostname.
		{"hpkp", `{"hpkp":{"hostname":"www.example.com","port":443,"effective_expiration_date":"2014-05-01T12:40:50Z"}}`, "default", md5hex("hpkp", "www.example.com")},
		{"expect-staple", `{"expectstaple":{"hostname":"www.example.com","port":443,"response_status":"ERROR_RESPONSE"}}`, "default", md5hex("expect-staple", "www.example.com")},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hashOf(t, c.event)
			v := variant(r, c.variant)
			if v == nil {
				t.Fatalf("no %s variant: %+v", c.variant, r)
			}
			if v.Hash != c.want {
				out, _ := json.Marshal(v.Components)
				t.Errorf("%s hash %s, want %s: %s", c.variant, v.Hash, c.want, out)
			}
		})
	}
}
