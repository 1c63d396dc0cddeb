package normalize

import (
	"bytes"
	"regexp"
	"strconv"

	"github.com/baton-relay/baton/relay/event"
)

// contexts gives every context object without a type (a non-empty string)
// its key as type, as Relay's Contexts do when they are read; a contexts
// member that is not an object is removed. Then the known contexts are
// normalized by type as Relay's normalize_context does: runtime and os
// names and versions parsed from raw_description (only when the SDK sent
// neither), their computed "runtime" / "os" / "browser" fields, the
// device name of a known Android model (android.go), and the trace
// context's status (traceContext).
func (e *norm) contexts() {
	c := e.ev.Get("contexts")
	switch c.Kind() {
	case event.Null:
		return
	case event.Object:
	default:
		e.invalid("contexts", c, "expected an object")
		return
	}
	for i := range c.Len() {
		v := c.Index(i)
		if v.Kind() != event.Object {
			continue
		}
		ty := v.Get("type")
		if ty.Kind() != event.String || len(ty.Bytes()) == 0 {
			ty = e.t.NewStringBytes(c.Key(i))
			e.t.Set(v, "type", ty)
		}
		switch {
		case ty.Is("runtime"):
			e.runtimeContext(v)
		case ty.Is("os"):
			e.osContext(v)
		case ty.Is("browser"):
			e.computed(v, "browser")
		case ty.Is("response"):
			e.responseContext(v, c.Key(i))
		case ty.Is("device"):
			e.deviceContext(v) // android.go
		}
	}
}

// Relay's raw_description patterns (normalize/contexts.rs).
var (
	osWindows1    = regexp.MustCompile(`^(Microsoft\s+)?Windows\s+(NT\s+)?(?P<version>\d+\.\d+\.(?P<build_number>\d+)).*$`)
	osWindows2    = regexp.MustCompile(`^Windows\s+\d+\s+\((?P<version>\d+\.\d+\.(?P<build_number>\d+)).*$`)
	osAndroid     = regexp.MustCompile(`^Android (OS )?(?P<version>\d+(\.\d+){0,2}) / API-(?P<api>(\d+))`)
	osMacOS       = regexp.MustCompile(`^Mac OS X (?P<version>\d+\.\d+\.\d+)( \((?P<build>[a-fA-F0-9]+)\))?$`)
	osIOS         = regexp.MustCompile(`^iOS (?P<version>\d+\.\d+(\.\d+)?)`)
	osIPadOS      = regexp.MustCompile(`^iPadOS (?P<version>\d+\.\d+(\.\d+)?)`)
	osLinuxDist   = regexp.MustCompile(`^Linux (?P<kernel_version>\d+\.\d+(\.\d+(\.[1-9]+)?)?) (?P<name>[a-zA-Z]+) (?P<version>\d+(\.\d+){0,2})`)
	osUname       = regexp.MustCompile(`^(?P<name>[a-zA-Z]+) (?P<kernel_version>\d+\.\d+(\.\d+(\.[1-9]+)?)?)`)
	runtimeDotnet = regexp.MustCompile(`^(?P<name>.*) (?P<version>\d+\.\d+(\.\d+){0,2}).*$`)
)

// dotnetReleases maps the .NET Framework release keys SDKs send as build
// to the framework version (Relay's table).
var dotnetReleases = map[string]string{
	"378389": "4.5", "378675": "4.5.1", "378758": "4.5.1", "379893": "4.5.2",
	"393295": "4.6", "393297": "4.6", "394254": "4.6.1", "394271": "4.6.1",
	"394802": "4.6.2", "394806": "4.6.2", "460798": "4.7", "460805": "4.7",
	"461308": "4.7.1", "461310": "4.7.1", "461808": "4.7.2", "461814": "4.7.2",
	"528040": "4.8", "528049": "4.8", "528209": "4.8", "528372": "4.8", "528449": "4.8",
}

// group is the named group of re's match m in s, nil when it did not
// take part.
func group(re *regexp.Regexp, m []int, s []byte, name string) []byte {
	g := re.SubexpIndex(name)
	if m == nil || m[2*g] < 0 {
		return nil
	}
	return s[m[2*g]:m[2*g+1]]
}

func (e *norm) setStr(o *event.Node, key string, v []byte) {
	if v != nil {
		e.t.Set(o, key, e.t.NewString(string(v)))
	}
}

// runtimeContext is Relay's normalize_runtime_context.
func (e *norm) runtimeContext(rt *event.Node) {
	if emptyStr(rt.Get("name")) && emptyStr(rt.Get("version")) {
		if d := rt.Get("raw_description"); d.Kind() == event.String {
			s := d.Bytes()
			if m := runtimeDotnet.FindSubmatchIndex(s); m != nil {
				e.setStr(rt, "name", group(runtimeDotnet, m, s, "name"))
				e.setStr(rt, "version", group(runtimeDotnet, m, s, "version"))
			}
		}
	}
	if name := rt.Get("name").Bytes(); bytes.HasPrefix(name, []byte(".NET Framework")) {
		if b, ok := rt.Get("build").Lenient(); ok {
			if v, ok := dotnetReleases[string(b)]; ok && !rt.Get("version").Is(v) {
				e.t.Set(rt, "version", e.t.NewString(v))
			}
		}
	}
	if rt.Get("runtime").IsNull() {
		name, version := rt.Get("name"), rt.Get("version")
		if name.Kind() == event.String && version.Kind() == event.String {
			e.t.Set(rt, "runtime", e.t.NewString(string(name.Bytes())+" "+string(version.Bytes())))
		}
	}
}

// emptyStr is Relay's is_empty for an optional string: absent, null or "".
func emptyStr(v *event.Node) bool {
	return v.IsNull() || v.Kind() == event.String && len(v.Bytes()) == 0
}

// osContext is Relay's normalize_os_context: name, version, build and
// kernel_version from raw_description when the SDK sent neither name nor
// version, then the computed "os".
func (e *norm) osContext(os *event.Node) {
	d := os.Get("raw_description")
	if !os.Get("name").IsNull() || !os.Get("version").IsNull() || d.Kind() != event.String {
		e.computed(os, "os")
		return
	}
	s := d.Bytes()
	if version, build, ok := windowsVersion(s); ok {
		e.setStr(os, "name", []byte("Windows"))
		e.setStr(os, "version", version)
		if os.Get("build").IsNull() {
			e.setStr(os, "build", build)
		}
	} else if m := osMacOS.FindSubmatchIndex(s); m != nil {
		e.setStr(os, "name", []byte("macOS"))
		e.setStr(os, "version", group(osMacOS, m, s, "version"))
		if b := group(osMacOS, m, s, "build"); b != nil {
			e.setStr(os, "build", b)
		} else {
			e.t.Delete(os, "build")
		}
	} else if m := osIOS.FindSubmatchIndex(s); m != nil {
		e.setStr(os, "name", []byte("iOS"))
		e.setStr(os, "version", group(osIOS, m, s, "version"))
	} else if m := osIPadOS.FindSubmatchIndex(s); m != nil {
		e.setStr(os, "name", []byte("iPadOS"))
		e.setStr(os, "version", group(osIPadOS, m, s, "version"))
	} else if m := osLinuxDist.FindSubmatchIndex(s); m != nil {
		e.setStr(os, "name", group(osLinuxDist, m, s, "name"))
		e.setStr(os, "version", group(osLinuxDist, m, s, "version"))
		e.setStr(os, "kernel_version", group(osLinuxDist, m, s, "kernel_version"))
	} else if m := osUname.FindSubmatchIndex(s); m != nil {
		e.setStr(os, "name", group(osUname, m, s, "name"))
		e.setStr(os, "kernel_version", group(osUname, m, s, "kernel_version"))
	} else if m := osAndroid.FindSubmatchIndex(s); m != nil {
		e.setStr(os, "name", []byte("Android"))
		e.setStr(os, "version", group(osAndroid, m, s, "version"))
	} else if string(s) == "Nintendo Switch" {
		e.setStr(os, "name", []byte("Nintendo OS"))
	} else if name, version, ok := marketingName(s); ok {
		e.setStr(os, "name", name)
		e.setStr(os, "version", version)
	}
	e.computed(os, "os")
}

// windowsVersion is Relay's get_windows_version: the marketing version of
// a Windows build number (the raw version when unknown) and the build.
func windowsVersion(s []byte) (version, build []byte, ok bool) {
	re := osWindows1
	m := re.FindSubmatchIndex(s)
	if m == nil {
		re = osWindows2
		if m = re.FindSubmatchIndex(s); m == nil {
			return nil, nil, false
		}
	}
	full, build := group(re, m, s, "version"), group(re, m, s, "build_number")
	n, err := strconv.ParseUint(string(build), 10, 64)
	if err != nil {
		return nil, nil, false
	}
	switch {
	case n >= 2600 && n <= 3790:
		return []byte("XP"), build, true
	case n == 6002:
		return []byte("Vista"), build, true
	case n == 7601:
		return []byte("7"), build, true
	case n == 9200:
		return []byte("8"), build, true
	case n == 9600:
		return []byte("8.1"), build, true
	case n >= 10240 && n <= 19044:
		return []byte("10"), build, true
	case n >= 22000 && n <= 22999:
		return []byte("11"), build, true
	}
	return full, build, true
}

// marketingName is Relay's get_marketing_name: "<letters> <digits, dots
// and dashes>".
func marketingName(s []byte) (name, version []byte, ok bool) {
	name, version, ok = bytes.Cut(s, []byte(" "))
	if !ok {
		return nil, nil, false
	}
	name, version = bytes.TrimSpace(name), bytes.TrimSpace(version)
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return nil, nil, false
		}
	}
	for _, c := range version {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-') {
			return nil, nil, false
		}
	}
	return name, version, true
}

// computed sets the context's summary field key ("os", "browser") to
// "name version", or the name alone, when the SDK did not send it.
func (e *norm) computed(c *event.Node, key string) {
	if !c.Get(key).IsNull() {
		return
	}
	name, version := c.Get("name"), c.Get("version")
	if name.Kind() != event.String {
		return
	}
	s := string(name.Bytes())
	if version.Kind() == event.String {
		s += " " + string(version.Bytes())
	}
	e.t.Set(c, key, e.t.NewString(s))
}

// responseContext is Relay's normalize_response: headers as pairs, a JSON
// body parsed with inferred_content_type (else the Content-Type header's),
// cookies as pairs and the Set-Cookie header moved into them when it
// parses.
func (e *norm) responseContext(r *event.Node, key []byte) {
	if h := r.Get("headers"); h.Kind() == event.Object {
		e.headerPairs(r, h)
	}
	if r.Has("data") || r.Has("inferred_content_type") {
		e.contentType(r, false)
	}
	if c := r.Get("cookies"); !c.IsNull() {
		e.pairList(r, "cookies", c, parseCookies, "contexts", string(key))
	}
	if h := r.Get("headers"); h.Kind() == event.Array {
		e.cookieHeader(r, h, "set-cookie")
	}
}
