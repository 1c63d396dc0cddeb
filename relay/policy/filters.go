package policy

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/useragent"
)

// The names of Relay's inbound filters (its FilterStatKey), the reason a
// filtered event is counted under. A generic filter is named by its id.
const (
	FilterClientIPs          = "ip-address"
	FilterReleases           = "release-version"
	FilterErrorMessages      = "error-message"
	FilterLocalhost          = "localhost"
	FilterBrowserExtensions  = "browser-extensions"
	FilterLegacyBrowsers     = "legacy-browsers"
	FilterWebCrawlers        = "web-crawlers"
	FilterCSP                = "invalid-csp"
	FilterIgnoreTransactions = "filtered-transaction"
)

// eventFilters judges an event by the project's filters that read it, in
// Relay's order (generic first), and returns the name of the first filter
// that matched, "" when none did. global are the generic filters of the
// global config.
func eventFilters(ef *project.EventFilters, f *project.Filters, global *project.GenericFilters, e *event) string {
	if ef.Generic != nil || global != nil {
		name := ""
		ef.Generic.Each(global, func(id string, c *project.Condition) bool {
			if c.Match(e) {
				name = id
				return false
			}
			return true
		})
		if name != "" {
			return name
		}
	}
	if len(ef.CSPSources) > 0 {
		if c := e.csp(); c != nil {
			b, hb := c.blocked()
			s, hs := c.source()
			if project.MatchesAnyOrigin(b, hb, ef.CSPSources) || project.MatchesAnyOrigin(s, hs, ef.CSPSources) {
				return FilterCSP
			}
		}
	}
	if ef.Releases && f.BlockedRelease(string(e.Release)) {
		return FilterReleases
	}
	if ef.ErrorMessages != nil && matchErrorMessages(ef.ErrorMessages, e) {
		return FilterErrorMessages
	}
	if ef.Localhost && matchLocalhost(e) {
		return FilterLocalhost
	}
	if ef.BrowserExtensions && matchBrowserExtensions(e) {
		return FilterBrowserExtensions
	}
	if len(ef.LegacyBrowsers) > 0 && matchLegacyBrowser(ef.LegacyBrowsers, e) {
		return FilterLegacyBrowsers
	}
	if ef.WebCrawlers && matchWebCrawler(e) {
		return FilterWebCrawlers
	}
	if ef.IgnoreTransactions != nil && e.isTransaction() && e.Transaction != "" && ef.IgnoreTransactions.Match(string(e.Transaction)) {
		return FilterIgnoreTransactions
	}
	return ""
}

// matchErrorMessages: the logentry message, then each exception as
// "type: value" (or whichever of the two it has).
func matchErrorMessages(g *project.Glob, e *event) bool {
	if m, ok := e.message(); ok && g.Match(m) {
		return true
	}
	for _, x := range e.exceptions {
		var msg string
		switch {
		case x.Type == "":
			msg = string(x.Value)
		case x.Value == "":
			msg = string(x.Type)
		default:
			msg = string(x.Type) + ": " + string(x.Value)
		}
		if g.Match(msg) {
			return true
		}
	}
	return false
}

// matchLocalhost: a loopback user IP, a file: URL or a localhost /
// 127.0.0.1 host (or subdomain of localhost), an X-Forwarded-For of a
// loopback address, or, without a URL, a Host / X-Forwarded-Host of
// localhost or 127.0.0.1.
func matchLocalhost(e *event) bool {
	if ip, ok := e.ipAddress(); ok && (ip == "127.0.0.1" || ip == "::1") {
		return true
	}
	var u *url.URL
	if e.Request != nil && e.Request.URL != "" {
		if p, err := url.Parse(string(e.Request.URL)); err == nil && p.Scheme != "" {
			u = p
		}
	}
	if u != nil {
		if strings.EqualFold(u.Scheme, "file") {
			return true
		}
		host := strings.ToLower(strings.Trim(u.Hostname(), "[]"))
		for _, d := range []string{"127.0.0.1", "localhost"} {
			if rest, ok := strings.CutSuffix(host, d); ok && (rest == "" || strings.HasSuffix(rest, ".")) {
				return true
			}
		}
	}
	if xff, ok := e.header("X-Forwarded-For"); ok && (xff == "127.0.0.1" || xff == "::1") {
		return true
	}
	if u == nil {
		for _, h := range []string{"Host", "X-Forwarded-Host"} {
			if v, ok := e.header(h); ok {
				host, _, _ := strings.Cut(v, ":")
				if host == "localhost" || host == "127.0.0.1" {
					return true
				}
			}
		}
	}
	return false
}

// Known browser extension errors, by the first exception's value and by
// the source of its last frame with a path (Relay's browser_extensions).
var (
	extensionValues = lowerRegexp([]string{
		`top\.GLOBALS`, `originalCreateNotification`, `canvas\.contentDocument`,
		`MyApp_RemoveAllHighlights`, `http://tt\.epicplay\.com`, `Can't find variable: ZiteReader`,
		`jigsaw is not defined`, `ComboSearch is not defined`, `http://loading\.retry\.widdit\.com/`,
		`atomicFindClose`, `fb_xd_fragment`, `bmi_SafeAddOnload`, `EBCallBackMessageReceived`,
		`_gCrWeb`, `conduitPage`, `null is not an object \(evaluating 'elt\.parentNode'\)`,
		`plugin\.setSuspendState is not a function`, `Extension context invalidated`,
		`webkit-masked-url:`, `can't access dead object`,
	})
	extensionSources = lowerRegexp([]string{
		`graph\.facebook\.com`, `connect\.facebook\.net`, `eatdifferent\.com\.woopra-ns\.com`,
		`static\.woopra\.com/js/woopra\.js`, `^chrome(-extension)?://`, `^moz-extension://`,
		`^safari(-web)?-extension://`, `webkit-masked-url`, `127\.0\.0\.1:4001/isrunning`,
		`webappstoolbarba\.texthelp\.com/`, `metrics\.itunes\.apple\.com\.edgesuite\.net/`,
		`kaspersky-labs\.com`,
	})
)

// skippedPath: a frame path the browser-extension filter looks past.
func skippedPath(p string) bool { return p == "<anonymous>" || p == "[native code]" }

func matchBrowserExtensions(e *event) bool {
	if len(e.exceptions) == 0 {
		return false
	}
	x := &e.exceptions[0]
	if x.Value != "" && extensionValues.MatchString(strings.ToLower(string(x.Value))) {
		return true
	}
	if x.Stacktrace == nil {
		return false
	}
	frames := x.Stacktrace.Frames
	for i := len(frames) - 1; i >= 0; i-- {
		p := frames[i].AbsPath
		if p == nil {
			return false // as Relay: a frame without a path ends the search
		}
		if !skippedPath(*p) {
			return extensionSources.MatchString(strings.ToLower(*p))
		}
	}
	return false
}

// Web crawlers by User-Agent (Relay's web_crawlers), minus Slack's link
// unfurler, which users see.
var (
	webCrawlers = lowerRegexp([]string{
		`Mediapartners-Google`, `AdsBot-Google`, `Googlebot`, `FeedFetcher-Google`, `Storebot-Google`,
		`BingBot`, `BingPreview`, `Baiduspider`, `Slurp`, `Sogou`, `facebook`, `meta-`,
		`ia_archiver`, `bots?[/\s\);]`, `spider[/\s\);]`, `Slack`, `Calypso\sAppCrawler`, `pingdom`,
		`lyticsbot`, `AWS\sSecurity\sScanner`, `HubSpot\sCrawler`, `Bytespider`, `Better\sUptime`,
	})
	allowedCrawlers = lowerRegexp([]string{`Slackbot\s1\.\d+`})
)

func matchWebCrawler(e *event) bool {
	ua, ok := e.userAgent()
	if !ok {
		return false
	}
	ua = strings.ToLower(ua)
	return webCrawlers.MatchString(ua) && !allowedCrawlers.MatchString(ua)
}

// lowerRegexp compiles case-insensitive alternatives for lowercased
// input: the plain words are looked up with strings.Contains and only the
// rest goes to one regexp (an unanchored regexp alternation backtracks at
// every position, ~30 µs on a User-Agent). The patterns use no uppercase
// escapes (\S, \D, ...), so lowercasing them keeps their meaning.
func lowerRegexp(alts []string) *matcher {
	m := &matcher{}
	var rest []string
	for _, a := range alts {
		a = strings.ToLower(a)
		if lit, complete := regexp.MustCompile(a).LiteralPrefix(); complete {
			m.words = append(m.words, lit)
		} else {
			rest = append(rest, a)
		}
	}
	if len(rest) > 0 {
		m.re = regexp.MustCompile(strings.Join(rest, "|"))
	}
	return m
}

// matcher matches lowercased text against words and a regexp.
type matcher struct {
	words []string
	re    *regexp.Regexp
}

// MatchString reports whether s (lowercased) contains a word or matches.
func (m *matcher) MatchString(s string) bool {
	for _, w := range m.words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return m.re != nil && m.re.MatchString(s)
}

// legacyMinimum is the lowest major version of each browser family the
// "default" option lets through (Relay's legacy_browsers).
var legacyMinimum = map[string]int{
	"Chrome": 0, "IE": 10, "Firefox": 0, "Safari": 6, "Edge": 0, "Opera": 15, "Android": 4, "Opera Mini": 8,
}

// legacyOption is one configurable option: the family and which majors.
var legacyOption = map[string]struct {
	family string
	old    func(major int) bool
}{
	"ie_pre_9":         {"IE", func(v int) bool { return v <= 8 }},
	"ie9":              {"IE", func(v int) bool { return v == 9 }},
	"ie10":             {"IE", func(v int) bool { return v == 10 }},
	"ie11":             {"IE", func(v int) bool { return v == 11 }},
	"opera_pre_15":     {"Opera", func(v int) bool { return v < 15 }},
	"opera_mini_pre_8": {"Opera Mini", func(v int) bool { return v < 8 }},
	"android_pre_4":    {"Android", func(v int) bool { return v < 4 }},
	"safari_pre_6":     {"Safari", func(v int) bool { return v < 6 }},
	"edge_pre_79":      {"Edge", func(v int) bool { return v < 79 }},
}

func matchLegacyBrowser(options []string, e *event) bool {
	ua, ok := e.userAgent()
	if !ok {
		return false
	}
	// The process's one parser (uap-core's rules, as Relay's), built on
	// first use: only projects with the legacyBrowsers filter pay for it.
	b, err := useragent.Browser(ua)
	if err != nil {
		return false
	}
	family := b.Family
	if family == "IE Mobile" {
		family = "IE" // as Relay and Sentry
	}
	major, err := strconv.Atoi(b.Major)
	if err != nil {
		return false
	}
	for _, o := range options {
		if o == "default" {
			min, known := legacyMinimum[family]
			return known && major < min
		}
	}
	for _, o := range options {
		if opt, ok := legacyOption[o]; ok && opt.family == family && opt.old(major) {
			return true
		}
	}
	return false // unknown options filter nothing
}

// filterCounts counts filtered events per filter name. Generic filter ids
// come from configs: past maxFilterNames names, the rest are counted
// under "generic".
type filterCounts struct {
	m sync.Map // name → *atomic.Int64
	n atomic.Int32
}

const maxFilterNames = 256

func (fc *filterCounts) add(name string) {
	if c, ok := fc.m.Load(name); ok {
		c.(*atomic.Int64).Add(1)
		return
	}
	if fc.n.Add(1) > maxFilterNames {
		name = "generic"
	}
	c, _ := fc.m.LoadOrStore(name, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

func (fc *filterCounts) snapshot() map[string]int64 {
	out := map[string]int64{}
	fc.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}
