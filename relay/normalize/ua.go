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
		v := map[string]any{"type": "browser", "name": b.Family}
		display := b.Family
		if ver := version(b.Major, b.Minor, b.Patch); ver != "" {
			v["version"] = ver
			display += " " + ver
		}
		v["browser"] = display
		add("browser", v)
	}
	if o := c.Os; o != nil && o.Family != "Other" && need("client_os") {
		v := map[string]any{"type": "os", "name": o.Family}
		display := o.Family
		ver := version(o.Major, o.Minor, o.Patch)
		// "Windows NT 10.0" is also what Windows 11 sends: Relay reports ">=10".
		if o.Family == "Windows" && ver == "10" {
			ver = ">=10"
		}
		if ver != "" {
			v["version"] = ver
			display += " " + ver
		}
		v["os"] = display
		add("client_os", v)
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
