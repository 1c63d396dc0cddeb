package pii

import (
	"regexp"
	"strings"
)

// ruleType is a rule's `type`.
type ruleType uint8

const (
	rUnknown ruleType = iota
	rPattern
	rRedactPair
	rAnything
	rImei
	rMac
	rUUID
	rEmail
	rIP
	rCreditcard
	rIban
	rUserpath
	rPassword
	rBearer
	rPemkey
	rURLAuth
	rUsSsn
	rMultiple
	rAlias
)

var ruleTypeNames = map[string]ruleType{
	"pattern": rPattern, "redact_pair": rRedactPair, "anything": rAnything,
	"imei": rImei, "mac": rMac, "uuid": rUUID, "email": rEmail, "ip": rIP,
	"creditcard": rCreditcard, "iban": rIban, "userpath": rUserpath,
	"password": rPassword, "bearer": rBearer, "pemkey": rPemkey, "urlauth": rURLAuth,
	"usssn": rUsSsn, "multiple": rMultiple, "alias": rAlias,
}

// method is a redaction method; methodDefault defers to an inner rule's
// method (aliases) and otherwise removes, as Relay's Redaction::Default.
type method uint8

const (
	methodDefault method = iota
	methodRemove
	methodReplace
	methodMask
	methodHash
	methodOther // an unknown method: Relay accepts it and redacts nothing
)

type redaction struct {
	method method
	text   string // methodReplace
}

// filtered is Relay's default replacement text.
const filtered = "[Filtered]"

// ruleSpec is one rule as configured (or built in).
type ruleSpec struct {
	ty        ruleType
	redaction redaction
	pattern   *regexp.Regexp // rPattern; key pattern for rRedactPair
	groups    []int          // rPattern replaceGroups; nil: the whole match
	rules     []string       // rMultiple; rAlias has one
	hideInner bool
}

func replace(text string) redaction { return redaction{method: methodReplace, text: text} }

var (
	rmv  = redaction{method: methodRemove}
	mask = redaction{method: methodMask}
	hash = redaction{method: methodHash}
)

func alias(target string) *ruleSpec {
	return &ruleSpec{ty: rAlias, rules: []string{target}, hideInner: true}
}

// builtins is Relay's built-in rule set (relay-pii builtin.rs), by id.
var builtins = func() map[string]*ruleSpec {
	m := map[string]*ruleSpec{
		"@common": {ty: rMultiple, rules: []string{"@iban", "@ip", "@email", "@creditcard", "@pemkey", "@urlauth", "@userpath", "@password", "@usssn"}},
		// legacy data scrubbing equivalent
		"@common:filter":  {ty: rMultiple, rules: []string{"@creditcard:filter", "@iban:filter", "@pemkey:filter", "@urlauth:legacy", "@userpath:filter", "@password:filter", "@usssn:filter"}},
		"@urlauth:legacy": {ty: rPattern, pattern: regexp.MustCompile(`\b((?:[a-z0-9]+:)?//[a-zA-Z0-9%_.-]+:)([a-zA-Z0-9%_.-]+)@`), groups: []int{2}, redaction: replace(filtered)},
	}
	type family struct {
		name     string
		ty       ruleType
		def      string // the method the bare name aliases
		replaced string // the :replace text
		filter   bool   // has a :filter variant ([Filtered])
	}
	for _, f := range []family{
		{"anything", rAnything, "replace", filtered, true},
		{"ip", rIP, "replace", "[ip]", false},
		{"imei", rImei, "replace", "[imei]", false},
		{"mac", rMac, "mask", "[mac]", false},
		{"uuid", rUUID, "mask", "[uuid]", false},
		{"email", rEmail, "replace", "[email]", false},
		{"iban", rIban, "replace", "[iban]", true},
		{"creditcard", rCreditcard, "replace", "[creditcard]", true},
		{"pemkey", rPemkey, "replace", "[pemkey]", true},
		{"urlauth", rURLAuth, "replace", "[auth]", false},
		{"usssn", rUsSsn, "mask", "[us-ssn]", true},
		{"userpath", rUserpath, "replace", "[user]", true},
		{"password", rPassword, "remove", "[password]", true},
		{"bearer", rBearer, "replace", "[token]", true},
	} {
		id := "@" + f.name
		m[id] = alias(id + ":" + f.def)
		m[id+":replace"] = &ruleSpec{ty: f.ty, redaction: replace(f.replaced)}
		m[id+":remove"] = &ruleSpec{ty: f.ty, redaction: rmv}
		m[id+":mask"] = &ruleSpec{ty: f.ty, redaction: mask}
		m[id+":hash"] = &ruleSpec{ty: f.ty, redaction: hash}
		if f.filter {
			m[id+":filter"] = &ruleSpec{ty: f.ty, redaction: replace(filtered)}
		}
	}
	// Relay quirk: @imei:mask hashes.
	m["@imei:mask"] = &ruleSpec{ty: rImei, redaction: hash}
	return m
}()

// patternKind says whether a regex runs on the key and the value (password,
// redact_pair) or on the value only.
type patternKind uint8

const (
	onValue patternKind = iota
	onKeyValue
)

// whole replaces the entire string, not just the match (key rules).
var whole = []int{-1}

type pattern struct {
	kind   patternKind
	re     *regexp.Regexp
	groups []int      // groups to replace; {0}: the match; whole: the value
	may    *prefilter // re's prefilter (prefilter.go), nil: none
}

const (
	v4s = `(25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)`
	v4a = v4s + `\.` + v4s + `\.` + v4s + `\.` + v4s
	v6s = `[0-9a-fA-F]{1,4}`
)

// The regexes of relay-pii regexes.rs, rewritten without (?x).
var (
	anythingRe = regexp.MustCompile(`.*`)
	imeiRe     = regexp.MustCompile(`\b(\d{2}-?\d{6}-?\d{6}-?\d{1,2})\b`)
	macRe      = regexp.MustCompile(`\b([[:xdigit:]]{2}[:-]){5}[[:xdigit:]]{2}\b`)
	uuidRe     = regexp.MustCompile(`(?i)\b[a-z0-9]{8}-?[a-z0-9]{4}-?[a-z0-9]{4}-?[a-z0-9]{4}-?[a-z0-9]{12}\b`)
	emailRe    = regexp.MustCompile("\\b[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*\\b")
	ibanRe     = regexp.MustCompile(`\b(AT|AD|AE|AL|AZ|BA|BE|BG|BH|BR|BY|CH|CR|CY|CZ|DE|DK|DO|EE|EG|ES|FI|FO|FR|GB|GE|GI|GL|GR|GT|HR|HU|IE|IL|IQ|IS|IT|JO|KW|KZ|LB|LC|LI|LT|LU|LV|LY|MC|MD|ME|MK|MR|MT|MU|NL|NO|PK|PL|PS|PT|QA|RO|RU|RS|SA|SC|SE|SI|SK|SM|ST|SV|TL|TN|TR|UA|VA|VG|XK|DZ|AO|BJ|BF|BI|CV|CM|CF|TD|KM|CG|CI|DJ|GQ|GA|GW|HN|IR|MG|ML|MA|MZ|NI|NE|SN|TG)\d{2}[a-zA-Z0-9]{11,29}\b`)
	ipv4Re     = regexp.MustCompile(`\b` + v4a + `\b`)
	// Relay's IPv6 alternation lacks a '|' after the link-local branch; kept
	// so the same strings match.
	ipv6Re = regexp.MustCompile(`(?i)(?:[\s]|[[:punct:]]|^)(` +
		`(` + v6s + `:){7}` + v6s + `|` +
		`(` + v6s + `:){1,7}:|` +
		`(` + v6s + `:){1,6}::` + v6s + `|` +
		`(` + v6s + `:){1,5}:(:` + v6s + `){1,2}|` +
		`(` + v6s + `:){1,4}:(:` + v6s + `){1,3}|` +
		`(` + v6s + `:){1,3}:(:` + v6s + `){1,4}|` +
		`(` + v6s + `:){1,2}:(:` + v6s + `){1,5}|` +
		v6s + `:((:` + v6s + `){1,6})|` +
		`:((:` + v6s + `){1,7}|:)|` +
		`fe80:(:` + v6s + `){0,4}%[0-9a-zA-Z]{1,}` +
		`::(ffff(:0{1,4}){0,1}:){0,1}` + v4a + `|` +
		`(` + v6s + `:){1,4}:` + v4a +
		`)([\s]|[[:punct:]]|$)`)
	creditcardRe = regexp.MustCompile(`\b((?:3[47]\d|4\d{3}|5[1-5]\d\d|65\d\d|6011)([-\s]?\d){12})\b`)
	// Relay's class has en dashes ("A–Z", "0–9"): only A, Z, 0, 9 and the
	// dash itself besides a-z. Kept so the same paths match.
	userpathRe = regexp.MustCompile(`(?i)(?:(?:\b(?:[a-zA-Z]:[\\/])?(?:users|home|documents and settings|[^/\\]+[/\\]profiles)[\\/])|(?:/(?:home|users)/))([A–Za-z0–9'\. _!#^~-]+)`)
	pemkeyRe   = regexp.MustCompile(`(?s)(?:-----BEGIN[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----[\t ]*\r?\n?)(.+?)(?:\r?\n?-----END[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----)`)
	urlauthRe  = regexp.MustCompile(`\b(?:(?:[a-z0-9+-]+:)?//([a-zA-Z0-9%_.-]+(?::[a-zA-Z0-9%_.-]+)?))@`)
	usssnRe    = regexp.MustCompile(`\b([0-9]{3}-[0-9]{2}-[0-9]{4})\b`)
	bearerRe   = regexp.MustCompile(`(?i)\bBearer\s+([A-Za-z0-9+/=_~.-]+)`)
	// Keys whose values are secrets (the password rule, legacy defaults).
	passwordKeyRe = regexp.MustCompile(`(?i)(password|secret|passwd|api_key|apikey|auth|credentials|mysql_pwd|privatekey|private_key|token|bearer|otp|two[-_]factor)`)
)

// patterns returns the regexes a rule runs, as Relay's get_regex_for_rule_type.
func (r *ruleSpec) patterns() []pattern {
	ps := r.regexes()
	for i := range ps {
		ps[i].may = prefilters[ps[i].re]
	}
	return ps
}

func (r *ruleSpec) regexes() []pattern {
	match := []int{0}
	switch r.ty {
	case rRedactPair:
		return []pattern{{onKeyValue, r.pattern, whole, nil}}
	case rPassword:
		return []pattern{{onKeyValue, passwordKeyRe, whole, nil}}
	case rAnything:
		return []pattern{{onValue, anythingRe, match, nil}}
	case rPattern:
		g := r.groups
		if g == nil {
			g = match
		}
		return []pattern{{onValue, r.pattern, g, nil}}
	case rImei:
		return []pattern{{onValue, imeiRe, match, nil}}
	case rMac:
		return []pattern{{onValue, macRe, match, nil}}
	case rUUID:
		return []pattern{{onValue, uuidRe, match, nil}}
	case rEmail:
		return []pattern{{onValue, emailRe, match, nil}}
	case rIban:
		return []pattern{{onValue, ibanRe, match, nil}}
	case rIP:
		return []pattern{{onValue, ipv4Re, match, nil}, {onValue, ipv6Re, []int{1}, nil}}
	case rCreditcard:
		return []pattern{{onValue, creditcardRe, match, nil}}
	case rPemkey:
		return []pattern{{onValue, pemkeyRe, []int{1}, nil}}
	case rURLAuth:
		return []pattern{{onValue, urlauthRe, []int{1}, nil}}
	case rUsSsn:
		return []pattern{{onValue, usssnRe, match, nil}}
	case rUserpath:
		return []pattern{{onValue, userpathRe, []int{1}, nil}}
	case rBearer:
		return []pattern{{onValue, bearerRe, []int{1}, nil}}
	}
	return nil
}

// ruleRef is a rule resolved for an application: its id (for ordering and
// de-duplication), the origin written in remarks (an alias that hides its
// inner rules), and the effective redaction.
type ruleRef struct {
	id        string
	origin    string
	spec      *ruleSpec
	redaction redaction
	patterns  []pattern
}

// collect resolves rule ids through aliases and multiples into rs, as Relay's
// collect_rules: unknown ids are ignored, each id is kept once.
func collect(custom map[string]*ruleSpec, rs []ruleRef, id string, parent *ruleRef, depth int) []ruleRef {
	if depth > 32 {
		return rs // alias cycle
	}
	spec, ok := custom[id]
	if !ok {
		spec, ok = builtins[id]
	}
	if !ok || spec.ty == rUnknown {
		return rs
	}
	for _, r := range rs {
		if r.id == id {
			return rs
		}
	}
	ref := ruleRef{id: id, origin: id, spec: spec, redaction: spec.redaction}
	if parent != nil {
		ref.origin = parent.origin
		if parent.redaction.method != methodDefault {
			ref.redaction = parent.redaction
		}
	}
	switch spec.ty {
	case rMultiple, rAlias:
		var p *ruleRef
		if spec.hideInner {
			p = &ref
		}
		for _, inner := range spec.rules {
			rs = collect(custom, rs, inner, p, depth+1)
		}
		return rs
	}
	ref.patterns = spec.patterns()
	// Relay keeps an application's rules in a set ordered by id.
	i := len(rs)
	for i > 0 && strings.Compare(rs[i-1].id, id) > 0 {
		i--
	}
	rs = append(rs, ruleRef{})
	copy(rs[i+1:], rs[i:])
	rs[i] = ref
	return rs
}
