package clientopts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/baton-relay/baton/relay/glob"
)

// Version is the schema version this package reads.
const Version = 1

// MaxRules bounds the rules of a document: a client's matches are a bit
// set of one word, and each combination is rendered once.
const MaxRules = 64

// maxAnswers bounds the rendered answers a document keeps, one per
// combination of matched rules seen (a few hundred bytes each, at most
// ~1 KiB); past it answers are rendered per request (~2 µs). DESIGN.md
// "Memory" counts it per cached project.
const maxAnswers = 16

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("clientopts: invalid client options")

// FieldError is one problem at Path, a dotted path into the document
// ("options.traces_sample_rate", "rules[0].match.sdk_version").
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Options are the SDK settings of a document, a rule, or an answer. A nil
// field is unset: the SDK keeps its own value.
type Options struct {
	// TracesSampleRate is the share of transactions sampled, 0 to 1.
	TracesSampleRate *float64 `json:"traces_sample_rate,omitempty"`
	// ProfilesSampleRate is the share of sampled transactions profiled, 0
	// to 1; 0 turns profiling off.
	ProfilesSampleRate *float64 `json:"profiles_sample_rate,omitempty"`
	// ReplaysSessionSampleRate is the share of sessions recorded, 0 to 1.
	ReplaysSessionSampleRate *float64 `json:"replays_session_sample_rate,omitempty"`
	// ReplaysOnErrorSampleRate is the share of sessions with an error
	// recorded, 0 to 1.
	ReplaysOnErrorSampleRate *float64 `json:"replays_on_error_sample_rate,omitempty"`
	// EnableMinidumps turns native crash (minidump) upload on or off.
	EnableMinidumps *bool `json:"enable_minidumps,omitempty"`
	// SendDefaultPII may only be false: a hint that the SDK must not send
	// default PII whatever its own setting. Baton never turns PII on.
	SendDefaultPII *bool `json:"send_default_pii,omitempty"`
}

// Match is a rule's targeting; an empty field matches every client. All
// the set fields must match.
type Match struct {
	// Releases are release patterns ("*" matches any run of characters).
	Releases []string `json:"releases,omitempty"`
	// Environments are environment names, exactly.
	Environments []string `json:"environments,omitempty"`
	// Platforms are platform names ("javascript", "cocoa", "go"), exactly.
	Platforms []string `json:"platforms,omitempty"`
	// SDKs are SDK name patterns ("sentry.javascript.*").
	SDKs []string `json:"sdks,omitempty"`
	// SDKVersion is a version range: comparisons (>=, >, <=, <, =)
	// separated by spaces or commas, all of which must hold (">=7.0 <8").
	SDKVersion string `json:"sdk_version,omitempty"`
	// Percentage is the share of devices, 0 to 100, picked by a stable
	// hash of the rule id and the client's device id; a client without a
	// device id does not match.
	Percentage *float64 `json:"percentage,omitempty"`
}

// Rule overrides Options for the clients it matches.
type Rule struct {
	// ID names the rule in answers and seeds its percentage. Required,
	// unique within the document.
	ID      string  `json:"id"`
	Match   Match   `json:"match"`
	Options Options `json:"options"`
}

// Document is one project's client options.
type Document struct {
	Version int     `json:"version"`
	Options Options `json:"options"`
	Rules   []Rule  `json:"rules,omitempty"`

	rev      string
	hint     []byte
	compiled []compiledRule
	answers  sync.Map // uint64 (matched rules) → *Answer
	nAnswers atomic.Int64
}

// Client is what a client says about itself; byte slices so a request's
// query values are used in place.
type Client struct {
	SDK, SDKVersion, Release, Environment, Platform, DeviceID []byte
}

// Answer is a resolved document for one client: the JSON body and its
// ETag (quoted). Shared: callers must not modify it.
type Answer struct {
	Body []byte
	ETag []byte
}

// Parse decodes and validates a document (JSON), then compiles it.
func Parse(data []byte) (*Document, error) {
	d := new(Document)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		return nil, &FieldError{Msg: "not a client options document: " + err.Error()}
	}
	if err := d.compile(); err != nil {
		return nil, err
	}
	return d, nil
}

// Revision names the document's content: the first 16 hex digits of the
// SHA-256 of its canonical JSON. Equal documents have equal revisions at
// every Baton of a chain.
func (d *Document) Revision() string { return d.rev }

func (d *Document) compile() error {
	if d.Version != Version {
		return &FieldError{"version", fmt.Sprintf("must be %d, got %d", Version, d.Version)}
	}
	if err := d.Options.validate("options"); err != nil {
		return err
	}
	if len(d.Rules) > MaxRules {
		return &FieldError{"rules", fmt.Sprintf("at most %d rules, got %d", MaxRules, len(d.Rules))}
	}
	ids := make(map[string]int, len(d.Rules))
	d.compiled = make([]compiledRule, len(d.Rules))
	for i := range d.Rules {
		r := &d.Rules[i]
		p := fmt.Sprintf("rules[%d]", i)
		if r.ID == "" {
			return &FieldError{p + ".id", "is required (it names the rule in answers and seeds its percentage)"}
		}
		if j, dup := ids[r.ID]; dup {
			return &FieldError{p + ".id", fmt.Sprintf("%q is also the id of rules[%d]", r.ID, j)}
		}
		ids[r.ID] = i
		c, err := compileMatch(&r.Match, p+".match")
		if err != nil {
			return err
		}
		c.id = r.ID
		d.compiled[i] = c
		if err := r.Options.validate(p + ".options"); err != nil {
			return err
		}
	}
	canon, _ := json.Marshal(d)
	sum := sha256.Sum256(canon)
	d.rev = hex.EncodeToString(sum[:8])
	d.hint = []byte(d.rev)
	return nil
}

func (o *Options) validate(path string) error {
	for _, f := range []struct {
		name string
		v    *float64
	}{
		{"traces_sample_rate", o.TracesSampleRate},
		{"profiles_sample_rate", o.ProfilesSampleRate},
		{"replays_session_sample_rate", o.ReplaysSessionSampleRate},
		{"replays_on_error_sample_rate", o.ReplaysOnErrorSampleRate},
	} {
		if f.v != nil && (math.IsNaN(*f.v) || *f.v < 0 || *f.v > 1) {
			return &FieldError{path + "." + f.name, fmt.Sprintf("must be 0 to 1, got %v", *f.v)}
		}
	}
	if o.SendDefaultPII != nil && *o.SendDefaultPII {
		return &FieldError{path + ".send_default_pii", "may only be false: Baton can tell SDKs to withhold default PII, never to send it"}
	}
	return nil
}

// override sets in o every option r sets.
func (o *Options) override(r *Options) {
	if r.TracesSampleRate != nil {
		o.TracesSampleRate = r.TracesSampleRate
	}
	if r.ProfilesSampleRate != nil {
		o.ProfilesSampleRate = r.ProfilesSampleRate
	}
	if r.ReplaysSessionSampleRate != nil {
		o.ReplaysSessionSampleRate = r.ReplaysSessionSampleRate
	}
	if r.ReplaysOnErrorSampleRate != nil {
		o.ReplaysOnErrorSampleRate = r.ReplaysOnErrorSampleRate
	}
	if r.EnableMinidumps != nil {
		o.EnableMinidumps = r.EnableMinidumps
	}
	if r.SendDefaultPII != nil {
		o.SendDefaultPII = r.SendDefaultPII
	}
}

// Resolve evaluates the rules for c and returns the answer. It allocates
// only the first time a combination of matched rules is seen.
func (d *Document) Resolve(c *Client) *Answer {
	var matched uint64
	for i := range d.compiled {
		if d.compiled[i].matches(c) {
			matched |= 1 << i
		}
	}
	if a, ok := d.answers.Load(matched); ok {
		return a.(*Answer)
	}
	a := d.render(matched)
	if d.nAnswers.Add(1) <= maxAnswers {
		if prev, loaded := d.answers.LoadOrStore(matched, a); loaded {
			d.nAnswers.Add(-1)
			return prev.(*Answer)
		}
	} else {
		d.nAnswers.Add(-1)
	}
	return a
}

// resolved is the answer's JSON.
type resolved struct {
	Version  int      `json:"version"`
	Revision string   `json:"revision"`
	Options  Options  `json:"options"`
	Rules    []string `json:"rules"`
}

func (d *Document) render(matched uint64) *Answer {
	out := resolved{Version: Version, Revision: d.rev, Options: d.Options, Rules: []string{}}
	for i := range d.Rules {
		if matched&(1<<i) != 0 {
			out.Options.override(&d.Rules[i].Options)
			out.Rules = append(out.Rules, d.Rules[i].ID)
		}
	}
	body, _ := json.Marshal(out)
	sum := sha256.Sum256(body)
	etag := make([]byte, 0, 34)
	etag = append(etag, '"')
	etag = hex.AppendEncode(etag, sum[:16])
	etag = append(etag, '"')
	return &Answer{Body: body, ETag: etag}
}

// compiledRule is a Match ready to evaluate.
type compiledRule struct {
	id           string
	releases     []string
	environments []string
	platforms    []string
	sdks         []string
	versions     []constraint
	share        uint64 // devices whose bucket is below it match (of bucketRange)
	percentage   bool
}

// bucketRange is the resolution of percentages: 0.001%.
const bucketRange = 100000

func compileMatch(m *Match, path string) (compiledRule, error) {
	c := compiledRule{releases: m.Releases, environments: m.Environments, platforms: m.Platforms, sdks: m.SDKs}
	for _, l := range []struct {
		name string
		v    []string
	}{{"releases", m.Releases}, {"environments", m.Environments}, {"platforms", m.Platforms}, {"sdks", m.SDKs}} {
		for i, s := range l.v {
			if s == "" {
				return c, &FieldError{fmt.Sprintf("%s.%s[%d]", path, l.name, i), "must not be empty"}
			}
		}
	}
	if m.SDKVersion != "" {
		vs, err := parseRange(m.SDKVersion)
		if err != nil {
			return c, &FieldError{path + ".sdk_version", err.Error()}
		}
		c.versions = vs
	}
	if p := m.Percentage; p != nil {
		if math.IsNaN(*p) || *p < 0 || *p > 100 {
			return c, &FieldError{path + ".percentage", fmt.Sprintf("must be 0 to 100, got %v", *p)}
		}
		c.percentage = true
		c.share = uint64(math.Round(*p * bucketRange / 100))
	}
	return c, nil
}

func (r *compiledRule) matches(c *Client) bool {
	if len(r.environments) > 0 && !containsExact(r.environments, c.Environment) {
		return false
	}
	if len(r.platforms) > 0 && !containsExact(r.platforms, c.Platform) {
		return false
	}
	if len(r.releases) > 0 && !containsGlob(r.releases, c.Release) {
		return false
	}
	if len(r.sdks) > 0 && !containsGlob(r.sdks, c.SDK) {
		return false
	}
	if len(r.versions) > 0 {
		v, ok := parseVersion(c.SDKVersion)
		if !ok {
			return false
		}
		for _, con := range r.versions {
			if !con.holds(v) {
				return false
			}
		}
	}
	if r.percentage {
		if len(c.DeviceID) == 0 {
			return false
		}
		return Bucket(r.id, c.DeviceID) < r.share
	}
	return true
}

// Bucket is the device's place, 0 to 99999, in the rollout of rule id:
// FNV-1a of the rule id, a NUL and the device id.
func Bucket(id string, device []byte) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	h *= prime // the NUL: h ^ 0
	for _, b := range device {
		h = (h ^ uint64(b)) * prime
	}
	return h % bucketRange
}

func containsExact(list []string, v []byte) bool {
	for _, s := range list {
		if s == string(v) {
			return true
		}
	}
	return false
}

func containsGlob(list []string, v []byte) bool {
	for _, p := range list {
		if glob.Match(p, v) {
			return true
		}
	}
	return false
}

// version is major.minor.patch; missing parts are 0, a pre-release or
// build suffix is ignored.
type version [3]uint64

func parseVersion(b []byte) (version, bool) {
	var v version
	b = bytes.TrimPrefix(b, []byte("v"))
	if i := bytes.IndexAny(b, "-+"); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return v, false
	}
	for k := 0; k < 3 && len(b) > 0; k++ {
		part, rest, _ := bytes.Cut(b, []byte{'.'})
		if len(part) == 0 {
			return v, false
		}
		var n uint64
		for _, ch := range part {
			if ch < '0' || ch > '9' || n > math.MaxUint64/10-9 {
				return v, false
			}
			n = n*10 + uint64(ch-'0')
		}
		v[k] = n
		b = rest
	}
	return v, len(b) == 0
}

func (v version) cmp(w version) int {
	for k := range v {
		if v[k] != w[k] {
			if v[k] < w[k] {
				return -1
			}
			return 1
		}
	}
	return 0
}

type constraint struct {
	op string
	v  version
}

func (c constraint) holds(v version) bool {
	r := v.cmp(c.v)
	switch c.op {
	case ">=":
		return r >= 0
	case ">":
		return r > 0
	case "<=":
		return r <= 0
	case "<":
		return r < 0
	default:
		return r == 0
	}
}

func parseRange(s string) ([]constraint, error) {
	var out []constraint
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		op := ""
		for _, o := range []string{">=", "<=", "==", ">", "<", "="} {
			if strings.HasPrefix(f, o) {
				op = o
				break
			}
		}
		v, ok := parseVersion([]byte(strings.TrimSpace(f[len(op):])))
		if !ok {
			return nil, fmt.Errorf("%q is not a version comparison: want e.g. >=1.2.0, <2, =1.4.3", f)
		}
		if op == "" || op == "==" {
			op = "="
		}
		out = append(out, constraint{op, v})
	}
	if len(out) == 0 {
		return nil, errors.New("empty version range")
	}
	return out, nil
}

// HintValue is the X-Baton-Client-Options value of ingest answers: the
// revision, so an SDK that has fetched another one fetches again.
func (d *Document) HintValue() []byte { return d.hint }
