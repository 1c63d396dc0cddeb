package topology

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/baton-relay/baton/config"
)

// Files of a rendered fleet, relative to the output directory.
const (
	BaseFile     = "base.yml"
	ManifestFile = "nodes.yml"
	RegionsDir   = "regions"
	NodesDir     = "nodes"
)

// Manifest is nodes.yml: every node and the config files it runs with,
// in order (`baton run --config F1 --config F2 ...`), relative to the
// output directory.
type Manifest struct {
	Nodes []ManifestNode `yaml:"nodes"`
}

// ManifestNode is one node of the manifest.
type ManifestNode struct {
	Name    string   `yaml:"name"`
	Group   string   `yaml:"group"`
	Region  string   `yaml:"region"`
	Tier    string   `yaml:"tier"`
	URL     string   `yaml:"url"`
	Configs []string `yaml:"configs"`
}

// Files returns every rendered file by its path relative to the output
// directory. t must have passed Check.
func (t *Topology) Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	header := fmt.Sprintf("# Rendered by `baton topology render` from %s; edit that file, not this one.\n", filepath.Base(t.name))
	raw := func(r config.Raw) ([]byte, error) {
		if r.Node == nil {
			return []byte(header + "{}\n"), nil
		}
		var v any
		if err := r.Node.Decode(&v); err != nil {
			return nil, err
		}
		return marshal(header, v)
	}
	b, err := raw(t.Settings)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	files[BaseFile] = b
	for _, name := range sortedKeys(t.Regions) {
		if b, err = raw(t.Regions[name].Settings); err != nil {
			return nil, fmt.Errorf("regions.%s.settings: %w", name, err)
		}
		files[filepath.Join(RegionsDir, name+".yml")] = b
	}
	var m Manifest
	for _, n := range t.AllNodes() {
		cfg, err := t.nodeConfig(n)
		if err != nil {
			return nil, err
		}
		path := nodeFile(n)
		region := n.Region
		if region == "" {
			region = "global"
		}
		if files[path], err = marshal(header+fmt.Sprintf("# Node %s of group %s (region %s, tier %s).\n", n.Name, n.Group, region, n.Tier), cfg); err != nil {
			return nil, err
		}
		m.Nodes = append(m.Nodes, ManifestNode{Name: n.Name, Group: n.Group, Region: n.Region, Tier: n.Tier, URL: n.URL(),
			Configs: n.configs(path)})
	}
	if files[ManifestFile], err = marshal(header, m); err != nil {
		return nil, err
	}
	return files, nil
}

// nodeFile is the path of n's own config in the output directory.
func nodeFile(n Node) string { return filepath.Join(NodesDir, n.Name+".yml") }

// configs are the files node n runs with, base first.
func (n Node) configs(own string) []string {
	if n.Region == "" {
		return []string{BaseFile, own} // a global group: no region overlay
	}
	return []string{BaseFile, filepath.Join(RegionsDir, n.Region+".yml"), own}
}

func marshal(header string, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// obj is a YAML mapping under construction; yaml sorts its keys, so a
// rendered file is the same bytes for the same declaration.
type obj = map[string]any

// sub returns m[k], created if absent.
func sub(m obj, k string) obj {
	if v, ok := m[k].(obj); ok {
		return v
	}
	v := obj{}
	m[k] = v
	return v
}

func size(b config.ByteSize) string { return b.String() }

// nodeConfig is the Baton config of node n.
func (t *Topology) nodeConfig(n Node) (obj, error) {
	g := t.Groups[n.Group]
	c := obj{"mode": g.Mode}
	lhost, _, _ := net.SplitHostPort(g.Listen)
	server := sub(c, "server")
	server["listen"] = net.JoinHostPort(lhost, strconv.Itoa(n.Port))
	buffer := sub(c, "buffer")
	buffer["dir"] = nodeDir(g, n)
	if g.Resources.Buffer > 0 {
		buffer["max_bytes"] = size(g.Resources.Buffer)
	}
	if g.Resources.Memtable > 0 {
		buffer["memtable_size"] = size(g.Resources.Memtable)
	}
	if g.Resources.Inflight > 0 {
		server["max_inflight_bytes"] = size(g.Resources.Inflight)
	}
	if g.Resources.Memory > 0 {
		sub(c, "runtime")["memory_limit"] = size(g.Resources.Memory)
	}
	routes := sub(c, "routes")
	upstreams := obj{}
	clusters := obj{}
	for _, key := range sortedKeys(g.Routes) {
		r := g.Routes[key]
		out := obj{}
		switch {
		case r.Pool != "" || r.External != "":
			u := Upstream{r.Pool, r.External}
			upstreams[r.Pool+r.External] = obj{"urls": t.upstreamURLs(u)}
			out["upstream"] = r.Pool + r.External
		default:
			clusters[r.Kafka] = t.kafkaCluster(r.Kafka)
			out["kafka"], out["topic"] = r.Kafka, r.Topic
		}
		switch r.Steer {
		case "metric_key":
			// Buckets are split by metric key into partitions, each sent
			// as one request (upstream) or keyed record (Kafka).
			sub(c, "metrics")["flush_partitions"] = g.Partitions
		case "trace":
			out["steer"] = "trace"
		}
		if r.WhenFull != "" {
			out["when_full"] = r.WhenFull
		}
		routes[key] = out
	}
	if _, ok := g.Routes[config.DefaultRoute]; !ok {
		routes[config.DefaultRoute] = nil // drop the embedded default's route
	}
	if g.Mode == "managed" {
		src, _, _ := t.configSource(n.Group)
		if _, ok := upstreams[src.Pool+src.External]; !ok {
			upstreams[src.Pool+src.External] = obj{"urls": t.upstreamURLs(src)}
		}
		m := sub(c, "managed")
		m["upstream"] = src.Pool + src.External
		if id := g.Identity; id.SecretKey != "" {
			m["relay_id"], m["public_key"], m["secret_key"] = id.RelayID, id.PublicKey, id.SecretKey
		} else if id.CredentialsFile != "" {
			m["credentials"] = id.CredentialsFile
		}
	}
	if len(upstreams) > 0 {
		c["upstreams"] = upstreams
	}
	if len(clusters) > 0 {
		sub(c, "kafka")["clusters"] = clusters
	}
	if len(g.Trust) > 0 {
		relays := obj{}
		for _, d := range g.Trust {
			id := t.Groups[d].Identity
			relays[id.RelayID] = obj{"public_key": id.PublicKey, "internal": true}
		}
		sub(c, "auth")["static_relays"] = relays
	}
	if g.Redis != "" {
		c["redis"] = t.redisSection(g.Redis)
	}
	if g.Settings.Node != nil {
		var extra obj
		if err := g.Settings.Node.Decode(&extra); err != nil {
			return nil, fmt.Errorf("groups.%s.settings: %w", n.Group, err)
		}
		merge(c, extra)
	}
	return c, nil
}

// upstreamURLs are the URLs of a pool's nodes or of an external upstream.
func (t *Topology) upstreamURLs(u Upstream) []string {
	if u.External != "" {
		return t.External[u.External].URLs
	}
	var urls []string
	for _, n := range t.Nodes(u.Pool) {
		urls = append(urls, n.URL())
	}
	return urls
}

// merge lays src over dst: mappings merge key by key, anything else
// replaces.
func merge(dst, src obj) {
	for k, v := range src {
		if sv, ok := v.(obj); ok {
			if dv, ok := dst[k].(obj); ok {
				merge(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

func (t *Topology) kafkaCluster(name string) obj {
	k := t.Kafka[name]
	c := obj{"brokers": k.Brokers}
	if k.SASL.Mechanism != "" {
		c["sasl"] = obj{"mechanism": k.SASL.Mechanism, "username": k.SASL.Username, "password": k.SASL.Password}
	}
	if k.TLS {
		c["tls"] = obj{"enabled": true}
	}
	if k.CreateTopics {
		c["create_topics"] = obj{"enabled": true}
	}
	return c
}

// Render writes the rendered files under dir, creating directories, and
// rewrites only the files whose content changed (deploy tools diff them);
// the configs of nodes and regions no longer declared are removed. It
// returns the paths written and removed, relative to dir.
func (t *Topology) Render(dir string) (written, removed []string, err error) {
	files, err := t.Files()
	if err != nil {
		return nil, nil, err
	}
	return write(dir, files, []string{NodesDir, RegionsDir})
}

// write writes files under dir, skipping those whose content is already
// there, and removes the .yml files of subs that are not in files.
func write(dir string, files map[string][]byte, subs []string) (written, removed []string, err error) {
	for _, sub := range subs {
		old, _ := filepath.Glob(filepath.Join(dir, sub, "*.yml"))
		for _, path := range old {
			rel := filepath.Join(sub, filepath.Base(path))
			if _, ok := files[rel]; ok {
				continue
			}
			if err := os.Remove(path); err != nil {
				return nil, removed, err
			}
			removed = append(removed, rel)
		}
	}
	for _, rel := range sortedKeys(files) {
		path := filepath.Join(dir, rel)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, files[rel]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, removed, err
		}
		if err := writeFile(path, files[rel]); err != nil {
			return written, removed, err
		}
		written = append(written, rel)
	}
	return written, removed, nil
}

// writeFile replaces path atomically, so a deploy tool never reads half a
// config.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}
