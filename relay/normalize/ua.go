package normalize

import (
	"strings"

	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/useragent"
)

// userAgentContexts adds browser, client_os and device contexts parsed from
// the event's User-Agent header, each only when the event has none (Relay's
// user-agent normalization). Rules are uap-core's, through the process's
// one parser (relay/useragent), built on first use.
func (n *Normalizer) userAgentContexts(e *norm) {
	t, ev := e.t, e.ev
	ua := e.header("User-Agent")
	if len(ua) == 0 {
		return
	}
	ctx := ev.Get("contexts")
	if !ctx.IsNull() && ctx.Kind() != event.Object {
		return // invalid contexts: leave them to Sentry
	}
	need := func(k string) bool { return !ctx.Has(k) }
	if !need("browser") && !need("client_os") && !need("device") {
		return
	}
	c, err := useragent.Parse(string(ua))
	if err != nil {
		return // the embedded rules did not compile: no contexts, as for an unknown agent
	}
	add := func(k string, v *event.Node) {
		if ctx.Kind() != event.Object {
			ctx = t.NewObject()
			t.Set(ev, "contexts", ctx)
		}
		t.Set(ctx, k, v)
	}
	if b := c.Browser; b != nil && b.Family != "Other" && need("browser") {
		add("browser", e.nameVersion("browser", b.Family, version(b.Major, b.Minor, b.Patch)))
	}
	if o := c.OS; o != nil && o.Family != "Other" && need("client_os") {
		ver := version(o.Major, o.Minor, o.Patch)
		// "Windows NT 10.0" is also what Windows 11 sends: Relay reports ">=10".
		if o.Family == "Windows" && ver == "10" {
			ver = ">=10"
		}
		add("client_os", e.nameVersion("os", o.Family, ver))
	}
	if d := c.Device; d != nil && d.Family != "Other" && need("device") {
		v := t.NewObject()
		if d.Brand != "" {
			t.Set(v, "brand", t.NewString(d.Brand))
		}
		t.Set(v, "family", t.NewString(d.Family))
		if d.Model != "" {
			t.Set(v, "model", t.NewString(d.Model))
		}
		t.Set(v, "type", t.NewString("device"))
		add("device", v)
	}
}

// nameVersion is a browser or os context: its name, version and both
// together under the key of its type (keys in sorted order).
func (e *norm) nameVersion(typ, name, ver string) *event.Node {
	t := e.t
	v := t.NewObject()
	display := name
	if ver != "" {
		display += " " + ver
	}
	if typ == "browser" {
		t.Set(v, typ, t.NewString(display))
	}
	t.Set(v, "name", t.NewString(name))
	if typ != "browser" {
		t.Set(v, typ, t.NewString(display))
	}
	t.Set(v, "type", t.NewString(typ))
	if ver != "" {
		t.Set(v, "version", t.NewString(ver))
	}
	return v
}

func version(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p == "" {
			break
		}
		out = append(out, p)
	}
	return strings.Join(out, ".")
}
