package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/baton-relay/baton/envelope"
)

// DefaultRoute is the Routes key used by every class without its own route.
const DefaultRoute = "default"

// ClassPlaceholder in a KafkaDest.Topic expands to the class name.
const ClassPlaceholder = "{class}"

// Destination is where a route sends its class: one kind of sink, a tagged
// choice decoded from the route's YAML keys. Each kind is a struct whose
// fields are route keys; the first, named Kind(), selects the kind and
// names what it sends to ("upstream: sentry", "kafka: main"), the others
// are that kind's options ("topic"). Keys of another kind than the chosen
// one are errors, and in an overlay, setting any key of a kind drops the
// inherited keys of the others.
//
// The kinds are listed in destinations; routing opens each with the sink
// factory registered under its Kind (routing.Register). A new kind is a
// struct in this package, a line in destinations, and its factory in
// routing.
type Destination interface {
	// Kind is the route key that selects this kind.
	Kind() string
	// check validates the destination of the route at field, which serves
	// classes.
	check(v *validator, field string, classes []envelope.Class)
	// forClass returns the destination as used by class (see RouteFor).
	forClass(class envelope.Class) Destination
}

// destinations holds the zero value of each kind, in the order error
// messages list them.
var destinations = []Destination{UpstreamDest{}, KafkaDest{}}

// UpstreamDest sends a class to a group of upstream relays:
// `upstream: NAME`.
type UpstreamDest struct {
	// Upstream names an entry of Config.Upstreams. Required.
	Upstream string `yaml:"upstream"`
}

// Kind is "upstream".
func (UpstreamDest) Kind() string { return "upstream" }

func (d UpstreamDest) check(v *validator, field string, _ []envelope.Class) {
	if _, ok := v.c.Upstreams[d.Upstream]; !ok {
		v.errorf(field+".upstream", "no upstream named %q%s", d.Upstream, suggest(d.Upstream, slices.Sorted(maps.Keys(v.c.Upstreams))))
	}
}

func (d UpstreamDest) forClass(envelope.Class) Destination { return d }

// KafkaDest sends a class to a Kafka topic: `kafka: CLUSTER`, `topic: T`.
type KafkaDest struct {
	// Kafka names an entry of Kafka.Clusters or "embedded". Required.
	Kafka string `yaml:"kafka"`
	// Topic is the Kafka topic; "{class}" expands to the class name (see
	// Config.RouteFor). Default: "baton.{class}".
	Topic string `yaml:"topic"`
}

// Kind is "kafka".
func (KafkaDest) Kind() string { return "kafka" }

func (d KafkaDest) check(v *validator, field string, classes []envelope.Class) {
	if _, ok := v.c.Kafka.Clusters[d.Kafka]; !ok && d.Kafka != EmbeddedCluster {
		v.errorf(field+".kafka", "no Kafka cluster named %q%s", d.Kafka,
			suggest(d.Kafka, append(slices.Sorted(maps.Keys(v.c.Kafka.Clusters)), EmbeddedCluster)))
	}
	v.topic(field+".topic", d.Topic, classes)
}

func (d KafkaDest) forClass(class envelope.Class) Destination {
	d.Topic = ExpandTopic(d.Topic, class)
	return d
}

// destinationKinds returns the route key of every kind: "upstream or kafka".
func destinationKinds() string {
	names := make([]string, len(destinations))
	for i, d := range destinations {
		names[i] = d.Kind()
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// destinationGroups are the route keys of each kind: the groups that
// replace each other in an overlay.
func destinationGroups() [][]string {
	groups := make([][]string, len(destinations))
	for i, d := range destinations {
		groups[i] = structFields(reflect.TypeOf(d)).names
	}
	return groups
}

// choices returns the struct types an inline choice field of type t may
// hold (t is Destination for Route.Dest), or nil.
func choices(t reflect.Type) []reflect.Type {
	if t != reflect.TypeFor[Destination]() {
		return nil
	}
	types := make([]reflect.Type, len(destinations))
	for i, d := range destinations {
		types[i] = reflect.TypeOf(d)
	}
	return types
}

// RouteFor returns the route of class: Routes[class name] if present, else
// Routes["default"], with ClassPlaceholder in a Kafka topic expanded. It
// returns the zero Route when neither exists, which Validate rejects.
func (c Config) RouteFor(class envelope.Class) Route {
	r, ok := c.Routes[class.String()]
	if !ok {
		r = c.Routes[DefaultRoute]
	}
	if r.Dest != nil {
		r.Dest = r.Dest.forClass(class)
	}
	return r
}

// UpstreamFor returns the upstream class is routed to, if it is routed to
// one.
func (c Config) UpstreamFor(class envelope.Class) (Upstream, bool) {
	d, ok := c.RouteFor(class).Dest.(UpstreamDest)
	if !ok {
		return Upstream{}, false
	}
	u, ok := c.Upstreams[d.Upstream]
	return u, ok
}

// ExpandTopic replaces every ClassPlaceholder in topic with the class name.
func ExpandTopic(topic string, class envelope.Class) string {
	return strings.ReplaceAll(topic, ClassPlaceholder, class.String())
}

// UsesEmbeddedKafka reports whether any class is routed to the embedded
// broker, which is started only then.
func (c Config) UsesEmbeddedKafka() bool {
	for _, class := range envelope.Classes() {
		if d, ok := c.RouteFor(class).Dest.(KafkaDest); ok && d.Kafka == EmbeddedCluster {
			return true
		}
	}
	return false
}
