package grouping

import (
	"math/rand/v2"
	"testing"
)

// TestRuleIndex: the indexed rule set decides every frame as running all
// rules in order does.
func TestRuleIndex(t *testing.T) {
	pick := func(r *rand.Rand, xs ...string) string { return xs[r.IntN(len(xs))] }
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		frames := make([]frameView, 1+r.IntN(8))
		for i := range frames {
			frames[i] = frameView{
				family:   pick(r, "javascript", "other", "native"),
				path:     pick(r, "", "/usr/lib/python3/site-packages/x.py", "/app/node_modules/a.js", "/srv/app.py", "/root/go/pkg/mod/x.go"),
				module:   pick(r, "", "java.lang.Thread", "java.util.concurrent.ThreadPoolExecutor", "android.os.Handler", "io.sentry.Hub", "com.shop.Cart", "org.springframework.web.X", "@babel/runtime", "kotlin.Result"),
				function: pick(r, "", "run", "runWorker", "dispatchMessage", "processTicksAndRejections", "reportError", "main", "loop"),
				inApp:    r.IntN(2) == 0,
				group:    true,
			}
		}
		a := append([]frameView(nil), frames...)
		b := append([]frameView(nil), frames...)
		applyRules(defaultRules, a)
		builtin.apply(b, nil)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("case %d frame %d: all rules %+v, indexed %+v", n, i, a[i], b[i])
			}
		}
	}
}

func TestRulesParse(t *testing.T) {
	rs, err := parseRules("[ category:std ] | category:std category=internals\nfamily:native function:\"?[[]Sentry*\" -app -group\nmodule:x.* ^-group v+app")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || len(rs[0].caller) != 1 || rs[0].category != "internals" || rs[1].app != -1 || rs[1].group != -1 || rs[2].upGroup != -1 || rs[2].downApp != 1 {
		t.Errorf("parsed %+v", rs)
	}
	for _, bad := range []string{"module:x.* +bogus", "frobnicate:x -app", "-app"} {
		if _, err := parseRules(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestMatchSlashed: matchSlashed(v) is match("/"+v) for every glob form.
func TestMatchSlashed(t *testing.T) {
	for _, pat := range []string{"/app/**", "**/node_modules/**", "**.js", "/foo.py", "**/*newrelic*/**", "app/**", "**/go/pkg/mod/**"} {
		g, err := compileGlob(pat, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"app/x.js", "foo.py", "x/node_modules/y", "node_modules/y", "/node_modules/y", "lib/newrelic/x", "go/pkg/mod/a", "a.js", "/app/a.js", ""} {
			if got, want := g.matchSlashed(v), g.match("/"+v); got != want {
				t.Errorf("%q on %q: matchSlashed %v, match(\"/\"+v) %v", pat, v, got, want)
			}
			if v == "" {
				continue
			}
			if got, want := g.matchPath(v), g.match(v) || (v[0] != '/' && g.match("/"+v)); got != want {
				t.Errorf("%q on %q: matchPath %v, want %v", pat, v, got, want)
			}
		}
	}
}
