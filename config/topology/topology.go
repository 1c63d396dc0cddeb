package topology

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/baton-relay/baton/config"
)

// Version is the topology format version this package reads.
const Version = 1

// NodePlaceholder in a group's data_dir is the node's name.
const NodePlaceholder = "{node}"

// Defaults of node groups.
const (
	DefaultListen  = ":3000"
	DefaultDataDir = "/var/lib/baton/" + NodePlaceholder
	DefaultMode    = "proxy"
	// DefaultPartitions is a group's metrics.flush_partitions when a route
	// steers metrics by metric key and the group sets no partitions.
	DefaultPartitions = 16
)

// ErrInvalid wraps every problem Check reports (config.ErrInvalid, so
// callers may test either).
var ErrInvalid = config.ErrInvalid

// Topology is one fleet declaration. Maps are keyed by name.
type Topology struct {
	// Version of the format; must be 1. Required.
	Version int `yaml:"version"`
	// Settings is Baton config laid under every node (base.yml).
	Settings config.Raw `yaml:"settings"`
	// Regions; each may carry settings of its own (regions/NAME.yml).
	Regions map[string]Region `yaml:"regions"`
	// Tiers; at least one is an entry tier, where SDKs send.
	Tiers map[string]Tier `yaml:"tiers"`
	// Hosts that run several nodes: their capacity, checked against the
	// budgets of the nodes placed on them. Optional.
	Hosts map[string]Host `yaml:"hosts"`
	// Kafka clusters routes may end in.
	Kafka map[string]Kafka `yaml:"kafka"`
	// External upstreams outside the fleet (Sentry, another relay fleet).
	External map[string]External `yaml:"external"`
	// Redis instances groups count fleet-wide quotas in (redis.go).
	Redis map[string]Redis `yaml:"redis"`
	// Templates hold YAML anchors for merge keys (<<: *edge); not read
	// otherwise.
	Templates map[string]config.Raw `yaml:"templates"`
	// Groups are the node groups (pools).
	Groups map[string]Group `yaml:"groups"`

	name string
	at   map[string]config.Position
	k8s  bool // nodes named as a StatefulSet's pods (K8sFiles)
}

// Region is one region.
type Region struct {
	// Settings is Baton config for the region's nodes only.
	Settings config.Raw `yaml:"settings"`
}

// Tier is one layer of the fleet.
type Tier struct {
	// Entry tiers receive SDK traffic: every class must reach a terminal
	// sink from each of their groups.
	Entry bool `yaml:"entry"`
}

// Host is the capacity of a machine that runs nodes of several groups.
type Host struct {
	// Disk available to buffers (sum of resources.buffer). 0: unchecked.
	Disk config.ByteSize `yaml:"disk"`
	// Memory available (sum of resources.memory). 0: unchecked.
	Memory config.ByteSize `yaml:"memory"`
}

// Kafka is one Kafka cluster.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	// Topics the cluster has; a route's topic (with {class} expanded) must
	// be one of them when the list is not empty.
	Topics []string `yaml:"topics"`
	// CreateTopics lets nodes create missing topics.
	CreateTopics bool `yaml:"create_topics"`
	SASL         SASL `yaml:"sasl"`
	TLS          bool `yaml:"tls"`
}

// SASL is a cluster's SASL login; the password is a reference.
type SASL struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password must be a ${NAME} reference, never the secret.
	Password string `yaml:"password"`
}

// External is an upstream outside the fleet: a terminal sink.
type External struct {
	URLs []string `yaml:"urls"`
}

// Group is a pool of identical nodes.
type Group struct {
	// Region of the group; "" for a global group (no region overlay).
	Region string `yaml:"region"`
	Tier   string `yaml:"tier"`
	// Mode is Baton's mode: proxy, static or managed. Default: proxy.
	Mode string `yaml:"mode"`
	// Count nodes named GROUP-0.. (hosts of the same names), or
	// Addresses, one node per host[:port]; exactly one of the two.
	Count     int      `yaml:"count"`
	Addresses []string `yaml:"addresses"`
	// Listen is host:port; an address's port overrides the port.
	// Default: ":3000".
	Listen string `yaml:"listen"`
	// DataDir is each node's buffer directory; "{node}" is the node name.
	// Default: /var/lib/baton/{node}.
	DataDir   string    `yaml:"data_dir"`
	Resources Resources `yaml:"resources"`
	// Identity of the group's relays, for upstreams that trust them. Only
	// managed nodes sign, so only a managed group's identity is used.
	Identity Identity `yaml:"identity"`
	// Trust lists the managed groups whose relays this group admits
	// (auth.static_relays): a managed group must be trusted by the
	// managed pool that serves it project configs. Proxy mode reads no
	// auth.static_relays.
	Trust []string `yaml:"trust"`
	// ProjectConfigs is where a managed group fetches project configs
	// (managed.upstream). Default: its default route's pool or external
	// upstream.
	ProjectConfigs Upstream `yaml:"project_configs"`
	// Partitions is metrics.flush_partitions when metrics are steered by
	// metric key. Default: 16.
	Partitions int `yaml:"partitions"`
	// Redis names the Redis the group's nodes count quotas in (the
	// redis: section). Default: none (each node counts in memory).
	Redis string `yaml:"redis"`
	// Routes by class name or "default".
	Routes map[string]Route `yaml:"routes"`
	// Settings is Baton config for the group's nodes only.
	Settings config.Raw `yaml:"settings"`
	// Kubernetes settings for `render --format k8s`.
	Kubernetes Kubernetes `yaml:"kubernetes"`
}

// Upstream names a group (pool) or an external upstream; one of the two.
type Upstream struct {
	Pool     string `yaml:"pool"`
	External string `yaml:"external"`
}

// Resources are a node's budgets.
type Resources struct {
	Buffer   config.ByteSize `yaml:"buffer"`   // buffer.max_bytes
	Memtable config.ByteSize `yaml:"memtable"` // buffer.memtable_size
	Inflight config.ByteSize `yaml:"inflight"` // server.max_inflight_bytes
	Memory   config.ByteSize `yaml:"memory"`   // runtime.memory_limit
}

// Identity is a relay identity: the secret only as a reference.
type Identity struct {
	RelayID   string `yaml:"relay_id"`
	PublicKey string `yaml:"public_key"`
	// SecretKey must be a ${NAME} reference.
	SecretKey string `yaml:"secret_key"`
	// CredentialsFile instead of SecretKey: a credentials.json on the node.
	CredentialsFile string `yaml:"credentials_file"`
}

// Route sends one class: to a group (pool), an external upstream, or a
// Kafka cluster and topic; exactly one.
type Route struct {
	Pool     string `yaml:"pool"`
	External string `yaml:"external"`
	Kafka    string `yaml:"kafka"`
	// Topic of a Kafka route; "{class}" is the class. Default: "baton.{class}".
	Topic string `yaml:"topic"`
	// Steer is project, trace or metric_key (metric only). Default: project.
	Steer string `yaml:"steer"`
	// WhenFull is the route's when_full. Default: Baton's.
	WhenFull string `yaml:"when_full"`
}

// Node is one node of a group.
type Node struct {
	Name   string
	Group  string
	Region string
	Tier   string
	Host   string
	Port   int
}

// URL is the node's base URL as its downstreams reach it.
func (n Node) URL() string {
	return "http://" + net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) + "/"
}

// Load reads and parses the topology file path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes a topology file. A decoded topology is returned with
// config.Errors when keys are unknown or values mistyped; Check finds the
// rest.
func Parse(name string, data []byte) (*Topology, error) {
	t := &Topology{name: name}
	at, err := config.DecodeFile(name, data, t)
	t.at = at
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		return nil, err
	}
	if err != nil {
		if len(at) == 0 {
			return nil, err // unreadable YAML: nothing decoded
		}
		return t, err
	}
	t.applyDefaults()
	return t, nil
}

func (t *Topology) applyDefaults() {
	for name, g := range t.Groups {
		if g.Mode == "" {
			g.Mode = DefaultMode
		}
		if g.Listen == "" {
			g.Listen = DefaultListen
		}
		if g.DataDir == "" {
			g.DataDir = DefaultDataDir
		}
		if g.Partitions == 0 {
			g.Partitions = DefaultPartitions
		}
		for c, r := range g.Routes {
			if r.Kafka != "" && r.Topic == "" {
				r.Topic = "baton." + config.ClassPlaceholder
			}
			if r.Steer == "" {
				r.Steer = "project"
			}
			g.Routes[c] = r
		}
		t.Groups[name] = g
	}
}

// Nodes returns the nodes of group name in order.
func (t *Topology) Nodes(name string) []Node {
	g := t.Groups[name]
	_, lport, _ := net.SplitHostPort(g.Listen)
	port, _ := strconv.Atoi(lport)
	var out []Node
	add := func(host string, port int) {
		out = append(out, Node{Name: fmt.Sprintf("%s-%d", name, len(out)), Group: name, Region: g.Region, Tier: g.Tier, Host: host, Port: port})
	}
	if len(g.Addresses) > 0 {
		for _, a := range g.Addresses {
			host, p := a, port
			if h, ps, err := net.SplitHostPort(a); err == nil {
				host = h
				p, _ = strconv.Atoi(ps)
			}
			add(host, p)
		}
		return out
	}
	for i := range g.Count {
		host := fmt.Sprintf("%s-%d", name, i)
		if t.k8s {
			host += "." + name // the pod's name under its headless Service
		}
		add(host, port)
	}
	return out
}

// AllNodes returns every node, groups in name order.
func (t *Topology) AllNodes() []Node {
	var out []Node
	for _, name := range sortedKeys(t.Groups) {
		out = append(out, t.Nodes(name)...)
	}
	return out
}
