package config

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestChanged(t *testing.T) {
	a := Default()
	if got := Changed(a, Default()); len(got) != 0 {
		t.Fatalf("Changed(default, default) = %v, want none", got)
	}
	a.Upstreams = map[string]Upstream{"s": {URLs: []string{"http://a"}, Timeout: time.Second}}
	a.Projects = map[string]Project{"1": {PublicKeys: []string{"k1"}}, "2": {PublicKeys: []string{"k2"}}}
	b := Default()
	b.Server.Listen = "0.0.0.0:3000"
	b.Kafka.Clusters = map[string]KafkaCluster{"main": {Brokers: []string{"k:9092"}, SASL: SASL{Password: "secret"}}}
	b.Upstreams = map[string]Upstream{"s": {URLs: []string{"http://b"}, Timeout: time.Second}}
	b.Routes = map[string]Route{DefaultRoute: {Dest: UpstreamDest{Upstream: "s"}, WhenFull: a.Routes[DefaultRoute].WhenFull, Steer: a.Routes[DefaultRoute].Steer}}
	b.Projects = map[string]Project{"1": {PublicKeys: []string{"k1"}, Relay: json.RawMessage(`{}`)}, "3": {PublicKeys: []string{"k3"}}}
	want := []string{"kafka.clusters.main", "projects.1", "projects.2", "projects.3", "routes.default", "server.listen", "upstreams.s.urls"}
	if got := Changed(a, b); !slices.Equal(got, want) {
		t.Errorf("Changed = %v\nwant      %v", got, want)
	}
	// Field level inside an inline destination of the same kind.
	a.Routes = map[string]Route{DefaultRoute: {Dest: KafkaDest{Kafka: EmbeddedCluster, Topic: "x"}}}
	b = a
	b.Routes = map[string]Route{DefaultRoute: {Dest: KafkaDest{Kafka: EmbeddedCluster, Topic: "y"}, WhenFull: "drop_oldest"}}
	if got, want := Changed(a, b), []string{"routes.default.topic", "routes.default.when_full"}; !slices.Equal(got, want) {
		t.Errorf("Changed = %v, want %v", got, want)
	}
}
