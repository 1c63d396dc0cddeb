package otlp

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// attr is one attribute on its way out: an OTLP value under prefix+key, or
// a string or boolean Baton sets (kind says which).
type attr struct {
	prefix, key string
	kind        attrKind
	v           *commonpb.AnyValue
	s           string
	b           bool
}

type attrKind uint8

const (
	attrAny attrKind = iota
	attrString
	attrBool
)

// attrs collects the attributes of one span or log, in the order Relay
// inserts them: a later one replaces an earlier one of the same key.
type attrs []attr

func (a *attrs) addAll(prefix string, kvs []*commonpb.KeyValue) {
	for _, kv := range kvs {
		if v := kv.GetValue(); convertible(v) {
			*a = append(*a, attr{prefix: prefix, key: kv.GetKey(), v: v})
		}
	}
}

func (a *attrs) addString(key, s string) {
	*a = append(*a, attr{key: key, kind: attrString, s: s})
}

func (a *attrs) addBool(key string, b bool) {
	*a = append(*a, attr{key: key, kind: attrBool, b: b})
}

// addScope adds the resource's attributes as "resource.<key>" and the
// scope's as "instrumentation.<key>", then the scope's name and version
// (relay-otel's otel_scope_into_attributes).
func (a *attrs) addScope(res *resourcepb.Resource, scope *commonpb.InstrumentationScope) {
	a.addAll("resource.", res.GetAttributes())
	a.addAll("instrumentation.", scope.GetAttributes())
	if scope != nil {
		a.addString("instrumentation.name", scope.GetName())
		a.addString("instrumentation.version", scope.GetVersion())
	}
}

// convertible reports whether Relay keeps an attribute of value v: a set
// value that is not a NaN or infinite double nor bytes that are not UTF-8.
func convertible(v *commonpb.AnyValue) bool {
	switch x := v.GetValue().(type) {
	case nil:
		return false
	case *commonpb.AnyValue_DoubleValue:
		return !math.IsNaN(x.DoubleValue) && !math.IsInf(x.DoubleValue, 0)
	case *commonpb.AnyValue_BytesValue:
		return utf8.Valid(x.BytesValue)
	case *commonpb.AnyValue_StringValueStrindex: // profiles only: no dictionary here
		return false
	}
	return true
}

// cmpKey orders attributes by prefix+key without building the string.
func cmpKey(a, b attr) int {
	la, lb := len(a.prefix)+len(a.key), len(b.prefix)+len(b.key)
	for i := 0; i < la && i < lb; i++ {
		ca, cb := keyAt(&a, i), keyAt(&b, i)
		if ca != cb {
			return int(ca) - int(cb)
		}
	}
	return la - lb
}

func keyAt(a *attr, i int) byte {
	if i < len(a.prefix) {
		return a.prefix[i]
	}
	return a.key[i-len(a.prefix)]
}

// eqKey reports whether a and b have the same prefix+key.
func eqKey(a, b *attr) bool {
	if len(a.prefix)+len(a.key) != len(b.prefix)+len(b.key) {
		return false
	}
	if a.prefix == b.prefix {
		return a.key == b.key
	}
	return cmpKey(*a, *b) == 0
}

// sortAbove is the attribute count past which appendAttrs sorts to find
// repeated keys instead of comparing every pair.
const sortAbove = 64

// appendAttrs writes a as Sentry's attributes object, the last of equal
// keys winning. Objects are unordered: small sets keep their order (a
// sort costs more than the pairs), large ones come out sorted. inner is
// scratch for JSON-string values; the grown slice is returned.
func appendAttrs(dst []byte, a attrs, inner []byte) ([]byte, []byte) {
	sorted := len(a) > sortAbove
	if sorted {
		slices.SortStableFunc(a, cmpKey)
	}
	dst = append(dst, '{')
	first := true
	for i := range a {
		if replaced(a, i, sorted) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = appendEscaped(dst, a[i].prefix)
		dst = appendEscaped(dst, a[i].key)
		dst = append(dst, `":`...)
		dst, inner = appendAttrValue(dst, &a[i], inner)
	}
	return append(dst, '}'), inner
}

// replaced reports whether a later attribute has the key of a[i]; in a
// sorted a it is the next one.
func replaced(a attrs, i int, sorted bool) bool {
	if sorted {
		return i+1 < len(a) && eqKey(&a[i], &a[i+1])
	}
	for j := i + 1; j < len(a); j++ {
		if eqKey(&a[i], &a[j]) {
			return true
		}
	}
	return false
}

func appendAttrValue(dst []byte, a *attr, inner []byte) ([]byte, []byte) {
	switch a.kind {
	case attrString:
		dst = append(dst, `{"type":"string","value":`...)
		dst = appendString(dst, a.s)
		return append(dst, '}'), inner
	case attrBool:
		dst = append(dst, `{"type":"boolean","value":`...)
		dst = strconv.AppendBool(dst, a.b)
		return append(dst, '}'), inner
	}
	switch x := a.v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		dst = append(dst, `{"type":"string","value":`...)
		dst = appendString(dst, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		dst = append(dst, `{"type":"boolean","value":`...)
		dst = strconv.AppendBool(dst, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		dst = append(dst, `{"type":"integer","value":`...)
		dst = strconv.AppendInt(dst, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		dst = append(dst, `{"type":"double","value":`...)
		dst, _ = appendFloat(dst, x.DoubleValue) // finite: see convertible
	case *commonpb.AnyValue_BytesValue:
		dst = append(dst, `{"type":"string","value":`...)
		dst = appendString(dst, string(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		// Relay sends arrays and maps as JSON strings: Sentry's support for
		// array attributes is not ready (relay-otel otel_value_to_attribute).
		inner = append(inner[:0], '[')
		n := len(inner)
		for _, v := range x.ArrayValue.GetValues() {
			m := len(inner)
			if m > n {
				inner = append(inner, ',')
			}
			var ok bool
			if inner, ok = appendScalar(inner, v); !ok {
				inner = inner[:m]
			}
		}
		inner = append(inner, ']')
		dst = append(dst, `{"type":"string","value":"`...)
		dst = appendEscapedJSON(dst, inner)
		dst = append(dst, '"')
	case *commonpb.AnyValue_KvlistValue:
		inner = append(inner[:0], '{')
		n := len(inner)
		for _, kv := range x.KvlistValue.GetValues() {
			m := len(inner)
			if m > n {
				inner = append(inner, ',')
			}
			inner = appendString(inner, kv.GetKey())
			inner = append(inner, ':')
			var ok bool
			if inner, ok = appendScalar(inner, kv.GetValue()); !ok {
				inner = inner[:m]
			}
		}
		inner = append(inner, '}')
		dst = append(dst, `{"type":"string","value":"`...)
		dst = appendEscapedJSON(dst, inner)
		dst = append(dst, '"')
	}
	return append(dst, '}'), inner
}

// appendScalar appends a scalar value as plain JSON; nested arrays and maps,
// non-finite doubles and non-UTF-8 bytes are left out (ok false).
func appendScalar(dst []byte, v *commonpb.AnyValue) ([]byte, bool) {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return appendString(dst, x.StringValue), true
	case *commonpb.AnyValue_BoolValue:
		return strconv.AppendBool(dst, x.BoolValue), true
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(dst, x.IntValue, 10), true
	case *commonpb.AnyValue_DoubleValue:
		return appendFloat(dst, x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		if !utf8.Valid(x.BytesValue) {
			return dst, false
		}
		return appendString(dst, string(x.BytesValue)), true
	}
	return dst, false
}

// appendEscapedJSON appends JSON text (valid UTF-8, control characters
// already escaped) as the inside of a JSON string.
func appendEscapedJSON(dst, js []byte) []byte {
	start := 0
	for i, c := range js {
		if c == '"' || c == '\\' {
			dst = append(dst, js[start:i]...)
			dst = append(dst, '\\', c)
			start = i + 1
		}
	}
	return append(dst, js[start:]...)
}
