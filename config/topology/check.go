package topology

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
)

// checker collects problems at the lines of the values they are about.
type checker struct {
	t     *Topology
	probs config.Errors
}

// errorf reports a problem at field, or at its closest ancestor that was
// written in the file.
func (c *checker) errorf(field, format string, args ...any) {
	p := config.Problem{File: c.t.name, Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
	for f := field; f != ""; {
		if pos, ok := c.t.at[f]; ok {
			p.Line = pos.Line
			break
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	c.probs = append(c.probs, p)
}

// Check reports every mistake in t at once, as config.Errors sorted by
// line; nil when the fleet is consistent.
func (t *Topology) Check() error {
	c := &checker{t: t}
	if t.Version != Version {
		c.errorf("version", "unsupported topology version %d; this Baton reads version %d", t.Version, Version)
	}
	c.tiers()
	c.kafka()
	c.redis()
	for _, name := range sortedKeys(t.Groups) {
		c.group(name)
		c.groupRedis(name)
	}
	c.redisPools()
	c.redisTwice()
	c.trust()
	c.reach()
	c.cycles()
	c.steering()
	c.hosts()
	if len(c.probs) == 0 {
		c.rendered() // only a consistent fleet renders
	}
	if len(c.probs) == 0 {
		return nil
	}
	sortProblems(c.probs)
	return c.probs
}

func (c *checker) tiers() {
	for _, r := range sortedKeys(c.t.Regions) {
		if !dnsLabel.MatchString(r) {
			c.errorf("regions."+r, "region name %q: use lowercase letters, digits and inner dashes (it names regions/%s.yml)", r, r)
		}
	}
	entry := false
	for _, tr := range c.t.Tiers {
		entry = entry || tr.Entry
	}
	if !entry {
		c.errorf("tiers", "no entry tier: mark the tier SDKs send to with entry: true")
	}
}

func (c *checker) kafka() {
	for _, name := range sortedKeys(c.t.Kafka) {
		k, f := c.t.Kafka[name], "kafka."+name
		if len(k.Brokers) == 0 {
			c.errorf(f+".brokers", "no brokers")
		}
		if k.SASL.Mechanism != "" {
			c.secret(f+".sasl.password", k.SASL.Password, true)
		}
	}
	for _, name := range sortedKeys(c.t.External) {
		if len(c.t.External[name].URLs) == 0 {
			c.errorf("external."+name+".urls", "no urls")
		}
	}
}

// secret reports a secret written as a value instead of a reference.
func (c *checker) secret(field, v string, required bool) {
	switch {
	case v == "" && required:
		c.errorf(field, "required: a ${NAME} reference to the secret")
	case v != "" && !isReference(v):
		c.errorf(field, "a secret written into the topology; write a ${NAME} reference to the environment variable that holds it")
	}
}

// isReference reports whether v is exactly one ${NAME} reference.
func isReference(v string) bool {
	return strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") && strings.Count(v, "${") == 1 && len(v) > 3
}

// ownedKeys are Baton config keys the topology sets itself; settings may
// not set them, or the rendered config would contradict the declaration.
var ownedKeys = [][]string{
	{"mode"}, {"routes"}, {"upstreams"}, {"server", "listen"}, {"buffer", "dir"},
	{"kafka", "clusters"}, {"auth", "static_relays"}, {"managed", "upstream"},
	{"redis", "addresses"},
}

func (c *checker) settings(field string, raw config.Raw) {
	if raw.Node == nil {
		return
	}
	var m map[string]any
	if err := raw.Node.Decode(&m); err != nil {
		c.errorf(field, "expected a mapping of Baton config keys: %v", err)
		return
	}
	for _, path := range ownedKeys {
		var v any = m
		for _, k := range path {
			mm, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = mm[k]
		}
		if v != nil {
			c.errorf(field, "sets %s, which the topology derives; declare it in the topology instead", strings.Join(path, "."))
		}
	}
}

// dnsLabel is what a group name must be: its nodes' host names, the
// upstream names in rendered configs and Kubernetes object names derive
// from it.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$`)

func (c *checker) group(name string) {
	t, g, f := c.t, c.t.Groups[name], "groups."+name
	if !dnsLabel.MatchString(name) {
		c.errorf(f, "group name %q: use lowercase letters, digits and inner dashes, at most 52 (it names hosts and Kubernetes objects)", name)
	}
	if _, ok := t.Regions[g.Region]; !ok && g.Region != "" {
		c.errorf(f+".region", "no region named %q%s", g.Region, suggest(g.Region, sortedKeys(t.Regions)))
	}
	if _, ok := t.Tiers[g.Tier]; !ok {
		c.errorf(f+".tier", "no tier named %q%s", g.Tier, suggest(g.Tier, sortedKeys(t.Tiers)))
	}
	switch g.Mode {
	case "proxy", "static", "managed":
	default:
		c.errorf(f+".mode", "unknown mode %q: want proxy, static or managed", g.Mode)
	}
	switch {
	case g.Count > 0 && len(g.Addresses) > 0:
		c.errorf(f+".count", "set count or addresses, not both")
	case g.Count < 0:
		c.errorf(f+".count", "must be at least 1")
	case g.Count == 0 && len(g.Addresses) == 0:
		c.errorf(f, "no nodes: set count or addresses")
	}
	if _, p, err := net.SplitHostPort(g.Listen); err != nil || p == "" {
		c.errorf(f+".listen", "want host:port, e.g. \":3000\", got %q", g.Listen)
	}
	seen := map[string]int{}
	for i, a := range g.Addresses {
		if j, dup := seen[a]; dup {
			c.errorf(fmt.Sprintf("%s.addresses[%d]", f, i), "address %q is already addresses[%d]", a, j)
		}
		seen[a] = i
	}
	// A managed node signs with its secret; a group that is only trusted
	// needs its public identity.
	c.secret(f+".identity.secret_key", g.Identity.SecretKey, g.Mode == "managed" && g.Identity.CredentialsFile == "")
	if (g.Identity.RelayID == "") != (g.Identity.PublicKey == "") {
		c.errorf(f+".identity", "set relay_id and public_key together")
	}
	if g.Mode == "managed" {
		if _, _, ok := t.configSource(name); !ok {
			c.errorf(f+".routes", "managed mode fetches project configs from an upstream: set project_configs, or route default to a pool or external upstream")
		}
	} else {
		// Only a managed node signs: anything else renders no identity
		// and reads no project configs from an upstream.
		if g.Identity.SecretKey != "" {
			c.errorf(f+".identity.secret_key", "%s mode signs nothing, so the secret is rendered nowhere: drop it, or set mode: managed", g.Mode)
		}
		if g.Identity.CredentialsFile != "" {
			c.errorf(f+".identity.credentials_file", "%s mode signs nothing, so the credentials are rendered nowhere: drop them, or set mode: managed", g.Mode)
		}
		if g.ProjectConfigs != (Upstream{}) {
			c.errorf(f+".project_configs", "%s mode fetches no project configs; only managed mode does", g.Mode)
		}
	}
	if g.Mode == "proxy" && len(g.Trust) > 0 {
		c.errorf(f+".trust", "proxy mode reads no auth.static_relays, so trust admits nothing here: a managed group's relays must be trusted by the managed pool that serves it project configs")
	}
	if u := g.ProjectConfigs; u != (Upstream{}) {
		c.upstream(name, f+".project_configs", u)
	}
	c.settings(f+".settings", g.Settings)
	if len(g.Routes) == 0 {
		c.errorf(f+".routes", "no routes: every class needs a route (or a default)")
	}
	for _, cl := range sortedKeys(g.Routes) {
		c.route(name, cl, g.Routes[cl])
	}
	if _, ok := g.Routes[config.DefaultRoute]; !ok && len(g.Routes) > 0 {
		var missing []string
		for _, cl := range envelope.Classes() {
			if _, ok := g.Routes[cl.String()]; !ok {
				missing = append(missing, cl.String())
			}
		}
		if len(missing) > 0 {
			c.errorf(f+".routes", "no route for %s: add them or a default route", strings.Join(missing, ", "))
		}
	}
}

func (c *checker) route(group, class string, r Route) {
	t, f := c.t, fmt.Sprintf("groups.%s.routes.%s", group, class)
	cl, known := envelope.ParseClass(class)
	if !known && class != config.DefaultRoute {
		var names []string
		for _, k := range envelope.Classes() {
			names = append(names, k.String())
		}
		c.errorf(f, "no class named %q%s", class, suggest(class, append(names, config.DefaultRoute)))
	}
	set := 0
	for _, v := range []string{r.Pool, r.External, r.Kafka} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		c.errorf(f, "set exactly one of pool, external or kafka")
		return
	}
	switch {
	case r.Pool != "" || r.External != "":
		c.upstream(group, f, Upstream{r.Pool, r.External})
	case r.Kafka != "":
		k, ok := t.Kafka[r.Kafka]
		if !ok {
			c.errorf(f+".kafka", "no Kafka cluster named %q%s", r.Kafka, suggest(r.Kafka, sortedKeys(t.Kafka)))
		} else if len(k.Topics) > 0 {
			classes := []envelope.Class{cl}
			if !known {
				classes = c.defaultClasses(group)
			}
			var missing []string
			for _, x := range classes {
				if topic := config.ExpandTopic(r.Topic, x); !slices.Contains(k.Topics, topic) && !slices.Contains(missing, topic) {
					missing = append(missing, topic)
				}
			}
			if len(missing) > 0 {
				c.errorf(f+".topic", "topics %s are not among kafka.%s.topics", strings.Join(missing, ", "), r.Kafka)
			}
		}
	}
	switch r.Steer {
	case "project", "trace":
	case "metric_key":
		if class != envelope.ClassMetric.String() {
			c.errorf(f+".steer", "metric_key steers metric buckets only: use it on the metric route")
		}
	default:
		c.errorf(f+".steer", "unknown steering %q: want project, trace or metric_key", r.Steer)
	}
}

// upstream checks that u, which group sends to (field), names one group
// other than itself or one external upstream.
func (c *checker) upstream(group, field string, u Upstream) {
	t := c.t
	switch {
	case (u.Pool == "") == (u.External == ""):
		c.errorf(field, "set exactly one of pool or external")
	case u.Pool == group:
		c.errorf(field+".pool", "routes to its own group")
	case u.Pool != "":
		if _, ok := t.Groups[u.Pool]; !ok {
			c.errorf(field+".pool", "no group named %q%s", u.Pool, suggest(u.Pool, sortedKeys(t.Groups)))
		}
	default:
		if _, ok := t.External[u.External]; !ok {
			c.errorf(field+".external", "no external upstream named %q%s", u.External, suggest(u.External, sortedKeys(t.External)))
		}
	}
}

// defaultClasses are the classes group sends over its default route.
func (c *checker) defaultClasses(group string) []envelope.Class {
	var out []envelope.Class
	for _, cl := range envelope.Classes() {
		if _, ok := c.t.Groups[group].Routes[cl.String()]; !ok {
			out = append(out, cl)
		}
	}
	return out
}

// RouteFor returns the route group uses for class, and the routes key
// it is under.
func (t *Topology) RouteFor(group string, class envelope.Class) (Route, string, bool) {
	g := t.Groups[group]
	if r, ok := g.Routes[class.String()]; ok {
		return r, class.String(), true
	}
	r, ok := g.Routes[config.DefaultRoute]
	return r, config.DefaultRoute, ok
}

// trust checks identities and trust lists, and follows every managed
// group's project config requests to the node that answers them.
func (c *checker) trust() {
	t := c.t
	ids := map[string]string{}
	for _, name := range sortedKeys(t.Groups) {
		g := t.Groups[name]
		if id := g.Identity.RelayID; id != "" {
			if prev, dup := ids[id]; dup {
				c.errorf("groups."+name+".identity.relay_id", "relay id %s is already %s's", id, prev)
			}
			ids[id] = name
		}
		for i, d := range g.Trust {
			f := fmt.Sprintf("groups.%s.trust[%d]", name, i)
			dg, ok := t.Groups[d]
			switch {
			case !ok:
				c.errorf(f, "no group named %q%s", d, suggest(d, sortedKeys(t.Groups)))
			case dg.Mode != "managed":
				c.errorf(f, "group %s is in %s mode, which signs nothing: only managed relays identify themselves upstream", d, dg.Mode)
			case dg.Identity.RelayID == "":
				c.errorf(f, "group %s has no identity (relay_id, public_key) to trust", d)
			}
		}
	}
	for _, name := range sortedKeys(t.Groups) {
		if t.Groups[name].Mode == "managed" {
			c.configPath(name)
		}
	}
}

// configPath follows managed group name's project config requests
// (registration too) from its managed.upstream: a proxy or static pool
// serves none and passes them on, signed as they are, to the upstream
// config.Config.ForwardUpstream names (forwardsTo); a managed pool answers them when it
// trusts name (auth.static_relays); an external upstream such as Sentry
// knows relays by their registration. Problems are reported at the field
// that names the managed group's upstream.
func (c *checker) configPath(name string) {
	t := c.t
	up, field, ok := t.configSource(name)
	if !ok {
		return // reported by group
	}
	path := []string{name}
	for up.Pool != "" {
		p, exists := t.Groups[up.Pool]
		if !exists {
			return // reported by upstream
		}
		if slices.Contains(path, up.Pool) {
			c.errorf(field, "the project config requests of %s loop: %s → %s", name, strings.Join(path, " → "), up.Pool)
			return
		}
		via := ""
		if len(path) > 1 {
			via = " through " + strings.Join(path[1:], ", ")
		}
		path = append(path, up.Pool)
		switch p.Mode {
		case "managed":
			if t.Groups[name].Identity.RelayID == "" {
				c.errorf("groups."+name+".identity", "managed mode needs an identity (relay_id, public_key, secret_key) for %s to trust", up.Pool)
			} else if !slices.Contains(p.Trust, name) {
				c.errorf(field, "%s (mode managed) does not trust %s, which fetches project configs from it%s: add %s to groups.%s.trust", up.Pool, name, via, name, up.Pool)
			}
			return
		case "proxy", "static":
			next, ok := t.forwardsTo(up.Pool)
			if ok {
				up = next
				continue
			}
			why := "has no upstream to pass them on to"
			if !t.forwardUnknown(up.Pool) {
				why = "passes none on (server.forward_unknown: false)"
			}
			if p.Mode == "static" {
				c.errorf(field, "pool %s is static: a static Baton serves no project configs to managed nodes, and %s %s%s", up.Pool, up.Pool, why, via)
			} else {
				c.errorf(field, "pool %s is a proxy: it serves no project configs to managed nodes, and %s %s%s", up.Pool, up.Pool, why, via)
			}
			return
		default:
			return // reported by group
		}
	}
}

// configSource is where managed group name fetches project configs
// (managed.upstream), and the field that says so.
func (t *Topology) configSource(name string) (Upstream, string, bool) {
	g, f := t.Groups[name], "groups."+name
	if u := g.ProjectConfigs; u != (Upstream{}) {
		return u, f + ".project_configs", true
	}
	d, ok := t.Groups[name].Routes[config.DefaultRoute]
	switch {
	case ok && d.Pool != "":
		return Upstream{Pool: d.Pool}, f + ".routes.default.pool", true
	case ok && d.External != "":
		return Upstream{External: d.External}, f + ".routes.default.external", true
	}
	return Upstream{}, "", false
}

// forwardsTo is where a proxy or static group passes the /api/ requests
// it does not serve, as config.Config.ForwardUpstream picks it: the
// default route's upstream, else the only upstream its routes name;
// nowhere when server.forward_unknown is off.
func (t *Topology) forwardsTo(name string) (Upstream, bool) {
	if !t.forwardUnknown(name) {
		return Upstream{}, false
	}
	routes := t.Groups[name].Routes
	if r, ok := routes[config.DefaultRoute]; ok && (r.Pool != "" || r.External != "") {
		return Upstream{r.Pool, r.External}, true
	}
	var only Upstream
	for _, r := range routes {
		switch u := (Upstream{r.Pool, r.External}); {
		case u == Upstream{}:
		case only == Upstream{}:
			only = u
		case u != only:
			return Upstream{}, false
		}
	}
	return only, only != Upstream{}
}

// forwardUnknown is group name's server.forward_unknown, as its settings
// layers set it (base, region, group); Baton's default is on.
func (t *Topology) forwardUnknown(name string) bool {
	g := t.Groups[name]
	on := true
	for _, raw := range []config.Raw{t.Settings, t.Regions[g.Region].Settings, g.Settings} {
		var s struct {
			Server struct {
				ForwardUnknown *bool `yaml:"forward_unknown"`
			} `yaml:"server"`
		}
		if raw.Node != nil && raw.Node.Decode(&s) == nil && s.Server.ForwardUnknown != nil {
			on = *s.Server.ForwardUnknown
		}
	}
	return on
}

// reach follows every class from every group of an entry tier and
// reports each that ends nowhere (loops are cycles' to report).
func (c *checker) reach() {
	t := c.t
	type key struct{ entry, group string }
	noRoute := map[key][]string{}
	for _, name := range sortedKeys(t.Groups) {
		if !t.Tiers[t.Groups[name].Tier].Entry {
			continue
		}
		for _, cl := range envelope.Classes() {
			path := []string{name}
			for g := name; ; {
				r, _, ok := t.RouteFor(g, cl)
				if !ok {
					if g != name { // an entry group without routes is reported as such
						noRoute[key{name, g}] = append(noRoute[key{name, g}], cl.String())
					}
					break
				}
				if r.Pool == "" {
					break // Kafka or external: terminal (or reported by route)
				}
				if _, exists := t.Groups[r.Pool]; !exists {
					break // reported by route
				}
				if slices.Contains(path, r.Pool) {
					break
				}
				path = append(path, r.Pool)
				g = r.Pool
			}
		}
	}
	for k, classes := range noRoute {
		c.errorf("groups."+k.group+".routes", "classes %s from %s reach no sink: %s has no route for them", strings.Join(classes, ", "), k.entry, k.group)
	}
}

// cycles reports every loop of every class once, at the route that
// closes it. Walks start at the entry groups, so the route pointing back
// toward the entry is the one blamed, then at every other group, so a
// loop no entry reaches is found too.
func (c *checker) cycles() {
	t := c.t
	var starts, rest []string
	for _, name := range sortedKeys(t.Groups) {
		if t.Tiers[t.Groups[name].Tier].Entry {
			starts = append(starts, name)
		} else {
			rest = append(rest, name)
		}
	}
	reported := map[string]bool{} // route fields of a reported loop
	for _, start := range append(starts, rest...) {
		for _, cl := range envelope.Classes() {
			path, fields := []string{start}, []string(nil)
			for g := start; ; {
				r, k, ok := t.RouteFor(g, cl)
				if !ok || r.Pool == "" {
					break
				}
				if _, exists := t.Groups[r.Pool]; !exists {
					break // reported by route
				}
				fields = append(fields, fmt.Sprintf("groups.%s.routes.%s.pool", g, k))
				i := slices.Index(path, r.Pool)
				if i < 0 {
					path = append(path, r.Pool)
					g = r.Pool
					continue
				}
				loop := fields[i:]
				if !slices.ContainsFunc(loop, func(f string) bool { return reported[f] }) {
					c.errorf(loop[len(loop)-1], "class %s loops: %s → %s", cl, strings.Join(path[i:], " → "), r.Pool)
				}
				for _, f := range loop {
					reported[f] = true
				}
				break
			}
		}
	}
}

// steering checks that every group sending a class to one pool steers it
// the same way, so the pool's nodes see one key per project, trace or
// metric whichever sender it came through.
func (c *checker) steering() {
	t := c.t
	type key struct {
		pool  string
		class envelope.Class
	}
	first := map[key]string{}
	firstAt := map[key]string{}
	for _, name := range sortedKeys(t.Groups) {
		for _, cl := range envelope.Classes() {
			r, k, ok := t.RouteFor(name, cl)
			if !ok || r.Pool == "" {
				continue
			}
			steer := r.Steer
			if steer == "metric_key" {
				steer = fmt.Sprintf("metric_key over %d partitions", t.Groups[name].Partitions)
			}
			kk := key{r.Pool, cl}
			prev, seen := first[kk]
			if !seen {
				first[kk], firstAt[kk] = steer, name
				continue
			}
			if prev != steer {
				c.errorf(fmt.Sprintf("groups.%s.routes.%s.steer", name, k), "class %s reaches pool %s steered by %s, but %s steers it by %s: every sender to a pool must steer alike",
					cl, r.Pool, steer, firstAt[kk], prev)
			}
		}
	}
}

// hosts checks that nodes sharing a host use distinct ports and data
// directories and fit its disk and memory.
func (c *checker) hosts() {
	t := c.t
	type use struct {
		node  string
		field string
	}
	ports := map[string]use{}
	dirs := map[string]use{}
	disk := map[string]config.ByteSize{}
	mem := map[string]config.ByteSize{}
	for _, n := range t.AllNodes() {
		g := t.Groups[n.Group]
		f := "groups." + n.Group
		addrField := f + ".listen"
		if len(g.Addresses) > 0 {
			addrField = fmt.Sprintf("%s.addresses[%d]", f, nodeIndex(n))
		}
		hp := net.JoinHostPort(n.Host, fmt.Sprint(n.Port))
		if prev, dup := ports[hp]; dup && prev.node != n.Name {
			c.errorf(addrField, "node %s listens on %s, as %s does", n.Name, hp, prev.node)
		} else {
			ports[hp] = use{n.Name, addrField}
		}
		dir := n.Host + ":" + nodeDir(g, n)
		if prev, dup := dirs[dir]; dup {
			c.errorf(f+".data_dir", "node %s keeps its buffer in %s on %s, as %s does", n.Name, nodeDir(g, n), n.Host, prev.node)
		} else {
			dirs[dir] = use{n.Name, f + ".data_dir"}
		}
		disk[n.Host] += g.Resources.Buffer
		mem[n.Host] += g.Resources.Memory
	}
	for _, h := range sortedKeys(t.Hosts) {
		cap := t.Hosts[h]
		if cap.Disk > 0 && disk[h] > cap.Disk {
			c.errorf("hosts."+h+".disk", "the buffers of the nodes on %s add up to %s, more than its disk %s", h, disk[h], cap.Disk)
		}
		if cap.Memory > 0 && mem[h] > cap.Memory {
			c.errorf("hosts."+h+".memory", "the memory limits of the nodes on %s add up to %s, more than its %s", h, mem[h], cap.Memory)
		}
	}
}

func nodeIndex(n Node) int {
	i := strings.LastIndexByte(n.Name, '-')
	var x int
	fmt.Sscan(n.Name[i+1:], &x)
	return x
}

// nodeDir is the buffer directory of n.
func nodeDir(g Group, n Node) string {
	return strings.ReplaceAll(g.DataDir, NodePlaceholder, n.Name)
}

// suggest returns ` (did you mean "x"?)` for the closest names, or "", as
// Baton's config errors do.
func suggest(name string, names []string) string {
	return config.DidYouMean(name, names)
}

// rendered loads every node's rendered files as Baton would and reports
// what Baton's own validation finds (a settings key Baton does not know,
// a budget below the buffer's reserve), at the topology field the file
// comes from. ${NAME} references are not expanded here: they are the
// nodes' environment.
func (c *checker) rendered() {
	t := c.t
	files, err := t.Files()
	if err != nil {
		c.errorf("", "cannot render: %v", err)
		return
	}
	seen := map[string]bool{}
	for _, n := range t.AllNodes() {
		var srcs []config.File
		for _, f := range n.configs(nodeFile(n)) {
			srcs = append(srcs, config.File{Name: f, Data: files[f]})
		}
		_, err := config.ParseFiles(srcs...)
		var errs config.Errors
		if !errors.As(err, &errs) {
			continue
		}
		for _, p := range errs {
			if errors.Is(p, config.ErrEnv) {
				continue
			}
			field := "groups." + n.Group
			if t.Groups[n.Group].Settings.Node != nil {
				field += ".settings"
			}
			switch {
			case p.File == BaseFile:
				field = "settings"
			case strings.HasPrefix(p.File, RegionsDir+"/"):
				field = "regions." + n.Region + ".settings"
			}
			// Nodes of one group differ only in name, address and
			// directory: one problem is reported once for the group.
			msg := p.String()
			if key := field + "\x00" + strings.ReplaceAll(msg, n.Name, ""); !seen[key] {
				seen[key] = true
				c.errorf(field, "the rendered config of node %s is invalid: %s", n.Name, msg)
			}
		}
	}
}
