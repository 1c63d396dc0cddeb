package topology

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/baton-relay/baton/config"
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
    settings:
      projects: {"42": {public_keys: [a7c3e9f1b5d24680ace13579bdf02468]}}
    identity:
      relay_id: bc9233d5-0d46-4161-8770-3d24ca2ea6de
      public_key: lxZr9XxHE6QAaqu7fRSrD96dSWyJR5IJ4nH7Ml0CAZs
      secret_key: ${CORE_SECRET}
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
		{"unknown kafka cluster", "default: {kafka: main}", "default: {kafka: mian} #<", `groups.core.routes.default.kafka: no Kafka cluster named "mian" (did you mean "main"?)`, nil},
		{"undeclared topic", `brokers: ["k:9092"]`, "brokers: [\"k:9092\"]\n    topics: [baton.error]", `groups.core.routes.default.topic: topics baton.unknown, baton.transaction, baton.security`,
			[]string{"default: {kafka: main}", "default: {kafka: main} #<"}},
		{"managed group not trusted", "    tier: edge\n    addresses: [h1:3000]", "    tier: edge\n    mode: managed\n    identity: {relay_id: 2b69aa4a-7da8-41db-a563-3f815acd0b12, public_key: 78SJzSru2kq8aYfAALHGuPXaDqH0LVIYLariZvXm5aE, secret_key: \"${EDGE_SECRET}\"}\n    addresses: [h1:3000]",
			"groups.edge.routes.default.pool: core (mode static) does not trust edge, which fetches project configs from it: add edge to groups.core.trust",
			[]string{"      default: {pool: core}\n  edge2", "      default: {pool: core} #<\n  edge2"}},
		{"managed group without a secret", "    tier: edge\n    addresses: [h1:3000]", "    tier: edge\n    mode: managed\n    identity: {relay_id: 2b69aa4a-7da8-41db-a563-3f815acd0b12, public_key: 78SJzSru2kq8aYfAALHGuPXaDqH0LVIYLariZvXm5aE} #<\n    addresses: [h1:3000]",
			"groups.edge.identity.secret_key: required: a ${NAME} reference to the secret", nil},
		{"group name not a DNS label", "  edge2:\n", "  Edge_2: #<\n", `groups.Edge_2: group name "Edge_2": use lowercase letters`, nil},
		{"trust unknown group", "    mode: static\n", "    mode: static\n    trust: [egde] #<\n", `groups.core.trust[0]: no group named "egde" (did you mean "edge"?)`, nil},
		{"secret as a value", "secret_key: ${CORE_SECRET}", "secret_key: MRBN8e3Up1AJIgb6gFGOumbwwng1M9VXyHEU9v8QqNw #<", "groups.core.identity.secret_key: a secret written into the topology; write a ${NAME} reference", nil},
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
