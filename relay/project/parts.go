package project

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// A project config can also be kept with each part stored apart (Redis,
// DESIGN.md "Project configs in Redis"): one value per part, each an
// envelope {"rev": "...", "value": {...}}. The keys part's value holds the
// state's top-level fields (projectId, organizationId, disabled,
// publicKeys, slug, ...); every other part's value holds that part's keys
// of the upstream's "config" object (the quotas part {"quotas": [...]},
// the client part {"allowedDomains": [...], "piiConfig": {...}, ...}).

// PartEnvelope is how one part is stored apart.
type PartEnvelope struct {
	// Rev is the part's own revision (free text, for the operator; logged
	// with a broken part). Optional.
	Rev string `json:"rev,omitempty"`
	// Value is the part: a JSON object, see above.
	Value json.RawMessage `json:"value"`
}

// brokenPartsKey is the state's top-level field listing parts its source
// could not read ({part: why}); DecodeState turns them off.
const brokenPartsKey = "brokenParts"

// MaxPartBytes bounds one stored part: a longer one is broken (a blob
// stored under a config key by mistake must not cost the cache).
const MaxPartBytes = 256 << 10

// PartsRevPrefix starts the revision of a state assembled from parts.
const PartsRevPrefix = "parts-"

// ErrNoKeysPart is returned by AssembleParts when the keys part is absent:
// the source does not have the project.
var ErrNoKeysPart = errors.New("project: no keys part")

// topLevelReserved are top-level fields a keys part may not set: the
// assembly sets them.
var topLevelReserved = []string{"config", "rev", brokenPartsKey}

// AssembleParts builds the project state an upstream would send from parts
// stored apart: raw[p] is part p's stored envelope, nil when absent. An
// absent part is off (its features at their defaults); a part that does not
// decode, or holds a key of another part, is listed under "brokenParts" and
// only its features are off. The state's rev, also returned, is
// PartsRevPrefix and a hash of every stored byte, so any change is a new
// revision. It fails with ErrNoKeysPart without a keys part, and when the
// keys part is unusable (the project cannot be served from these parts).
func AssembleParts(raw *[NumParts][]byte) (state []byte, rev string, err error) {
	if raw[PartKeys] == nil {
		return nil, "", ErrNoKeysPart
	}
	h := fnv.New64a()
	for p, b := range raw {
		if b != nil {
			fmt.Fprintf(h, "%d:%d:", p, len(b))
			h.Write(b)
		}
	}
	rev = PartsRevPrefix + hex.EncodeToString(h.Sum(nil))
	top, err := partObject(raw[PartKeys], PartKeys)
	if err != nil {
		return nil, rev, fmt.Errorf("%w: keys part: %v", ErrInvalidState, err)
	}
	for _, k := range topLevelReserved {
		if _, ok := top[k]; ok {
			return nil, rev, fmt.Errorf("%w: keys part: %q is not a top-level field a part may set", ErrInvalidState, k)
		}
	}
	config := map[string]json.RawMessage{}
	broken := map[string]string{}
	for p := PartClient; p < NumParts; p++ {
		if raw[p] == nil {
			continue
		}
		obj, err := partObject(raw[p], p)
		if err == nil {
			err = checkPartKeys(p, obj)
		}
		if err != nil {
			broken[p.String()] = err.Error()
			continue
		}
		for k, v := range obj {
			config[k] = v
		}
	}
	top["rev"], _ = json.Marshal(rev)
	top["config"], _ = json.Marshal(config)
	if len(broken) > 0 {
		top[brokenPartsKey], _ = json.Marshal(broken)
	}
	state, err = json.Marshal(top)
	return state, rev, err
}

// EncodePart is the stored envelope of a part's value with revision rev.
func EncodePart(rev string, value []byte) ([]byte, error) {
	return json.Marshal(PartEnvelope{Rev: rev, Value: value})
}

// partObject decodes a stored part envelope and returns its value's fields.
func partObject(b []byte, p Part) (map[string]json.RawMessage, error) {
	if len(b) > MaxPartBytes {
		return nil, fmt.Errorf("part %s is over %d KiB", p, MaxPartBytes>>10)
	}
	var env PartEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("not a part envelope {\"rev\", \"value\"}: %v", err)
	}
	where := ""
	if env.Rev != "" {
		where = fmt.Sprintf("rev %s: ", env.Rev)
	}
	if len(env.Value) == 0 || bytes.Equal(env.Value, []byte("null")) {
		return nil, fmt.Errorf("%sno value", where)
	}
	obj, ok := members(env.Value) // valid JSON: json.Unmarshal checked the envelope
	if !ok {
		return nil, fmt.Errorf("%svalue is not a JSON object", where)
	}
	return obj, nil
}

// checkPartKeys refuses config keys of another part in part p's value.
func checkPartKeys(p Part, obj map[string]json.RawMessage) error {
	var wrong []string
	for k := range obj {
		if PartOf(k) != p {
			wrong = append(wrong, fmt.Sprintf("%q belongs to part %s", k, PartOf(k)))
		}
	}
	if len(wrong) == 0 {
		return nil
	}
	slices.Sort(wrong)
	return errors.New(strings.Join(wrong, ", "))
}

// CheckPart reports why value would be a broken part p, or nil: what a
// writer (`baton redis put-config`) checks before it stores a part.
func CheckPart(p Part, value []byte) error {
	if len(value) > MaxPartBytes-64 { // the envelope's share
		return fmt.Errorf("part %s: %d bytes, over %d KiB", p, len(value), MaxPartBytes>>10)
	}
	var obj map[string]json.RawMessage
	if json.Valid(value) { // members needs valid JSON
		obj, _ = members(value)
	}
	if obj == nil { // invalid, not an object, or null
		return fmt.Errorf("part %s: value is not a JSON object", p)
	}
	if p == PartKeys {
		for _, k := range topLevelReserved {
			if _, ok := obj[k]; ok {
				return fmt.Errorf("part keys: %q is not a top-level field a part may set", k)
			}
		}
		st, err := DecodeState(value)
		if err != nil {
			return err
		}
		if len(st.Keys) == 0 {
			return errors.New("part keys: no publicKeys")
		}
		return nil
	}
	if err := checkPartKeys(p, obj); err != nil {
		return fmt.Errorf("part %s: %w", p, err)
	}
	st, err := DecodeState(fmt.Appendf(nil, `{"config":%s}`, value))
	if err != nil {
		return err
	}
	if why, ok := st.Broken[p]; ok {
		return fmt.Errorf("part %s: %s", p, why)
	}
	if p == PartClient && st.PIIErr != nil {
		return fmt.Errorf("part client: %w", st.PIIErr)
	}
	return nil
}

// LaidRevMarker joins the revision of an upstream's config and that of a
// clientOptions part laid over it from a parts source (LayClientOptions).
const LaidRevMarker = "+parts-co-"

// LayClientOptions lays a clientOptions part stored apart (raw, its
// envelope) over state, an upstream's answer: a source that holds only
// this part of a key adds client options to the config it fetched. The
// part replaces the upstream's; one that does not decode is listed under
// "brokenParts" (client options off) as AssembleParts lists it. The rev
// becomes the upstream's, LaidRevMarker and a hash of raw: a change of
// either is a new revision. A state that is not an object is returned
// as it is (the cache refuses it).
func LayClientOptions(state json.RawMessage, raw []byte) json.RawMessage {
	if !json.Valid(state) {
		return state
	}
	top, ok := members(state)
	if !ok || top == nil {
		return state // null: unknown key
	}
	var config map[string]json.RawMessage
	if c, ok := top["config"]; ok {
		if config, ok = members(c); !ok {
			return state // no usable config: every part is broken anyway
		}
	}
	if config == nil {
		config = map[string]json.RawMessage{}
	}
	obj, err := partObject(raw, PartClientOptions)
	if err == nil {
		err = checkPartKeys(PartClientOptions, obj)
	}
	delete(config, "clientOptions")
	if v, ok := obj["clientOptions"]; ok && err == nil {
		config["clientOptions"] = v
	}
	// The upstream's verdict on its own part no longer holds; one that
	// cannot be read is left for DecodeState to report.
	var broken map[string]string
	if b, ok := top[brokenPartsKey]; !ok || json.Unmarshal(b, &broken) == nil {
		delete(broken, PartClientOptions.String())
		if err != nil {
			if broken == nil {
				broken = map[string]string{}
			}
			broken[PartClientOptions.String()] = err.Error()
		}
		if len(broken) == 0 {
			delete(top, brokenPartsKey)
		} else {
			top[brokenPartsKey], _ = json.Marshal(broken)
		}
	}
	var rev string
	if r, ok := top["rev"]; ok {
		_ = json.Unmarshal(r, &rev) // not a string: as if absent
	}
	h := fnv.New64a()
	h.Write(raw)
	top["rev"], _ = json.Marshal(rev + LaidRevMarker + hex.EncodeToString(h.Sum(nil)))
	top["config"], _ = json.Marshal(config)
	out, _ := json.Marshal(top)
	return out
}
