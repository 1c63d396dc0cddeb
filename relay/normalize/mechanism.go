package normalize

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/baton-relay/baton/relay/event"
)

// exceptions checks each exception as Relay does: one with neither type
// nor value is removed with a missing_attribute error, and its mechanism
// is normalized (normalizeMechanism).
func (e *norm) exceptions() {
	l := e.values("exception")
	if l == nil {
		return
	}
	hint := osHint(0)
	hinted := false
	for i := range l.Len() {
		x := l.Index(i)
		if x.Kind() != event.Object {
			continue
		}
		if emptyStr(x.Get("type")) && emptyLenient(x.Get("value")) {
			e.missingTypeValue(l, i, x)
			continue
		}
		if m := x.Get("mechanism"); !m.IsNull() {
			if !hinted {
				hint, hinted = e.osHint(), true
			}
			e.mechanism(x, m, hint, i)
		}
	}
}

func emptyLenient(v *event.Node) bool {
	b, ok := v.Lenient()
	return !ok || len(b) == 0
}

// missingTypeValue replaces exception i of l with null, the original and a
// missing_attribute error in _meta.
func (e *norm) missingTypeValue(l *event.Node, i int, x *event.Node) {
	t := e.t
	null := t.NewNull()
	t.SetIndex(l, i, null)
	data := t.NewObject()
	t.Set(data, "attribute", t.NewString("type or value"))
	m := t.MetaOf(null)
	m.Errors = append(m.Errors, event.MetaError{Kind: "missing_attribute", Data: data})
	m.Val = x
}

// osHint is Relay's OsHint::from_event: the system SDK of debug_meta, else
// the name of the os context.
func (e *norm) osHint() osHint {
	name := e.ev.Get("debug_meta").Get("system_sdk").Get("sdk_name")
	if name.Kind() != event.String {
		name = e.ev.Get("contexts").Get("os").Get("name")
	}
	switch strings.ToLower(string(name.Bytes())) {
	case "ios", "watchos", "tvos", "macos":
		return osDarwin
	case "linux", "android":
		return osLinux
	case "windows":
		return osWindows
	}
	return osNone
}

// mechanism converts a legacy mechanism (no type: posix_signal and
// mach_exception become meta, the rest data, type "generic"), removes an
// empty one, checks help_link and fills the names of errno, signal, signal
// code and Mach exception numbers (Relay's normalize_mechanism).
func (e *norm) mechanism(x, m *event.Node, hint osHint, i int) {
	t := e.t
	switch {
	case m.Kind() != event.Object:
		t.Delete(x, "mechanism")
		e.invalidAt(m, "expected exception mechanism", "exception", "values", strconv.Itoa(i), "mechanism")
		return
	case m.Len() == 0:
		t.Delete(x, "mechanism")
		return
	case !m.Has("type"):
		m = e.legacyMechanism(m)
		t.Set(x, "mechanism", m)
	}
	if hl := m.Get("help_link"); !hl.IsNull() {
		b := hl.Bytes()
		if hl.Kind() != event.String || !bytes.HasPrefix(b, []byte("http://")) && !bytes.HasPrefix(b, []byte("https://")) {
			t.Delete(m, "help_link")
			e.invalidAt(hl, "expected http URL", "exception", "values", strconv.Itoa(i), "mechanism", "help_link")
		}
	}
	meta := m.Get("meta")
	if meta.Kind() != event.Object {
		return
	}
	if hint != osNone {
		if c := meta.Get("errno"); c.Get("name").IsNull() {
			if n, ok := c.Get("number").Int(); ok {
				if name, ok := errnoNames[hint].name(n); ok {
					t.Set(c, "name", t.NewString(name))
				}
			}
		}
		sig := meta.Get("signal")
		if n, ok := sig.Get("number").Int(); ok {
			if sig.Get("name").IsNull() && signalNames[hint] != nil {
				if name, ok := signalNames[hint].name(n); ok {
					t.Set(sig, "name", t.NewString(name))
				}
			}
			if code, ok := sig.Get("code").Int(); ok && hint == osDarwin && sig.Get("code_name").IsNull() {
				if name, ok := darwinSignalCodes[strconv.FormatInt(n, 10)+":"+strconv.FormatInt(code, 10)]; ok {
					t.Set(sig, "code_name", t.NewString(name))
				}
			}
		}
	}
	if mx := meta.Get("mach_exception"); mx.Get("name").IsNull() {
		if n, ok := mx.Get("exception").Int(); ok {
			if name, ok := machExceptions.name(n); ok {
				t.Set(mx, "name", t.NewString(name))
			}
		}
	}
}

// legacyMechanism is Relay's conversion of the mechanism format without a
// type.
func (e *norm) legacyMechanism(old *event.Node) *event.Node {
	t := e.t
	m := t.NewObject()
	t.Set(m, "type", t.NewString("generic"))
	data, meta := t.NewObject(), t.NewObject()
	for j := range old.Len() {
		k, v := old.Key(j), old.Index(j)
		switch string(k) {
		case "posix_signal":
			if v.Kind() == event.Object {
				sig := t.NewObject()
				for _, f := range [][2]string{{"signal", "number"}, {"code", "code"}, {"name", "name"}, {"code_name", "code_name"}} {
					if fv := v.Get(f[0]); fv != nil {
						t.Set(sig, f[1], fv)
					}
				}
				t.Set(meta, "signal", sig)
			}
		case "mach_exception":
			if v.Kind() == event.Object {
				mx := t.NewObject()
				for _, f := range [][2]string{{"exception", "exception"}, {"code", "code"}, {"subcode", "subcode"}, {"exception_name", "name"}} {
					if fv := v.Get(f[0]); fv != nil {
						t.Set(mx, f[1], fv)
					}
				}
				t.Set(meta, "mach_exception", mx)
			}
		default:
			t.Set(data, string(k), v)
		}
	}
	if data.Len() > 0 {
		t.Set(m, "data", data)
	}
	if meta.Len() > 0 {
		t.Set(m, "meta", meta)
	}
	return m
}
