package tailsample

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"

	"github.com/baton-relay/baton/relay/glob"
)

// Match is one keep rule: a trace with an item that meets every field set
// here is kept. An empty field is not looked at; at least one is set.
type Match struct {
	// Attribute names a tag of the transaction, or a data key / attribute
	// of one of its spans (or of a span item); Equals is the value it must
	// have (numbers and booleans compare as their JSON text). Set together.
	Attribute, Equals string
	// Transaction is a glob ('*' is any run of characters) of the
	// transaction name (a span's segment name).
	Transaction string
	// Release is a glob of the release.
	Release string
}

// Errors of Match.Validate.
var (
	ErrEmptyMatch  = errors.New("a rule needs attribute, transaction or release")
	ErrMatchEquals = errors.New("equals needs an attribute")
)

// Validate reports why m is not a rule, nil when it is. An attribute
// without equals matches the attribute set to "".
func (m Match) Validate() error {
	switch {
	case m.Attribute == "" && m.Equals != "":
		return ErrMatchEquals
	case m.Attribute == "" && m.Transaction == "" && m.Release == "":
		return ErrEmptyMatch
	}
	return nil
}

// fields is what the rules read of one item: its name, release and its
// attributes (tags, span data), each value as text.
type fields struct {
	name, release string
	attrs         map[string]string
}

func (m *Match) matches(f *fields) bool {
	if m.Transaction != "" && !glob.Match(m.Transaction, f.name) {
		return false
	}
	if m.Release != "" && !glob.Match(m.Release, f.release) {
		return false
	}
	if m.Attribute != "" {
		v, ok := f.attrs[m.Attribute]
		if !ok || v != m.Equals {
			return false
		}
	}
	return true
}

// item is a transaction or span payload as Inspect reads it with Match
// rules: its status (itemStatus) and what the rules look at.
type item struct {
	itemStatus
	Transaction string          `json:"transaction"`
	Name        string          `json:"name"` // span v2
	Release     string          `json:"release"`
	Tags        json.RawMessage `json:"tags"`
	Data        json.RawMessage `json:"data"`
	Attributes  json.RawMessage `json:"attributes"` // span v2
	SentryTags  json.RawMessage `json:"sentry_tags"`
	Contexts    struct {
		Trace struct {
			traceStatus
			Data json.RawMessage `json:"data"`
		} `json:"trace"`
	} `json:"contexts"`
	Spans []struct {
		Tags json.RawMessage `json:"tags"`
		Data json.RawMessage `json:"data"`
	} `json:"spans"`
	Items []json.RawMessage `json:"items"` // span v2 container
}

// matchItem reports whether one transaction or span payload meets any of
// ms (item.matches).
func matchItem(ms []Match, payload []byte) bool {
	var it item
	return decodeItem(payload, &it) == nil && it.matches(ms)
}

// matches reports whether the item meets any of ms. It reads the
// transaction's tags and contexts.trace.data, its spans' data and tags, a
// span item's data, tags and sentry_tags, and span v2 containers' items
// with their attributes.
func (it *item) matches(ms []Match) bool {
	for _, sub := range it.Items {
		if matchItem(ms, sub) {
			return true
		}
	}
	f := fields{name: it.Transaction, release: it.Release, attrs: map[string]string{}}
	addAttrs(f.attrs, it.Contexts.Trace.Data)
	for _, sp := range it.Spans {
		addAttrs(f.attrs, sp.Data)
		addAttrs(f.attrs, sp.Tags)
	}
	addAttrs(f.attrs, it.SentryTags)
	addAttrs(f.attrs, it.Data)
	addAttrs(f.attrs, it.Attributes)
	addAttrs(f.attrs, it.Tags) // the item's own tags win over its spans'
	if f.name == "" {
		f.name = cmp.Or(f.attrs["transaction"], f.attrs["sentry.segment.name"], it.Name)
	}
	if f.release == "" {
		f.release = cmp.Or(f.attrs["release"], f.attrs["sentry.release"])
	}
	for i := range ms {
		if ms[i].matches(&f) {
			return true
		}
	}
	return false
}

// addAttrs adds the pairs of raw to m: an object of values (a value may be
// a span v2 attribute, {"type":…,"value":…}), or Sentry's tag list form
// [["key","value"],…].
func addAttrs(m map[string]string, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	if raw[0] == '[' {
		var pairs [][]json.RawMessage
		if json.Unmarshal(raw, &pairs) == nil {
			for _, p := range pairs {
				if len(p) == 2 {
					var k string
					if json.Unmarshal(p[0], &k) == nil {
						m[k] = text(p[1])
					}
				}
			}
		}
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return
	}
	for k, v := range obj {
		m[k] = text(v)
	}
}

// text is a JSON value as a rule compares it: a string's content, a span
// v2 attribute's value, else the JSON text itself.
func text(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	case '{':
		var a struct {
			Value json.RawMessage `json:"value"`
		}
		if json.Unmarshal(v, &a) == nil && len(a.Value) > 0 && a.Value[0] != '{' {
			return text(a.Value)
		}
	}
	return string(v)
}
