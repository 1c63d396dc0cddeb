package pii

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/baton-relay/baton/relay/event"
)

// ErrInvalidConfig is wrapped by every Compile error: a rule whose regex does
// not compile, a selector that does not parse, malformed JSON. Relay drops
// the project's events with outcome invalid, reason ProjectStateReason
// (fail closed: nothing unscrubbed leaves), and so should the caller.
var ErrInvalidConfig = errors.New("pii: invalid config")

// ProjectStateReason is the discard reason Relay records for events of a
// project whose PII config does not compile.
const ProjectStateReason = "project_state_pii"

// DataScrubbingSettings is the project's legacy `datascrubbingSettings`.
// Its zero value scrubs nothing, as Relay's default.
type DataScrubbingSettings struct {
	ScrubData        bool     `json:"scrubData"`
	ScrubDefaults    bool     `json:"scrubDefaults"`
	ScrubIPAddresses bool     `json:"scrubIpAddresses"`
	SensitiveFields  []string `json:"sensitiveFields"`
	ExcludeFields    []string `json:"excludeFields"` // "safe fields": selectors or keys
}

// Config is a project's compiled scrubbing: its piiConfig, then the rules
// converted from its datascrubbingSettings, applied in that order as Relay
// does. Compile it once per project revision; it is immutable and safe for
// concurrent use. A nil *Config scrubs nothing.
type Config struct {
	passes []pass
	// keys numbers the selectors' keys (keys.go); with it, the regex
	// prefilters run too (prefilter.go). Nil only in the tests' reference
	// Config, which matches and runs regexes as the rules read.
	keys *keyIDs
}

// pass is one compiled PII config: its applications in Relay's order.
type pass struct {
	apps []application
	// filter is what the apps' selectors may select; nil: no filter (the
	// tests' reference Config).
	filter *leafFilter
	// quiet has bit no set when a string or number under the record field
	// schemaNames[no] is one the filter rejects: walkChildren passes over
	// it without building its state. Nil with no filter.
	quiet []uint64
	// aquiet has bit no set when an array of scalars under the record
	// field schemaNames[no] is one walkChildren passes over, elements
	// included (flat.go, arrayQuiet). Nil with no filter.
	aquiet []uint64
	// keyless: no selector of the pass selects a value by its key (the
	// filter has no key ids and no slow keys), so a two-element array
	// whose first element is taken for a key is judged by its elements.
	keyless bool
	// flat is what the pass knows of the objects of each field, by
	// field.id (flat.go). Nil with no filter.
	flat []flatSig
	// legacy: converted from datascrubbingSettings (logs address their
	// attributes by name for it, log.go).
	legacy bool
}

// quietAt reports whether a string or number at named field no is quiet.
func (p *pass) quietAt(no int32) bool {
	return int(no)/64 < len(p.quiet) && p.quiet[no/64]&(1<<(no%64)) != 0
}

// arrayQuietAt reports whether an array of scalars at named field no is
// quiet, its elements included.
func (p *pass) arrayQuietAt(no int32) bool {
	return int(no)/64 < len(p.aquiet) && p.aquiet[no/64]&(1<<(no%64)) != 0
}

type application struct {
	sel   *selector
	src   string
	rules []ruleRef
}

// Compile compiles a project's data scrubbing settings and piiConfig (raw
// JSON; empty or null for none). It returns a nil Config when nothing is to
// be scrubbed.
func Compile(settings DataScrubbingSettings, piiConfig []byte) (*Config, error) {
	c, err := compileRules(settings, piiConfig)
	if c != nil {
		c.compile()
	}
	return c, err
}

// compileRules is Compile without compile: the tests' reference.
func compileRules(settings DataScrubbingSettings, piiConfig []byte) (*Config, error) {
	var c Config
	if t := bytes.TrimSpace(piiConfig); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		p, err := compileJSON(t)
		if err != nil {
			return nil, err
		}
		if len(p.apps) > 0 {
			c.passes = append(c.passes, p)
		}
	}
	if p, ok := convert(settings); ok {
		p.legacy = true
		c.passes = append(c.passes, p)
	}
	if len(c.passes) == 0 {
		return nil, nil
	}
	return &c, nil
}

// compile numbers the keys of every selector and builds each pass's leaf
// filter (keys.go).
func (c *Config) compile() {
	d := &keyIDs{ids: map[string]int32{}}
	for i := range c.passes {
		p := &c.passes[i]
		p.filter = &leafFilter{}
		for j := range p.apps {
			a := &p.apps[j]
			a.sel = d.number(a.sel)
			f := filterOf(a.sel)
			p.filter.union(&f)
		}
	}
	d.seal()
	c.keys = d
	for i := range c.passes {
		p := &c.passes[i]
		p.quiet = make([]uint64, (len(schemaFields)+63)/64)
		p.aquiet = make([]uint64, (len(schemaFields)+63)/64)
		for no, f := range schemaFields {
			if p.rejects(f, d.names[no], event.String) && p.rejects(f, d.names[no], event.Number) {
				p.quiet[no/64] |= 1 << (no % 64)
			}
			if p.arrayQuiet(f, d.names[no]) {
				p.aquiet[no/64] |= 1 << (no % 64)
			}
		}
		p.keyless = !p.filter.slow && !slices.ContainsFunc(p.filter.keys, func(w uint64) bool { return w != 0 })
		p.flat = make([]flatSig, len(allFields))
		for i, f := range allFields {
			p.flat[i] = p.flatOf(f, d)
		}
	}
}

// rejects reports whether visit passes over a value of kind k under a
// named field f whose key has id: the test visit makes, on the state it
// would build.
func (p *pass) rejects(f *field, id int32, k event.Kind) bool {
	st := state{key: []byte{}, id: id, types: typesOf(f, k), pii: f.pii}
	return st.pii == piiFalse || !p.filter.may(&st)
}

type ruleJSON struct {
	Type          string          `json:"type"`
	Pattern       *string         `json:"pattern"`
	ReplaceGroups []int           `json:"replaceGroups"`
	KeyPattern    *string         `json:"keyPattern"`
	Rules         []string        `json:"rules"`
	Rule          string          `json:"rule"`
	HideInner     bool            `json:"hideInner"`
	Redaction     json.RawMessage `json:"redaction"`
}

type configJSON struct {
	Rules        map[string]ruleJSON `json:"rules"`
	Applications map[string][]string `json:"applications"`
}

func compileJSON(raw []byte) (pass, error) {
	var cj configJSON
	if err := json.Unmarshal(raw, &cj); err != nil {
		return pass{}, fmt.Errorf("%w: piiConfig: %v", ErrInvalidConfig, err)
	}
	custom := make(map[string]*ruleSpec, len(cj.Rules))
	for id, rj := range cj.Rules {
		spec, err := rj.spec()
		if err != nil {
			return pass{}, fmt.Errorf("%w: piiConfig: rules.%s: %v", ErrInvalidConfig, id, err)
		}
		custom[id] = spec
	}
	apps := make([]application, 0, len(cj.Applications))
	for src, ids := range cj.Applications {
		sel, err := parseSelector(src)
		if err != nil {
			return pass{}, fmt.Errorf("%w: piiConfig: applications: %w", ErrInvalidConfig, err)
		}
		apps = append(apps, newApplication(sel, src, custom, ids))
	}
	sortApps(apps)
	return pass{apps: apps}, nil
}

func newApplication(sel *selector, src string, custom map[string]*ruleSpec, ids []string) application {
	var rs []ruleRef
	for _, id := range ids {
		rs = collect(custom, rs, id, nil, 0)
	}
	return application{sel: sel, src: src, rules: rs}
}

func (rj ruleJSON) spec() (*ruleSpec, error) {
	s := &ruleSpec{ty: ruleTypeNames[rj.Type], hideInner: rj.HideInner, rules: rj.Rules}
	switch s.ty {
	case rPattern:
		if rj.Pattern == nil {
			return nil, errors.New("pattern: missing")
		}
		re, err := regexp.Compile(*rj.Pattern)
		if err != nil {
			return nil, fmt.Errorf("pattern: %v", err)
		}
		s.pattern, s.groups = re, rj.ReplaceGroups
		for _, g := range s.groups {
			if g < 0 || g > re.NumSubexp() {
				return nil, fmt.Errorf("replaceGroups: no group %d", g)
			}
		}
	case rRedactPair:
		if rj.KeyPattern == nil {
			return nil, errors.New("keyPattern: missing")
		}
		re, err := regexp.Compile(*rj.KeyPattern)
		if err != nil {
			return nil, fmt.Errorf("keyPattern: %v", err)
		}
		s.pattern = re
	case rAlias:
		s.rules = []string{rj.Rule}
	}
	if len(rj.Redaction) > 0 && !bytes.Equal(rj.Redaction, []byte("null")) {
		var r struct {
			Method string  `json:"method"`
			Text   *string `json:"text"`
		}
		if err := json.Unmarshal(rj.Redaction, &r); err != nil {
			return nil, fmt.Errorf("redaction: %v", err)
		}
		switch r.Method {
		case "default", "":
		case "remove":
			s.redaction = rmv
		case "mask":
			s.redaction = mask
		case "hash":
			s.redaction = hash
		case "replace":
			s.redaction = replace(filtered)
			if r.Text != nil {
				s.redaction.text = *r.Text
			}
		default:
			// Relay's Redaction::Other: accepted, and does nothing.
			s.redaction = redaction{method: methodOther}
		}
	}
	return s, nil
}

// Fields the legacy data scrubber never strips.
const datascrubberIgnore = "(debug_meta.** | $frame.filename | $frame.abs_path | $logentry.formatted | $error.value | $http.headers.user-agent)"

// Fields known to hold IP addresses, removed when scrubIpAddresses is on.
const knownIPFields = "$http.env.REMOTE_ADDR || $user.ip_address || $sdk.client_ip || $span.sentry_tags.'user.ip' || attributes.'client.address'"

var sensitiveCookies = []string{
	"sentrysid", "sudo", "su", "session", "__session", "sessionid", "user_session",
	"symfony", "phpsessid", "fasthttpsessionid", "mysession", "irissessionid", "_vercel_jwt",
	"csrf", "xsrf", "_xsrf", "_csrf", "csrf-token", "csrf_token", "xsrf-token", "xsrf_token",
	"fastcsrf", "_iris_csrf",
}

// replaceOnly are fields important to the product: the defaults only
// substitute in them, never remove.
const replaceOnly = "$logentry.formatted || $log.body"

func mustSelector(s string) *selector {
	sel, err := parseSelectorStrict(s)
	if err != nil {
		panic(err)
	}
	return sel
}

var (
	ignoreSel      = mustSelector(datascrubberIgnore)
	knownIPSel     = mustSelector(knownIPFields)
	replaceOnlySel = mustSelector(replaceOnly)
	cookiesSrc     = func() string {
		parts := []string{"*.'http.request.header.cookie'"}
		for _, c := range sensitiveCookies {
			parts = append(parts, "*.cookies."+c, "*.'http.request.header.cookie."+c+"'")
		}
		return strings.Join(parts, " || ")
	}()
	cookiesSel  = mustSelector(cookiesSrc)
	anyValueSel = mustSelector("$string || $number || $array || $object")
)

// convert turns datascrubbingSettings into a PII config as Relay's
// to_pii_config does; false when it scrubs nothing.
func convert(s DataScrubbingSettings) (pass, bool) {
	custom := map[string]*ruleSpec{}
	var applied []string
	var apps []application
	if s.ScrubData && s.ScrubDefaults {
		applied = append(applied, "@common:filter")
		apps = append(apps,
			newApplication(cookiesSel, cookiesSrc, custom, []string{"@anything:filter"}),
			newApplication(replaceOnlySel, replaceOnly, custom, []string{"@email:replace", "@creditcard:replace", "@iban:replace", "@usssn:replace", "@bearer:replace"}))
	}
	if s.ScrubIPAddresses {
		apps = append(apps, newApplication(knownIPSel, knownIPFields, custom, []string{"@anything:remove"}))
		applied = append(applied, "@ip:replace")
	}
	if s.ScrubData {
		var quoted []string
		for _, f := range s.SensitiveFields {
			if f = strings.TrimSpace(f); f != "" {
				quoted = append(quoted, regexp.QuoteMeta(f))
			}
		}
		if len(quoted) > 0 {
			custom["strip-fields"] = &ruleSpec{
				ty:        rRedactPair,
				pattern:   regexp.MustCompile("(?i)" + strings.Join(quoted, "|")),
				redaction: replace(filtered),
			}
			applied = append(applied, "strip-fields")
		}
	}
	if len(applied) == 0 && len(apps) == 0 {
		return pass{}, false
	}
	if len(applied) > 0 {
		conj := []*selector{anyValueSel, {kind: sNot, inner: []*selector{ignoreSel}}}
		for _, f := range s.ExcludeFields {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			sel, err := parseSelectorStrict(f)
			if err != nil {
				// Sentry lets invalid safe fields through; Relay falls back to a key.
				sel = &selector{path: []item{{kind: iKey, key: strings.ToLower(f)}}}
			}
			conj = append(conj, &selector{kind: sNot, inner: []*selector{sel}})
		}
		apps = append(apps, newApplication(&selector{kind: sAnd, inner: conj}, "datascrubbing", custom, applied))
	}
	sortApps(apps)
	return pass{apps: apps}, true
}

// sortApps orders applications as Relay's BTreeMap of selectors does
// (derived Ord: And < Or < Not < Path, then element-wise).
func sortApps(apps []application) {
	slices.SortStableFunc(apps, func(a, b application) int { return compareSel(a.sel, b.sel) })
}

func compareSel(a, b *selector) int {
	if a.kind != b.kind {
		return int(selOrder[a.kind]) - int(selOrder[b.kind])
	}
	if a.kind == sPath {
		for i := 0; i < len(a.path) && i < len(b.path); i++ {
			if c := compareItem(&a.path[i], &b.path[i]); c != 0 {
				return c
			}
		}
		return len(a.path) - len(b.path)
	}
	for i := 0; i < len(a.inner) && i < len(b.inner); i++ {
		if c := compareSel(a.inner[i], b.inner[i]); c != 0 {
			return c
		}
	}
	return len(a.inner) - len(b.inner)
}

var selOrder = [...]uint8{sAnd: 0, sOr: 1, sNot: 2, sPath: 3}

// itemOrder is Relay's SelectorPathItem order: Type < Index < Key < * < **.
var itemOrder = [...]uint8{iType: 0, iIndex: 1, iKey: 2, iWild: 3, iDeep: 4}

func compareItem(a, b *item) int {
	if a.kind != b.kind {
		return int(itemOrder[a.kind]) - int(itemOrder[b.kind])
	}
	switch a.kind {
	case iType:
		return typeOrdinal(a.ty) - typeOrdinal(b.ty)
	case iIndex:
		return a.index - b.index
	case iKey:
		return strings.Compare(a.key, b.key)
	}
	return 0
}

// typeOrdinal is the position of a value type in Relay's ValueType enum.
func typeOrdinal(t vtype) int {
	for i, x := range []vtype{tString, tBinary, tNumber, tBoolean, tDateTime, tArray, tObject,
		tEvent, tAttachments, tReplay, tException, tStacktrace, tFrame, tRequest, tUser,
		tLogEntry, tThread, tBreadcrumb, tSpan, tSdk, tMinidump, tHeapMemory, tStackMemory} {
		if t == x {
			return i
		}
	}
	return 99
}
