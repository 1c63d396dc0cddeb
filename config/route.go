package config

import (
	"strings"

	"github.com/baton-relay/baton/envelope"
)

// DefaultRoute is the Routes key used by every class without its own route.
const DefaultRoute = "default"

// ClassPlaceholder in a Route.Topic expands to the class name.
const ClassPlaceholder = "{class}"

// RouteFor returns the route of class: Routes[class name] if present, else
// Routes["default"], with ClassPlaceholder in Topic expanded. It returns the
// zero Route when neither exists, which Validate rejects.
func (c Config) RouteFor(class envelope.Class) Route {
	r, ok := c.Routes[class.String()]
	if !ok {
		r = c.Routes[DefaultRoute]
	}
	r.Topic = ExpandTopic(r.Topic, class)
	return r
}

// ExpandTopic replaces every ClassPlaceholder in topic with the class name.
func ExpandTopic(topic string, class envelope.Class) string {
	return strings.ReplaceAll(topic, ClassPlaceholder, class.String())
}

// UsesEmbeddedKafka reports whether any class is routed to the embedded
// broker, which is started only then.
func (c Config) UsesEmbeddedKafka() bool {
	for _, class := range envelope.Classes() {
		if c.RouteFor(class).Kafka == EmbeddedCluster {
			return true
		}
	}
	return false
}
