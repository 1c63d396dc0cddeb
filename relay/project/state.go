package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/baton-relay/baton/relay/clientopts"
	"github.com/baton-relay/baton/relay/pii"
)

// Part names one independently decoded piece of a project config. A part
// that fails to decode disables only the features that depend on it.
type Part uint8

// The parts of a project state, and which config keys feed them.
const (
	PartKeys          Part = iota // publicKeys, disabled (top level)
	PartClient                    // allowedDomains, trustedRelays, trustedRelaySettings, scrubbing
	PartQuotas                    // quotas
	PartFilters                   // filterSettings
	PartSampling                  // sampling (alias dynamicSampling)
	PartMetrics                   // metrics, sessionMetrics, metricExtraction, ...
	PartFeatures                  // features
	PartGrouping                  // grouping (Baton's extension: discarded issue hashes)
	PartClientOptions             // clientOptions (Baton's extension: docs/client-options.md)
	PartTailSampling              // tailSampling (Baton's extension: DESIGN.md "Tail sampling")
	PartOther                     // config keys Baton does not know; passed through
	NumParts
)

var partNames = [NumParts]string{"keys", "client", "quotas", "filters", "sampling", "metrics", "features", "grouping", "clientOptions", "tailSampling", "other"}

func (p Part) String() string {
	if p < NumParts {
		return partNames[p]
	}
	return fmt.Sprintf("part(%d)", uint8(p))
}

// ParsePart returns the part called name.
func ParsePart(name string) (Part, bool) {
	i := slices.Index(partNames[:], name)
	return Part(i), i >= 0
}

// PartSet is a set of parts.
type PartSet uint16

// AllParts has every part.
const AllParts = PartSet(1<<NumParts - 1)

// Has reports whether p is in s.
func (s PartSet) Has(p Part) bool { return s&(1<<p) != 0 }

// With returns s with p added.
func (s PartSet) With(p Part) PartSet { return s | 1<<p }

// Names lists the parts of s in order.
func (s PartSet) Names() []string {
	var out []string
	for p := range NumParts {
		if s.Has(p) {
			out = append(out, p.String())
		}
	}
	return out
}

// configPart maps the keys of a project's "config" object to parts; any
// other key belongs to PartOther.
var configPart = map[string]Part{
	"allowedDomains":           PartClient,
	"trustedRelays":            PartClient,
	"trustedRelaySettings":     PartClient,
	"piiConfig":                PartClient,
	"datascrubbingSettings":    PartClient,
	"quotas":                   PartQuotas,
	"filterSettings":           PartFilters,
	"sampling":                 PartSampling,
	"dynamicSampling":          PartSampling,
	"metrics":                  PartMetrics,
	"sessionMetrics":           PartMetrics,
	"metricExtraction":         PartMetrics,
	"metricConditionalTagging": PartMetrics,
	"features":                 PartFeatures,
	"grouping":                 PartGrouping,
	"clientOptions":            PartClientOptions,
	"tailSampling":             PartTailSampling,
}

// PartOf returns the part a config key belongs to.
func PartOf(configKey string) Part {
	if p, ok := configPart[configKey]; ok {
		return p
	}
	return PartOther
}

// Key is one DSN public key of a project.
type Key struct {
	PublicKey string `json:"publicKey"`
	NumericID uint64 `json:"numericId,omitempty"`
	// IsEnabled defaults to true; older configs carry it.
	IsEnabled *bool `json:"isEnabled,omitempty"`
}

// Enabled reports whether the key may send.
func (k Key) Enabled() bool { return k.IsEnabled == nil || *k.IsEnabled }

// State is one project's config as Baton enforces it. It is immutable once
// built: the cache hands the same *State to every request.
type State struct {
	ProjectID      uint64
	OrganizationID uint64
	Rev            string
	Disabled       bool
	Keys           []Key

	// Client part.
	AllowedDomains  []string // nil with a broken client part: allow all
	TrustedRelays   []string
	VerifySignature bool
	// PII is the project's data scrubbing (piiConfig, then
	// datascrubbingSettings), compiled once per revision; nil scrubs
	// nothing. PIIErr is why it did not compile (wrapping
	// pii.ErrInvalidConfig): the project's events are then dropped, as
	// Relay drops them (outcome invalid, reason project_state_pii), never
	// forwarded unscrubbed.
	PII    *pii.Config
	PIIErr error
	// Attachments is the piiConfig compiled for plain attachments, nil
	// when it names no attachment (Relay then leaves attachments alone)
	// or when PIIErr is set.
	Attachments *pii.Attachments
	// ViewHierarchy is the piiConfig compiled for view hierarchy
	// attachments, which Relay scrubs as JSON when the project has
	// FeatureViewHierarchyScrubbing; nil without piiConfig applications.
	ViewHierarchy *pii.ViewHierarchy
	// piiParts holds PII, PIIErr, Attachments and ViewHierarchy, shared with the states of
	// other projects that have the same settings (piishare.go).
	piiParts *compiledPII

	// Quotas part.
	Quotas []Quota
	// Filters part.
	Filters Filters
	// Sampling part: nil when absent or broken (keep everything).
	Sampling *Sampling
	// Metrics part.
	Metrics Metrics
	// Features part.
	Features []string
	// Breakdowns is breakdownsV2 (part other) in name order; nil when
	// absent or malformed (Broken then says why), breakdowns.go.
	Breakdowns []Breakdown
	// Grouping part: nil when absent or broken (events are not hashed).
	Grouping *Grouping
	// ClientOptions part: nil when absent or broken (the project serves no
	// client options; Broken says why).
	ClientOptions *clientopts.Document
	// TailSampling part: nil when absent or broken (head sampling only;
	// Broken says why).
	TailSampling *TailSampling

	// Broken lists the parts that failed to decode, with why.
	Broken map[Part]string
	// Present lists the parts the upstream sent.
	Present PartSet

	top    map[string]json.RawMessage // top-level fields but "config"
	config map[string]json.RawMessage // the config object, verbatim
}

// ErrInvalidState is wrapped by DecodeState for a state that is not a JSON
// object or whose keys part is unusable: such a project cannot be served.
var ErrInvalidState = errors.New("project: invalid project state")

// DecodeState decodes a project state. Each part is decoded on its own: a
// malformed part is recorded in Broken and leaves its features off, and
// only a broken top level (not an object, bad publicKeys) is an error.
func DecodeState(data []byte) (*State, error) {
	st := &State{}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidState)
	}
	data = bytes.Clone(data) // the state keeps sub-slices of it, not the caller's buffer
	if st.top, _ = members(data); st.top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidState)
	}
	fields := []struct {
		name string
		v    any
	}{
		{"projectId", &st.ProjectID}, {"organizationId", &st.OrganizationID},
		{"rev", &st.Rev}, {"disabled", &st.Disabled}, {"publicKeys", &st.Keys},
	}
	for _, f := range fields {
		if raw, ok := st.top[f.name]; ok && !bytes.Equal(raw, []byte("null")) {
			if err := json.Unmarshal(raw, f.v); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrInvalidState, f.name, err)
			}
		}
	}
	st.Present = st.Present.With(PartKeys)
	if raw, ok := st.top["config"]; ok {
		delete(st.top, "config")
		var ok bool
		if st.config, ok = members(raw); !ok {
			// No usable config at all: every part but keys is broken.
			st.config = nil
			for p := PartClient; p < NumParts; p++ {
				st.breakPart(p, "config is not a JSON object")
			}
			st.failPII("config is not a JSON object")
			return st, nil
		}
	}
	st.decodeParts()
	st.markBroken()
	return st, nil
}

// markBroken honours the top-level "brokenParts" ({part: why}), Baton's
// extension: a source that stores parts apart (AssembleParts) could not
// read these, so they are off as if they failed to decode here. A broken
// client part fails closed: with its piiConfig unknown, events are dropped
// rather than forwarded unscrubbed.
func (st *State) markBroken() {
	raw, ok := st.top[brokenPartsKey]
	if !ok {
		return
	}
	var bp map[string]string
	if err := json.Unmarshal(raw, &bp); err != nil {
		bp = map[string]string{"other": brokenPartsKey + ": " + err.Error()}
	}
	for name, why := range bp {
		p, ok := ParsePart(name)
		if !ok || p == PartKeys {
			p = PartOther
		}
		st.Present = st.Present.With(p)
		st.breakPart(p, why)
		if p == PartClient {
			st.failPII("client part broken: " + why)
		}
	}
}

// breakPart records part p as broken (why) and turns its features off:
// every field the part feeds back to what an absent part gives, whether
// it failed to decode here or its source could not read it (brokenParts).
// The client part's PII is not among them: compilePII decides it from
// piiConfig alone, and failPII when that is unknown.
func (st *State) breakPart(p Part, why string) {
	if st.Broken == nil {
		st.Broken = map[Part]string{}
	}
	st.Broken[p] = why
	switch p {
	case PartClient:
		st.AllowedDomains, st.TrustedRelays, st.VerifySignature = []string{"*"}, nil, false
	case PartQuotas:
		st.Quotas = nil
	case PartFilters:
		st.Filters = Filters{}
	case PartSampling:
		st.Sampling = nil
	case PartMetrics:
		st.Metrics = Metrics{}
	case PartFeatures:
		st.Features = nil
	case PartGrouping:
		st.Grouping = nil
	case PartClientOptions:
		st.ClientOptions = nil
	case PartTailSampling:
		st.TailSampling = nil
	case PartOther:
		st.Breakdowns = nil
	}
}

// failPII fails the project's data scrubbing closed: its events are
// dropped rather than forwarded unscrubbed (State.PIIErr).
func (st *State) failPII(why string) {
	st.piiParts, st.PII, st.Attachments, st.ViewHierarchy = nil, nil, nil, nil
	st.PIIErr = fmt.Errorf("%w: %s", pii.ErrInvalidConfig, why)
}

// decodeParts fills each part from st.config, recording failures.
func (st *State) decodeParts() {
	for k := range st.config {
		st.Present = st.Present.With(PartOf(k))
	}
	st.AllowedDomains = []string{"*"}
	if err := st.decodeClient(); err != nil {
		st.breakPart(PartClient, err.Error())
	}
	st.compilePII() // whatever else of the client part broke: fail closed
	if err := decodeField(st.config, "quotas", &st.Quotas, validateQuotas); err != nil {
		st.breakPart(PartQuotas, err.Error())
	}
	if err := decodeField(st.config, "filterSettings", &st.Filters, (*Filters).validate); err != nil {
		st.breakPart(PartFilters, err.Error())
	}
	if err := st.decodeSampling(); err != nil {
		st.breakPart(PartSampling, err.Error())
	}
	if err := decodeField(st.config, "metrics", &st.Metrics, (*Metrics).validate); err != nil {
		st.breakPart(PartMetrics, err.Error())
	}
	if err := decodeField(st.config, "features", &st.Features, nil); err != nil {
		st.breakPart(PartFeatures, err.Error())
	}
	if err := st.decodeBreakdowns(); err != nil {
		st.breakPart(PartOther, err.Error())
	}
	if err := st.decodeGrouping(); err != nil {
		st.breakPart(PartGrouping, err.Error())
	}
	if err := st.decodeClientOptions(); err != nil {
		st.breakPart(PartClientOptions, err.Error())
	}
	if err := st.decodeTailSampling(); err != nil {
		st.breakPart(PartTailSampling, err.Error())
	}
}

func (st *State) decodeClient() error {
	if err := decodeField(st.config, "allowedDomains", &st.AllowedDomains, nil); err != nil {
		return err
	}
	if err := decodeField(st.config, "trustedRelays", &st.TrustedRelays, nil); err != nil {
		return err
	}
	var trs struct {
		VerifySignature string `json:"verifySignature"`
	}
	if err := decodeField(st.config, "trustedRelaySettings", &trs, nil); err != nil {
		return err
	}
	st.VerifySignature = trs.VerifySignature == "enabled"
	return nil
}

// compilePII compiles the project's piiConfig and datascrubbingSettings
// into st.PII, or records in st.PIIErr why they do not compile. It is not a
// broken part: the other client settings stay in force.
func (st *State) compilePII() {
	c := sharedPII(st.config["datascrubbingSettings"], st.config["piiConfig"])
	st.piiParts = c // keeps the shared entry alive while st is
	st.PII, st.PIIErr, st.Attachments, st.ViewHierarchy = c.pii, c.err, c.att, c.vh
}

func (st *State) decodeSampling() error {
	raw, key := st.config["sampling"], "sampling"
	if raw == nil {
		raw, key = st.config["dynamicSampling"], "dynamicSampling"
	}
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	s := new(Sampling)
	if err := json.Unmarshal(raw, s); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if err := s.validate(); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	st.Sampling = s
	return nil
}

// decodeField unmarshals config[key] into v (absent or null leaves v) and
// runs validate on it.
func decodeField[T any](config map[string]json.RawMessage, key string, v *T, validate func(*T) error) error {
	raw, ok := config[key]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if validate != nil {
		if err := validate(v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// KeyEnabled reports whether publicKey is one of the project's keys and
// enabled.
func (st *State) KeyEnabled(publicKey []byte) (known, enabled bool) {
	for _, k := range st.Keys {
		if constantTimeEq(k.PublicKey, publicKey) {
			return true, k.Enabled()
		}
	}
	return false, false
}

// KeyID returns the numeric id of publicKey, or 0.
func (st *State) KeyID(publicKey []byte) uint64 {
	for _, k := range st.Keys {
		if k.PublicKey == string(publicKey) {
			return k.NumericID
		}
	}
	return 0
}

// FeatureViewHierarchyScrubbing has view hierarchy attachments scrubbed
// as JSON (ViewHierarchy) rather than as plain attachments, as Relay does.
const FeatureViewHierarchyScrubbing = "organizations:view-hierarchy-scrubbing"

// FeatureReplayRecordingScrubbing has the custom events of replay
// recordings scrubbed (pii.Config.ScrubRecording), as Relay does only
// for organizations with it; replay events are scrubbed without it.
const FeatureReplayRecordingScrubbing = "organizations:session-replay-recording-scrubbing"

// HasFeature reports whether the project has the feature flag.
func (st *State) HasFeature(name string) bool { return slices.Contains(st.Features, name) }

// FeatureOff reports whether the features part is usable and lacks name:
// only then may a feature be treated as disabled (a missing or broken part
// turns nothing off).
func (st *State) FeatureOff(name string) bool {
	if !st.Present.Has(PartFeatures) {
		return false
	}
	if _, broken := st.Broken[PartFeatures]; broken {
		return false
	}
	return !st.HasFeature(name)
}

// AppendJSON appends the state as JSON with only the config keys of parts
// (AllParts for everything): what Baton serves to downstream relays.
func (st *State) AppendJSON(dst []byte, parts PartSet) []byte {
	out := make(map[string]json.RawMessage, len(st.top)+1)
	for k, v := range st.top {
		out[k] = v
	}
	if st.config != nil {
		cfg := make(map[string]json.RawMessage, len(st.config))
		for k, v := range st.config {
			if parts.Has(PartOf(k)) {
				cfg[k] = v
			}
		}
		b, _ := json.Marshal(cfg)
		out["config"] = b
	}
	b, _ := json.Marshal(out)
	return append(dst, b...)
}

// Quota is one entry of a project's quotas, as Relay's Quota.
type Quota struct {
	ID         string   `json:"id,omitempty"`
	Categories []string `json:"categories,omitempty"` // empty: every category
	Scope      string   `json:"scope,omitempty"`      // organization, project, key, global
	ScopeID    string   `json:"scopeId,omitempty"`
	Limit      *int64   `json:"limit,omitempty"`  // nil: unlimited
	Window     int64    `json:"window,omitempty"` // seconds
	ReasonCode string   `json:"reasonCode,omitempty"`
	Namespace  string   `json:"namespace,omitempty"`
}

func validateQuotas(qs *[]Quota) error {
	for i, q := range *qs {
		switch q.Scope {
		case "", "organization", "project", "key", "global":
		default:
			return fmt.Errorf("quota %d: unknown scope %q", i, q.Scope)
		}
		if q.Limit != nil && *q.Limit < 0 {
			return fmt.Errorf("quota %d: negative limit", i)
		}
		if q.Limit != nil && *q.Limit > 0 && q.ID != "" && q.Window <= 0 {
			return fmt.Errorf("quota %d: a counted quota needs a positive window", i)
		}
	}
	return nil
}

// Covers reports whether the quota applies to the data category name.
func (q *Quota) Covers(category string) bool {
	return len(q.Categories) == 0 || slices.Contains(q.Categories, category)
}

// Filters is the filterSettings part: Relay's inbound filters (see
// filters.go for the ones that read the event).
type Filters struct {
	ClientIPs struct {
		BlacklistedIPs []string `json:"blacklistedIps"`
	} `json:"clientIps"`
	Releases struct {
		Releases []string `json:"releases"`
	} `json:"releases"`
	BrowserExtensions  Toggle         `json:"browserExtensions"`
	WebCrawlers        Toggle         `json:"webCrawlers"`
	Localhost          Toggle         `json:"localhost"`
	LegacyBrowsers     LegacyBrowsers `json:"legacyBrowsers"`
	ErrorMessages      Patterns       `json:"errorMessages"`
	CSP                CSPFilter      `json:"csp"`
	IgnoreTransactions struct {
		IsEnabled bool     `json:"isEnabled"`
		Patterns  []string `json:"patterns"`
	} `json:"ignoreTransactions"`
	Generic GenericFilters `json:"generic"`

	blocked []netip.Prefix // ClientIPs, parsed by validate
	event   EventFilters   // the filters that read the event, compiled by validate
}

func (f *Filters) validate() error {
	f.blocked = f.blocked[:0]
	for _, ip := range f.ClientIPs.BlacklistedIPs {
		p, err := parseIPOrPrefix(ip)
		if err != nil {
			return fmt.Errorf("clientIps: %w", err)
		}
		f.blocked = append(f.blocked, p)
	}
	return f.compileEvent()
}

// Metrics is the metrics part: cardinality limits.
type Metrics struct {
	CardinalityLimits []CardinalityLimit `json:"cardinalityLimits"`
}

// CardinalityLimit limits the distinct metric keys of a project namespace
// per window.
type CardinalityLimit struct {
	ID        string `json:"id"`
	Passive   bool   `json:"passive,omitempty"`
	Limit     int    `json:"limit"`
	Namespace string `json:"namespace,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Window    struct {
		WindowSeconds      int64 `json:"windowSeconds"`
		GranularitySeconds int64 `json:"granularitySeconds"`
	} `json:"window"`
}

func (m *Metrics) validate() error {
	for i, l := range m.CardinalityLimits {
		if l.Limit < 0 {
			return fmt.Errorf("cardinalityLimits %d: negative limit", i)
		}
		if l.Window.WindowSeconds < 0 {
			return fmt.Errorf("cardinalityLimits %d: negative window", i)
		}
	}
	return nil
}

// constantTimeEq compares a known key with a presented one without leaking
// where they differ.
func constantTimeEq(known string, presented []byte) bool {
	if len(known) != len(presented) {
		return false
	}
	var v byte
	for i := range len(presented) {
		v |= known[i] ^ presented[i]
	}
	return v == 0
}
