package topology

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/baton-relay/baton/envelope"
)

// Redis is a Redis instance (one server or a cluster) that groups count
// fleet-wide quotas in (docs: DESIGN.md "Fleet state in Redis"). A group
// names it in groups.G.redis; its nodes get it as their redis: section.
type Redis struct {
	// Region the instance serves; "" for a global instance. A regional
	// group may use its region's Redis or a global one.
	Region string `yaml:"region"`
	// Addresses are host:port: the server, or seed nodes of a cluster.
	Addresses []string `yaml:"addresses"`
	// Cluster speaks the Redis Cluster protocol. Default: false.
	Cluster bool `yaml:"cluster"`
	// DB is the database number (0 in a cluster). Default: 0.
	DB int `yaml:"db"`
	// Username for Redis ACLs. Default: "".
	Username string `yaml:"username"`
	// Password must be a ${NAME} reference, never the secret.
	Password string `yaml:"password"`
	// PasswordFile instead of Password: a file on the node.
	PasswordFile string `yaml:"password_file"`
	// TLS towards Redis: files on the node.
	TLS RedisTLS `yaml:"tls"`
	// KeyPrefix starts every key the nodes write. Default: Baton's
	// (baton).
	KeyPrefix string `yaml:"key_prefix"`
}

// RedisTLS is TLS towards a Redis instance; the files are paths on the
// nodes.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// redis checks the Redis declarations.
func (c *checker) redis() {
	for _, name := range sortedKeys(c.t.Redis) {
		r, f := c.t.Redis[name], "redis."+name
		if !dnsLabel.MatchString(name) {
			c.errorf(f, "Redis name %q: use lowercase letters, digits and inner dashes", name)
		}
		if _, ok := c.t.Regions[r.Region]; !ok && r.Region != "" {
			c.errorf(f+".region", "no region named %q%s", r.Region, suggest(r.Region, sortedKeys(c.t.Regions)))
		}
		if len(r.Addresses) == 0 {
			c.errorf(f+".addresses", "no addresses")
		}
		for i, a := range r.Addresses {
			host, port, err := net.SplitHostPort(a)
			if p, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || p == 0 {
				c.errorf(fmt.Sprintf("%s.addresses[%d]", f, i), "%q: want host:port, e.g. redis-1:6379", a)
			}
		}
		switch {
		case r.DB < 0 || r.DB > 15:
			c.errorf(f+".db", "%d is not a database number from 0 to 15", r.DB)
		case r.Cluster && r.DB != 0:
			c.errorf(f+".db", "must be 0 with cluster: Redis Cluster has only database 0")
		}
		c.secret(f+".password", r.Password, false)
		if r.Password != "" && r.PasswordFile != "" {
			c.errorf(f+".password_file", "password and password_file are both set; set one")
		}
		if r.Username != "" && r.Password == "" && r.PasswordFile == "" {
			c.errorf(f+".username", "needs password or password_file")
		}
		t := r.TLS
		if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
			c.errorf(f+".tls", "files are set but enabled is false; set enabled: true or remove them")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			c.errorf(f+".tls", "cert_file and key_file must be set together")
		}
	}
}

// groupRedis checks group name's Redis reference: it exists, serves the
// group's region, and the group enforces quotas at all.
func (c *checker) groupRedis(name string) {
	g, f := c.t.Groups[name], "groups."+name+".redis"
	if g.Redis == "" {
		return
	}
	r, ok := c.t.Redis[g.Redis]
	if !ok {
		c.errorf(f, "no Redis named %q%s", g.Redis, suggest(g.Redis, sortedKeys(c.t.Redis)))
		return
	}
	if g.Mode == "proxy" {
		// config.Validate accepts redis in proxy mode, but a proxy has no
		// project configs, hence no quotas: Redis would never be asked.
		c.errorf(f, "%s is in proxy mode, which enforces no quotas (it has no project configs): Redis would be unused; set mode managed or static, or remove redis", name)
	}
	if r.Region != "" && r.Region != g.Region {
		where := "a global group"
		if g.Region != "" {
			where = "in region " + g.Region
		}
		c.errorf(f, "Redis %s serves region %s, but %s is %s: every quota lease would cross regions; use a Redis of its region or a global one", g.Redis, r.Region, name, where)
	}
}

// redisPools checks that the quota-enforcing groups of one tier and
// region, which share a region's traffic of that tier, count quotas in
// one Redis (or all locally): otherwise a project's quota is counted
// separately in each, not once for the pool. A group's own nodes share
// its Redis by construction.
func (c *checker) redisPools() {
	t := c.t
	type pool struct{ tier, region string }
	first := map[pool]string{}
	for _, name := range sortedKeys(t.Groups) {
		g := t.Groups[name]
		if g.Mode == "proxy" {
			continue
		}
		p := pool{g.Tier, g.Region}
		prev, seen := first[p]
		if !seen {
			first[p] = name
			continue
		}
		pr := t.Groups[prev].Redis
		if pr == g.Redis {
			continue
		}
		region := "global"
		if g.Region != "" {
			region = "region " + g.Region
		}
		f := "groups." + name + ".redis"
		if g.Redis == "" {
			f = "groups." + name
		}
		c.errorf(f, "%s counts quotas %s, but %s, of the same tier (%s) and %s, counts them %s: a project's quota would be counted in each separately, not once; use one Redis for both",
			name, redisWhere(g.Redis), prev, g.Tier, region, redisWhere(pr))
	}
}

func redisWhere(name string) string {
	if name == "" {
		return "in each node's memory"
	}
	return "in Redis " + name
}

// redisSection is the redis: section of a node of a group using Redis
// name. fallback_share is the number of nodes counting in that Redis, so
// that while it is unreachable the fleet stays near each global limit.
func (t *Topology) redisSection(name string) obj {
	r := t.Redis[name]
	share := 0
	for _, gn := range sortedKeys(t.Groups) {
		if g := t.Groups[gn]; g.Redis == name && g.Mode != "proxy" {
			share += len(t.Nodes(gn))
		}
	}
	s := obj{"addresses": r.Addresses, "fallback_share": max(share, 1)}
	if r.Cluster {
		s["cluster"] = true
	}
	if r.DB != 0 {
		s["db"] = r.DB
	}
	if r.Username != "" {
		s["username"] = r.Username
	}
	if r.Password != "" {
		s["password"] = r.Password
	}
	if r.PasswordFile != "" {
		s["password_file"] = r.PasswordFile
	}
	if r.KeyPrefix != "" {
		s["key_prefix"] = r.KeyPrefix
	}
	if r.TLS.Enabled {
		tls := obj{"enabled": true}
		for k, v := range map[string]string{"ca_file": r.TLS.CAFile, "cert_file": r.TLS.CertFile, "key_file": r.TLS.KeyFile, "server_name": r.TLS.ServerName} {
			if v != "" {
				tls[k] = v
			}
		}
		s["tls"] = tls
	}
	return s
}

// redisTwice reports a group that counts quotas in the same Redis as a
// group it receives items from: every such item would be charged twice
// against one quota window (docs: DESIGN.md "Fleet state in Redis"), so
// the fleet would admit half the limit.
func (c *checker) redisTwice() {
	t := c.t
	type pair struct{ from, to string }
	classes := map[pair][]string{}
	var pairs []pair
	for _, name := range sortedKeys(t.Groups) {
		g := t.Groups[name]
		if g.Redis == "" || g.Mode == "proxy" {
			continue
		}
		for _, cl := range envelope.Classes() {
			seen := map[string]bool{name: true}
			for at := name; ; {
				r, _, ok := t.RouteFor(at, cl)
				if !ok || r.Pool == "" || seen[r.Pool] {
					break
				}
				up, exists := t.Groups[r.Pool]
				if !exists {
					break
				}
				seen[r.Pool] = true
				if up.Redis == g.Redis && up.Mode != "proxy" {
					p := pair{name, r.Pool}
					if classes[p] == nil {
						pairs = append(pairs, p)
					}
					classes[p] = append(classes[p], cl.String())
				}
				at = r.Pool
			}
		}
	}
	for _, p := range pairs {
		c.errorf("groups."+p.to+".redis", "%s counts quotas in Redis %s, as %s does, which sends it %s: those items would be charged twice to one quota; count quotas in one tier only, or in another Redis",
			p.to, t.Groups[p.to].Redis, p.from, strings.Join(classes[p], ", "))
	}
}
