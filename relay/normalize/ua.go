package normalize

import "strings"

// userAgentContexts adds browser, client_os and device contexts parsed from
// the event's User-Agent header, each only when the event has none (Relay's
// user-agent normalization). Rules are uap-core's, through uap-go.
func (n *Normalizer) userAgentContexts(ev map[string]any) {
	ua := header(ev, "User-Agent")
	if ua == "" {
		return
	}
	ctx, _ := ev["contexts"].(map[string]any)
	if ev["contexts"] != nil && ctx == nil {
		return // invalid contexts: leave them to Sentry
	}
	need := func(k string) bool { _, has := ctx[k]; return !has }
	if ctx != nil && !need("browser") && !need("client_os") && !need("device") {
		return
	}
	c := n.ua.Parse(ua)
	add := func(k string, v map[string]any) {
		if ctx == nil {
			ctx = map[string]any{}
			ev["contexts"] = ctx
		}
		ctx[k] = v
	}
	if b := c.UserAgent; b != nil && b.Family != "Other" && need("browser") {
		add("browser", nameVersion("browser", b.Family, version(b.Major, b.Minor, b.Patch)))
	}
	if o := c.Os; o != nil && o.Family != "Other" && need("client_os") {
		ver := version(o.Major, o.Minor, o.Patch)
		// "Windows NT 10.0" is also what Windows 11 sends: Relay reports ">=10".
		if o.Family == "Windows" && ver == "10" {
			ver = ">=10"
		}
		add("client_os", nameVersion("os", o.Family, ver))
	}
	if d := c.Device; d != nil && d.Family != "Other" && need("device") {
		v := map[string]any{"type": "device", "family": d.Family}
		if d.Model != "" {
			v["model"] = d.Model
		}
		if d.Brand != "" {
			v["brand"] = d.Brand
		}
		add("device", v)
	}
}

// nameVersion is a browser or os context: its name, version and both
// together under the key of its type.
func nameVersion(typ, name, ver string) map[string]any {
	v := map[string]any{"type": typ, "name": name}
	display := name
	if ver != "" {
		v["version"] = ver
		display += " " + ver
	}
	v[typ] = display
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
