package relay

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/baton-relay/baton"

// allowed is the dependency table of DESIGN.md: which project packages each
// package may import. Anything else is a layering violation. Each package
// under relay/ is its own entry: relay itself may import all of them
// ("relay/*"), each of them only what its entry lists (a new one is one line
// here and one row in DESIGN.md).
var allowed = map[string][]string{
	"cmd/baton":       {"relay", "relay/auth", "relay/record", "relay/normalize", "relay/grouping", "relay/telemetry", "config", "config/topology", "routing"}, // routing: `baton lanes` (routing/lanes); auth: `baton credentials`; record: `baton buffer` names streams; normalize: `baton normalize`; grouping: `baton grouping hash`; telemetry: the JSON log handler, and `baton lanes`' metrics
	"cmd/baton-load":  {},
	"relay":           {"routing", "config", "buffer", "envelope", "relay/*"},
	"relay/intake":    {},
	"relay/otlp":      {"envelope"},                                    // OTLP bodies to Sentry items: the OTLP types (thirdParty), envelope's JSON escaping
	"relay/internal":  {},                                              // testutil: doubles and fixtures shared by tests under relay/
	"relay/project":   {"relay/pii", "relay/clientopts", "relay/glob"}, // a state compiles its PII config (and client options) once per revision
	"relay/aggregate": {"envelope"},
	"relay/auth":      {},
	"relay/fleet":     {},              // fleet state in Redis: go-redis only (thirdParty)
	"relay/event":     {},              // the event JSON tree: standard library only (thirdParty)
	"relay/pii":       {"relay/event"}, // pure library over event JSON
	"relay/forward":   {"buffer", "envelope", "routing", "relay/aggregate", "relay/outcome", "relay/project", "relay/record"},
	"relay/normalize": {"envelope", "relay/event", "relay/useragent"}, // pure functions over events: stdlib only (thirdParty); envelope: metric units
	"relay/grouping":  {"relay/event"},                                // Sentry's issue hash over the event tree: stdlib only (thirdParty)
	"relay/groups":    {},                                             // per-issue storm windows and counts: stdlib only (thirdParty)
	"relay/outcome":   {"envelope"},
	"relay/policy":    {"config", "envelope", "relay/event", "relay/outcome", "relay/project", "relay/useragent"}, // event: filters read the normalized tree
	"relay/useragent": {},                                                                                         // the process's one User-Agent parser: uap-go only (thirdParty)
	"relay/record":    {"buffer", "envelope"},
	"relay/telemetry": {},                  // the OTel SDK and its exporters (sdkOwners)
	"relay/status":    {"relay/telemetry"}, // the status page: reads telemetry.Reading, no SDK types
	"routing":         {"config", "envelope"},
	"config":          {"envelope", "relay/clientopts"}, // static client options are validated by the managed part's rules
	"config/topology": {"config", "envelope"},           // the fleet declaration renders ordinary configs
	"envelope":        {},
	"buffer":          {},
	"integration":     {"relay", "config", "envelope", "buffer", "routing"},

	"relay/clientopts": {"relay/glob"},                                                        // the client options document (docs/client-options.md): stdlib only (thirdParty)
	"relay/glob":       {},                                                                    // Relay's '*' globs over strings and bytes: stdlib only (thirdParty)
	"relay/tailsample": {"buffer", "envelope", "relay/outcome", "relay/record", "relay/glob"}, // tail sampling: the trace buffer over buffer streams
}

// thirdParty restricts what leaf packages may import beyond the standard
// library (by module path prefix).
var thirdParty = map[string][]string{
	"envelope":        {},
	"relay/event":     {},
	"buffer":          {"github.com/cockroachdb/pebble/v2"},
	"relay/normalize": {},
	"relay/grouping":  {},
	"relay/groups":    {},
	"relay/useragent": {"github.com/ua-parser/uap-go"},
	"relay/fleet":     {"github.com/redis/go-redis/v9"},
	"relay/otlp":      {"go.opentelemetry.io/proto/otlp", "google.golang.org/protobuf"},

	"relay/clientopts": {},
	"relay/glob":       {},
}

// forbidden are modules a package may not import (by module path prefix),
// for relay and every package under it: relay never speaks Kafka itself;
// franz-go (its client, admin API and kfake, the embedded broker) lives
// behind routing.
var forbidden = map[string][]string{
	"relay": {"github.com/twmb/franz-go"},
}

// otelSDK are the OpenTelemetry modules that build a MeterProvider and
// export (by module path prefix); the rest of Baton uses only the API
// (go.opentelemetry.io/otel/metric). Only sdkOwners import them.
var (
	otelSDK   = []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/contrib", "github.com/prometheus/client_golang"}
	sdkOwners = []string{"relay/telemetry", "cmd/baton"}
)

// TestImports walks `go list -deps` for every package and fails on an edge
// the tables above do not allow.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test=false", "-json=ImportPath,Imports,Standard", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Standard   bool
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	std := map[string]bool{}
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		std[p.ImportPath] = p.Standard
		pkgs = append(pkgs, p)
	}
	seen := 0
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		seen++
		unit := unitOf(rel)
		if _, ok := allowed[unit]; !ok {
			t.Errorf("package %s is outside the layout (a line of allowed in relay/imports_test.go and of the table in DESIGN.md)", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, module+"/"); ok {
				if d := unitOf(dep); d != unit && !mayImport(unit, d) {
					t.Errorf("%s imports %s: %s may import only %v", rel, dep, unit, allowed[unit])
				}
				continue
			}
			if list, restricted := thirdParty[unit]; restricted && !std[imp] && !hasPrefix(imp, list) {
				t.Errorf("%s imports %s: %s may import only the standard library and %v", rel, imp, unit, list)
			}
			if list := forbiddenFor(unit); hasPrefix(imp, list) {
				t.Errorf("%s imports %s: %s must not import %v", rel, imp, unit, list)
			}
			if hasPrefix(imp, otelSDK) && !slices.Contains(sdkOwners, unit) {
				t.Errorf("%s imports %s: only %v build the OpenTelemetry SDK; use go.opentelemetry.io/otel/metric", rel, imp, sdkOwners)
			}
		}
	}
	if seen < 6 {
		t.Fatalf("go list saw only %d project packages; the test is not looking at the module", seen)
	}
}

// TestImportRules checks the rules on edges that must fail, so a table
// that allows everything cannot pass.
func TestImportRules(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"relay", "relay/record", true},
		{"relay", "relay/forward", true}, // any package under relay/
		{"relay/record", "buffer", true},
		{"relay/record", "relay", false},
		{"relay/outcome", "relay/record", false},
		{"relay/outcome", "buffer", false},
		{"routing", "relay", false},
		{"config", "routing", false},
	} {
		if got := mayImport(c.from, c.to); got != c.ok {
			t.Errorf("mayImport(%s, %s) = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	for _, unit := range []string{"relay", "relay/record", "relay/forward"} {
		for _, p := range []string{"github.com/twmb/franz-go/pkg/kgo", "github.com/twmb/franz-go/pkg/kfake"} {
			if !hasPrefix(p, forbiddenFor(unit)) {
				t.Errorf("%s may import %s; franz-go belongs to routing", unit, p)
			}
		}
	}
	for _, p := range []string{"go.opentelemetry.io/otel/sdk/metric", "go.opentelemetry.io/otel/exporters/prometheus"} {
		if !hasPrefix(p, otelSDK) {
			t.Errorf("%s is not an SDK module: any package could build a MeterProvider", p)
		}
	}
	if hasPrefix("go.opentelemetry.io/otel/metric", otelSDK) || slices.Contains(sdkOwners, "routing") {
		t.Error("the OTel metric API must stay open to every package, the SDK closed to routing")
	}
	if hasPrefix("github.com/twmb/franz-go/pkg/kgo", forbiddenFor("routing")) {
		t.Error("routing may not import franz-go")
	}
}

// unitOf is the entry of allowed a package falls under: cmd/NAME,
// relay/NAME, or the top-level folder.
func unitOf(rel string) string {
	parts := strings.SplitN(rel, "/", 3)
	if len(parts) > 1 && (parts[0] == "cmd" || parts[0] == "relay") {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// mayImport reports whether unit from may import unit to; "relay/*" in a
// list allows every package under relay/.
func mayImport(from, to string) bool {
	list := allowed[from]
	return slices.Contains(list, to) || strings.HasPrefix(to, "relay/") && slices.Contains(list, "relay/*")
}

// forbiddenFor is forbidden[unit], or relay's for a package under relay/.
func forbiddenFor(unit string) []string {
	if strings.HasPrefix(unit, "relay/") {
		unit = "relay"
	}
	return forbidden[unit]
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}
