package topology

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
)

// core2 is a second static group of core's tier and region, for the
// Redis pool cases.
const core2 = `  core2:
    region: eu
    tier: core
    mode: static
    addresses: [h3:3000]
    settings:
      projects: {"43": {public_keys: [b7c3e9f1b5d24680ace13579bdf02468]}}
    routes:
      default: {kafka: main}
`

// core3 is a third static group that sends errors to core2, for a cycle
// no entry group reaches.
const core3 = `  core3:
    region: eu
    tier: core
    mode: static
    addresses: [h4:3000]
    settings:
      projects: {"44": {public_keys: [c7c3e9f1b5d24680ace13579bdf02468]}}
    routes:
      error: {pool: core2}
      default: {kafka: main}
`

// managedEdge, replaced by toManagedEdge, makes group edge managed with
// an identity; managedCore makes core managed, with project configs from
// Sentry; top is a managed group above core.
const (
	managedEdge   = "    tier: edge\n    addresses: [h1:3000]\n"
	toManagedEdge = "    tier: edge\n    mode: managed\n    identity: {relay_id: 2b69aa4a-7da8-41db-a563-3f815acd0b12, public_key: 78SJzSru2kq8aYfAALHGuPXaDqH0LVIYLariZvXm5aE, secret_key: \"${EDGE_SECRET}\"}\n    addresses: [h1:3000]\n"
	managedCore   = "    mode: managed\n    project_configs: {external: sentry}\n"
	coreKey       = "      public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs\n"
	top           = `  top:
    region: eu
    tier: core
    mode: managed
    addresses: [h5:3000]
    project_configs: {external: sentry}
    identity: {credentials_file: /etc/baton/credentials.json}
    routes:
      default: {kafka: main}
`
)

// fleet is a small consistent fleet; each case of TestCheckMistakes
// breaks it in one way.
const fleet = `version: 1
regions: {eu: {}}
tiers: {edge: {entry: true}, core: {}}
hosts: {h1: {disk: 10GiB, memory: 2GiB}}
kafka:
  main:
    brokers: ["k:9092"]
external: {sentry: {urls: ["https://sentry.example.com/"]}}
redis:
  quota:
    region: eu
    addresses: ["r1:6379"]
    password: ${REDIS_PASSWORD}
groups:
  edge:
    region: eu
    tier: edge
    addresses: [h1:3000]
    resources: {buffer: 1GiB}
    routes:
      metric: {pool: core, steer: metric_key}
      default: {pool: core}
  edge2:
    region: eu
    tier: edge
    addresses: [h1:3001]
    data_dir: /data/{node}
    routes:
      metric: {pool: core, steer: metric_key}
      default: {pool: core}
  core:
    region: eu
    tier: core
    mode: static
    addresses: [h2:3000]
    redis: quota
    settings:
      projects: {"42": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}
    identity:
      relay_id: bc9233d5-0d46-4161-8770-3d24ca2ea6de
      public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs
    routes:
      default: {kafka: main}
`

func TestFleetChecksClean(t *testing.T) {
	top, err := Parse("fleet.yml", []byte(fleet))
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckMistakes: each class of mistake is reported at the line marked
// "#<" in the broken fleet, with the field and what is wrong.
func TestCheckMistakes(t *testing.T) {
	cases := []struct {
		name, old, new, want string
		more                 []string // further old, new pairs
	}{
		{"version", "version: 1", "version: 2 #<", "version: unsupported topology version 2", nil},
		{"unknown key", "    tier: core\n", "    tier: core\n    replicas: 2 #<\n", "groups.core.replicas: unknown key", nil},
		{"type", "addresses: [h2:3000]", "addresses: h2 #<", "groups.core.addresses: expected a list", nil},
		{"no entry tier", "{edge: {entry: true}, core: {}}", "{edge: {}, core: {}} #<", "tiers: no entry tier", nil},
		{"unknown region", "    region: eu\n    tier: core", "    region: us #<\n    tier: core", `groups.core.region: no region named "us"`, nil},
		{"unknown tier", "    tier: core\n", "    tier: cor #<\n", `groups.core.tier: no tier named "cor" (did you mean "core"?)`, nil},
		{"count and addresses", "addresses: [h2:3000]", "addresses: [h2:3000]\n    count: 2 #<", "groups.core.count: set count or addresses, not both", nil},
		{"unknown pool", "      default: {pool: core}\n  edge2", "      default: {pool: cores} #<\n  edge2", `groups.edge.routes.default.pool: no group named "cores" (did you mean "core"?)`, nil},
		{"two destinations", "default: {kafka: main}", "default: {kafka: main, pool: edge} #<", "groups.core.routes.default: set exactly one of pool, external or kafka", nil},
		{"unknown class", "      default: {kafka: main}", "      default: {kafka: main}\n      sesion: {kafka: main} #<", `groups.core.routes.sesion: no class named "sesion" (did you mean "session"?)`, nil},
		{"class without route", "    routes:\n      default: {kafka: main}", "    routes: #<\n      error: {kafka: main}", "groups.core.routes: no route for unknown, transaction, security", nil},
		{"reaches no sink", "    routes:\n      default: {kafka: main}", "    routes: #<\n      error: {kafka: main}", "groups.core.routes: classes unknown, transaction, security, attachment, session, metric, client_report, profile, replay, check_in, span, log, feedback, trace_metric from edge reach no sink: core has no route for them", nil},
		{"cycle", "      default: {kafka: main}", "      default: {pool: edge} #<", "groups.core.routes.default.pool: class unknown loops: edge → core → edge", nil},
		{"cycle no entry reaches", "      default: {kafka: main}\n", "      default: {kafka: main}\n" + strings.Replace(core2, "default: {kafka: main}", "error: {pool: core3}\n      default: {kafka: main}", 1) + strings.Replace(core3, "{pool: core2}", "{pool: core2} #<", 1),
			"groups.core3.routes.error.pool: class error loops: core2 → core3 → core2", nil},
		{"unknown kafka cluster", "default: {kafka: main}", "default: {kafka: mian} #<", `groups.core.routes.default.kafka: no Kafka cluster named "mian" (did you mean "main"?)`, nil},
		{"undeclared topic", `brokers: ["k:9092"]`, "brokers: [\"k:9092\"]\n    topics: [baton.error]", `groups.core.routes.default.topic: topics baton.unknown, baton.transaction, baton.security`,
			[]string{"default: {kafka: main}", "default: {kafka: main} #<"}},
		{"managed group not trusted", managedEdge, toManagedEdge,
			"groups.edge.routes.default.pool: core (mode managed) does not trust edge, which fetches project configs from it: add edge to groups.core.trust",
			[]string{"      default: {pool: core}\n  edge2", "      default: {pool: core} #<\n  edge2", "    mode: static\n", managedCore, coreKey, coreKey + "      credentials_file: /etc/baton/credentials.json\n"}},
		{"managed group not trusted through a proxy", managedEdge, toManagedEdge,
			"groups.edge.routes.default.pool: core (mode managed) does not trust edge, which fetches project configs from it through edge2: add edge to groups.core.trust",
			[]string{"      default: {pool: core}\n  edge2", "      default: {pool: edge2} #<\n  edge2", "    mode: static\n", managedCore, coreKey, coreKey + "      credentials_file: /etc/baton/credentials.json\n"}},
		{"managed behind a static pool", managedEdge, toManagedEdge,
			"groups.edge.routes.default.pool: pool core is static: a static Baton serves no project configs to managed nodes, and core has no upstream to pass them on to",
			[]string{"      default: {pool: core}\n  edge2", "      default: {pool: core} #<\n  edge2", "    mode: static\n", "    mode: static\n    trust: [edge]\n"}},
		{"managed behind a proxy that forwards nothing", managedEdge, toManagedEdge,
			"groups.edge.routes.default.pool: pool edge2 is a proxy: it serves no project configs to managed nodes, and edge2 passes none on (server.forward_unknown: false)",
			[]string{"      default: {pool: core}\n  edge2", "      default: {pool: edge2} #<\n  edge2", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    settings: {server: {forward_unknown: false}}\n"}},
		{"managed behind a static pool with an upstream", managedEdge, toManagedEdge,
			"groups.edge.routes.default.pool: top (mode managed) does not trust edge, which fetches project configs from it through core: add edge to groups.top.trust",
			[]string{"      default: {pool: core}\n  edge2", "      default: {pool: core} #<\n  edge2", "      default: {kafka: main}\n", "      default: {pool: top}\n" + top}},
		{"managed group's project configs unknown", managedEdge, toManagedEdge + "    project_configs: {external: sentyr} #<\n",
			`groups.edge.project_configs.external: no external upstream named "sentyr"`, nil},
		{"project configs of a proxy group", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    project_configs: {pool: core} #<\n",
			"groups.edge2.project_configs: proxy mode fetches no project configs; only managed mode does", nil},
		{"trust on a proxy group", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    trust: [core] #<\n",
			"groups.edge2.trust: proxy mode reads no auth.static_relays, so trust admits nothing here", nil},
		{"trust of a group that signs nothing", "    mode: static\n", "    mode: static\n    trust: [edge] #<\n",
			"groups.core.trust[0]: group edge is in proxy mode, which signs nothing", nil},
		{"secret of a group that signs nothing", "public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs\n", "public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs\n      secret_key: ${CORE_SECRET} #<\n",
			"groups.core.identity.secret_key: static mode signs nothing, so the secret is rendered nowhere", nil},
		{"credentials of a group that signs nothing", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    identity: {credentials_file: /etc/baton/credentials.json} #<\n",
			"groups.edge2.identity.credentials_file: proxy mode signs nothing, so the credentials are rendered nowhere", nil},
		{"managed group without a secret", "    tier: edge\n    addresses: [h1:3000]", "    tier: edge\n    mode: managed\n    identity: {relay_id: 2b69aa4a-7da8-41db-a563-3f815acd0b12, public_key: 78SJzSru2kq8aYfAALHGuPXaDqH0LVIYLariZvXm5aE} #<\n    addresses: [h1:3000]",
			"groups.edge.identity.secret_key: required: a ${NAME} reference to the secret", nil},
		{"group name not a DNS label", "  edge2:\n", "  Edge_2: #<\n", `groups.Edge_2: group name "Edge_2": use lowercase letters`, nil},
		{"trust unknown group", "    mode: static\n", "    mode: static\n    trust: [egde] #<\n", `groups.core.trust[0]: no group named "egde" (did you mean "edge"?)`, nil},
		{"secret as a value", "public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs\n", "public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs\n      secret_key: MRBN8e3Up1AJIgb6gFGOumbwwng1M9VXyHEU9v8QqNw #<\n", "groups.core.identity.secret_key: a secret written into the topology; write a ${NAME} reference", nil},
		{"steering differs within a pool", "      metric: {pool: core, steer: metric_key}\n      default: {pool: core}\n  core", "      metric: {pool: core, steer: project} #<\n      default: {pool: core}\n  core",
			"groups.edge2.routes.metric.steer: class metric reaches pool core steered by project, but edge steers it by metric_key over 16 partitions", nil},
		{"metric_key on another class", "      default: {kafka: main}", "      default: {kafka: main}\n      error: {kafka: main, steer: metric_key} #<", "groups.core.routes.error.steer: metric_key steers metric buckets only", nil},
		{"port collision", "addresses: [h1:3001]", "addresses: [h1:3000] #<", "groups.edge2.addresses[0]: node edge2-0 listens on h1:3000, as edge-0 does", nil},
		{"data dir collision", "data_dir: /data/{node}", "data_dir: /var/lib/baton/edge-0 #<", "groups.edge2.data_dir: node edge2-0 keeps its buffer in /var/lib/baton/edge-0 on h1, as edge-0 does", nil},
		{"host disk budget", "hosts: {h1: {disk: 10GiB, memory: 2GiB}}", "hosts: {h1: {disk: 512MiB, memory: 2GiB}} #<", "hosts.h1.disk: the buffers of the nodes on h1 add up to 1GiB, more than its disk 512MiB", nil},
		{"settings set what the topology derives", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    settings: {routes: {error: {kafka: embedded}}} #<\n", "groups.edge2.settings: sets routes, which the topology derives", nil},
		{"rendered config invalid", "resources: {buffer: 1GiB}", "resources: {buffer: 100MiB}", "groups.edge: the rendered config of node edge-0 is invalid: nodes/edge-0.yml:",
			[]string{"  edge:\n", "  edge: #<\n"}},
		{"settings Baton does not know", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    settings: #<\n      buffer: {max_byte: 1GiB}\n", "groups.edge2.settings: the rendered config of node edge2-0 is invalid: nodes/edge2-0.yml:", nil},
		{"unknown Redis", "    redis: quota\n", "    redis: qouta #<\n", `groups.core.redis: no Redis named "qouta" (did you mean "quota"?)`, nil},
		{"Redis password as a value", "password: ${REDIS_PASSWORD}", "password: hunter2 #<", "redis.quota.password: a secret written into the topology; write a ${NAME} reference", nil},
		{"Redis in proxy mode", "    resources: {buffer: 1GiB}\n", "    resources: {buffer: 1GiB}\n    redis: quota #<\n", "groups.edge.redis: edge is in proxy mode, which enforces no quotas", nil},
		{"Redis of another region", "    redis: quota\n", "    redis: quota #<\n", "groups.core.redis: Redis quota serves region us, but core is in region eu",
			[]string{"regions: {eu: {}}", "regions: {eu: {}, us: {}}", "    region: eu\n    addresses: [\"r1", "    region: us\n    addresses: [\"r1"}},
		{"pool without its Redis", "      default: {kafka: main}\n", "      default: {kafka: main}\n" + strings.Replace(core2, "  core2:", "  core2: #<", 1),
			"groups.core2: core2 counts quotas in each node's memory, but core, of the same tier (core) and region eu, counts them in Redis quota", nil},
		{"pool on another Redis", "      default: {kafka: main}\n", "      default: {kafka: main}\n" + strings.Replace(core2, "    addresses: [h3:3000]\n", "    addresses: [h3:3000]\n    redis: quota2 #<\n", 1),
			"groups.core2.redis: core2 counts quotas in Redis quota2, but core, of the same tier (core) and region eu, counts them in Redis quota",
			[]string{"redis:\n  quota:", "redis:\n  quota2: {addresses: [\"r2:6379\"]}\n  quota:"}},
		{"Redis counted twice", "    resources: {buffer: 1GiB}\n", "    resources: {buffer: 1GiB}\n    mode: static\n    redis: quota\n    settings:\n      projects: {\"42\": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}\n", "groups.core.redis: core counts quotas in Redis quota, as edge does, which sends it unknown, error",
			[]string{"    redis: quota\n    settings:\n      projects: {\"42\": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}\n    identity", "    redis: quota #<\n    settings:\n      projects: {\"42\": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}\n    identity"}},
		{"Redis address", `addresses: ["r1:6379"]`, `addresses: ["r1"] #<`, `redis.quota.addresses[0]: "r1": want host:port`, nil},
		{"Redis TLS files without TLS", "    password: ${REDIS_PASSWORD}\n", "    password: ${REDIS_PASSWORD}\n    tls: {ca_file: /etc/redis/ca.pem} #<\n", "redis.quota.tls: files are set but enabled is false", nil},
		{"Redis cluster with a db", "    password: ${REDIS_PASSWORD}\n", "    password: ${REDIS_PASSWORD}\n    cluster: true\n    db: 3 #<\n", "redis.quota.db: must be 0 with cluster", nil},
		{"settings set the Redis", "    data_dir: /data/{node}\n", "    data_dir: /data/{node}\n    settings: {redis: {addresses: [\"r9:6379\"]}} #<\n", "groups.edge2.settings: sets redis.addresses, which the topology derives", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(fleet, tc.old) {
				t.Fatalf("the fleet has no %q", tc.old)
			}
			src := strings.Replace(fleet, tc.old, tc.new, 1)
			for i := 0; i+1 < len(tc.more); i += 2 {
				if !strings.Contains(src, tc.more[i]) {
					t.Fatalf("the fleet has no %q", tc.more[i])
				}
				src = strings.Replace(src, tc.more[i], tc.more[i+1], 1)
			}
			line := 0
			for i, l := range strings.Split(src, "\n") {
				if strings.Contains(l, "#<") {
					line = i + 1
				}
			}
			if line == 0 {
				t.Fatal("no #< marks the line of the problem")
			}
			err := check(src)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("no problems reported (%v)\n%s", err, src)
			}
			want := fmt.Sprintf("fleet.yml:%d: %s", line, tc.want)
			for _, p := range errs {
				if strings.HasPrefix(p.String(), want) {
					if !errors.Is(p, config.ErrInvalid) && !errors.Is(p, config.ErrUnknownKey) && !errors.Is(p, config.ErrType) {
						t.Errorf("%v wraps no config error kind", p)
					}
					return
				}
			}
			t.Errorf("want a problem starting\n  %s\ngot:\n%v", want, err)
		})
	}
}

func check(src string) error {
	top, err := Parse("fleet.yml", []byte(src))
	if err != nil {
		return err
	}
	return top.Check()
}

// TestCheckReportsAllAtOnce: several mistakes, each reported, in line
// order.
func TestCheckReportsAllAtOnce(t *testing.T) {
	src := strings.Replace(strings.Replace(fleet, "tier: core\n", "tier: cor\n", 1), "default: {kafka: main}", "default: {kafka: mian}", 1)
	err := check(src)
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Line >= errs[1].Line {
		t.Fatalf("want two problems in line order, got:\n%v", err)
	}
}
