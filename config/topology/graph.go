package topology

import (
	"fmt"
	"slices"
	"strings"

	"github.com/baton-relay/baton/config"
)

// Graph formats.
const (
	FormatMermaid = "mermaid"
	FormatDOT     = "dot"
)

// edge is one arrow: a group's routes to one destination, labelled with
// the route keys (classes, "default" for the rest).
type edge struct {
	from, to string
	classes  []string
}

// sinkID names a destination node of the graph.
func sinkID(r Route) (id, label string) {
	switch {
	case r.Pool != "":
		return id2(r.Pool), ""
	case r.External != "":
		return "ext_" + id2(r.External), r.External
	}
	return "kafka_" + id2(r.Kafka+"_"+r.Topic), "kafka " + r.Kafka + ": " + r.Topic
}

func id2(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// configEdges are the arrows from managed groups to where they fetch
// project configs, when no route of theirs already goes there.
func (t *Topology) configEdges(sinks map[string]string) []edge {
	var out []edge
	for _, name := range sortedKeys(t.Groups) {
		src, _, ok := t.configSource(name)
		if t.Groups[name].Mode != "managed" || !ok {
			continue
		}
		id, label := sinkID(Route{Pool: src.Pool, External: src.External})
		if slices.ContainsFunc(sortedKeys(t.Groups[name].Routes), func(k string) bool {
			r := t.Groups[name].Routes[k]
			return r.Pool == src.Pool && r.External == src.External
		}) {
			continue
		}
		if label != "" {
			sinks[id] = label
		}
		out = append(out, edge{from: id2(name), to: id, classes: []string{"project configs"}})
	}
	return out
}

// edges returns the arrows in a stable order, and the sinks by id.
func (t *Topology) edges() ([]edge, map[string]string) {
	var out []edge
	sinks := map[string]string{}
	for _, name := range sortedKeys(t.Groups) {
		g := t.Groups[name]
		byTo := map[string]*edge{}
		var order []string
		keys := sortedKeys(g.Routes)
		if i := slices.Index(keys, config.DefaultRoute); i >= 0 {
			keys = append(slices.Delete(keys, i, i+1), config.DefaultRoute) // "other classes" last
		}
		for _, key := range keys {
			id, label := sinkID(g.Routes[key])
			if label != "" {
				sinks[id] = label
			}
			e, ok := byTo[id]
			if !ok {
				e = &edge{from: id2(name), to: id}
				byTo[id] = e
				order = append(order, id)
			}
			if key == config.DefaultRoute {
				key = "other classes"
				if len(keys) == 1 {
					key = "all classes"
				}
			}
			e.classes = append(e.classes, key)
		}
		for _, id := range order {
			out = append(out, *byTo[id])
		}
	}
	return out, sinks
}

// groupLabel is "name<br/>tier, N nodes", with the mode when it is not
// proxy: who serves project configs and who trusts whom hangs on it.
func (t *Topology) groupLabel(name string) string {
	n := len(t.Nodes(name))
	s := "s"
	if n == 1 {
		s = ""
	}
	mode := ""
	if m := t.Groups[name].Mode; m != "proxy" {
		mode = m + ", "
	}
	return fmt.Sprintf("%s<br/>%s, %s%d node%s", name, t.Groups[name].Tier, mode, n, s)
}

// Graph draws the fleet in format (FormatMermaid or FormatDOT): groups
// boxed by region, sinks, one arrow per group and destination labelled
// with the classes it carries, and a dashed one to where a managed group
// fetches project configs when no route goes there.
func (t *Topology) Graph(format string) (string, error) {
	edges, sinks := t.edges()
	configs := t.configEdges(sinks)
	regions := sortedKeys(t.Regions)
	var b strings.Builder
	switch format {
	case FormatMermaid:
		b.WriteString("flowchart LR\n")
		for _, r := range regions {
			fmt.Fprintf(&b, "  subgraph %s[\"region %s\"]\n", "region_"+id2(r), r)
			for _, g := range sortedKeys(t.Groups) {
				if t.Groups[g].Region == r {
					fmt.Fprintf(&b, "    %s[\"%s\"]\n", id2(g), t.groupLabel(g))
				}
			}
			b.WriteString("  end\n")
		}
		for _, g := range sortedKeys(t.Groups) {
			if !slices.Contains(regions, t.Groups[g].Region) {
				fmt.Fprintf(&b, "  %s[\"%s\"]\n", id2(g), t.groupLabel(g))
			}
		}
		for _, id := range sortedKeys(sinks) {
			fmt.Fprintf(&b, "  %s[(\"%s\")]\n", id, sinks[id])
		}
		for _, e := range edges {
			fmt.Fprintf(&b, "  %s -- \"%s\" --> %s\n", e.from, strings.Join(e.classes, ", "), e.to)
		}
		for _, e := range configs {
			fmt.Fprintf(&b, "  %s -. %s .-> %s\n", e.from, strings.Join(e.classes, ", "), e.to)
		}
	case FormatDOT:
		b.WriteString("digraph fleet {\n  rankdir=LR;\n  node [shape=box];\n")
		for _, r := range regions {
			fmt.Fprintf(&b, "  subgraph cluster_%s {\n    label=\"region %s\";\n", id2(r), r)
			for _, g := range sortedKeys(t.Groups) {
				if t.Groups[g].Region == r {
					fmt.Fprintf(&b, "    %s [label=\"%s\"];\n", id2(g), strings.ReplaceAll(t.groupLabel(g), "<br/>", "\\n"))
				}
			}
			b.WriteString("  }\n")
		}
		for _, g := range sortedKeys(t.Groups) {
			if !slices.Contains(regions, t.Groups[g].Region) {
				fmt.Fprintf(&b, "  %s [label=\"%s\"];\n", id2(g), strings.ReplaceAll(t.groupLabel(g), "<br/>", "\\n"))
			}
		}
		for _, id := range sortedKeys(sinks) {
			fmt.Fprintf(&b, "  %s [label=\"%s\", shape=cylinder];\n", id, sinks[id])
		}
		for _, e := range edges {
			fmt.Fprintf(&b, "  %s -> %s [label=\"%s\"];\n", e.from, e.to, strings.Join(e.classes, ", "))
		}
		for _, e := range configs {
			fmt.Fprintf(&b, "  %s -> %s [label=\"%s\", style=dashed];\n", e.from, e.to, strings.Join(e.classes, ", "))
		}
		b.WriteString("}\n")
	default:
		return "", fmt.Errorf("topology: unknown graph format %q: want %s or %s", format, FormatMermaid, FormatDOT)
	}
	return b.String(), nil
}
