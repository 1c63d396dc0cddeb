package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLanesValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml []string
		want []string
	}{
		{"chain", []string{
			"lanes:",
			"  topics:",
			"    a: {next: a.slow, handler: {url: 'http://h/'}}",
			"    a.slow: {next: a, handler: {url: 'http://h/'}}",
			"    b: {next: b.slwo, handler: {url: 'http://h/'}}",
			"    b.slow: {handler: {command: [handle]}}",
		}, []string{
			`test.yaml:3: lanes.topics.a.next: "a.slow" leads back to "a": lanes must end`,
			`test.yaml:4: lanes.topics.a.slow.next: "a" leads back to "a.slow": lanes must end`,
			`test.yaml:5: lanes.topics.b.next: "b.slwo" is not a lane (a key of lanes.topics) (did you mean "b.slow"?)`,
		}},
		{"lane fields", []string{
			"lanes:",
			"  kafka: nowhere",
			"  session_timeout: 0s",
			"  metrics_listen: 'localhost'",
			"  topics:",
			"    'bad topic': {deadline: 0s, concurrency: 0, max_attempts: 0, rate_limit: -1, pause_next_lag: -1, dead_letter_topic: '', handler: {}}",
			"    both: {dead_letter_topic: both, handler: {url: 'ftp://x', command: [x]}}",
			"    url: {handler: {url: 'ftp://x'}}",
		}, []string{
			`test.yaml:2: lanes.kafka: "nowhere" is neither "embedded" nor a name of kafka.clusters`,
			`test.yaml:3: lanes.session_timeout: must be a duration greater than 0, e.g. "30s"`,
			`test.yaml:4: lanes.metrics_listen: "localhost" is not a host:port address: missing port in address`,
			`test.yaml:6: lanes.topics.bad topic: topic "bad topic" contains ' '; Kafka topic names allow only a-z, A-Z, 0-9, '.', '_' and '-'`,
			`test.yaml:6: lanes.topics.bad topic.deadline: must be a duration greater than 0, e.g. "30s"`,
			`test.yaml:6: lanes.topics.bad topic.concurrency: must be greater than 0`,
			`test.yaml:6: lanes.topics.bad topic.max_attempts: must be greater than 0`,
			`test.yaml:6: lanes.topics.bad topic.rate_limit: must be 0 (unlimited) or more calls per second`,
			`test.yaml:6: lanes.topics.bad topic.pause_next_lag: must not be negative (0 is off)`,
			`test.yaml:6: lanes.topics.bad topic.dead_letter_topic: "" is empty`,
			`test.yaml:6: lanes.topics.bad topic.handler: needs a url or a command`,
			`test.yaml:7: lanes.topics.both.dead_letter_topic: "both" is a lane; dead letters are not handled again`,
			`test.yaml:7: lanes.topics.both.handler: has both a url and a command; keep one`,
			`test.yaml:8: lanes.topics.url.handler.url: "ftp://x" must be an absolute http:// or https:// URL`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := parse(t, tc.yaml...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// The defaults.lane template fills every lane; chains start where no lane
// escalates to.
func TestLanesTemplateAndChain(t *testing.T) {
	c, probs := parse(t,
		"defaults: {lane: {deadline: 5s, handler: {url: 'http://h/'}}}",
		"lanes:",
		"  topics:",
		"    e: {next: e.slow}",
		"    e.slow: {next: e.slower, deadline: 60s}",
		"    e.slower: {deadline: 30m}",
		"    t: {}",
	)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if got := c.Lanes.Topics["e"]; got.Deadline != 5*time.Second || got.Handler.URL != "http://h/" || got.Concurrency != 16 || got.DeadLetterTopic != "baton.dead_letter" {
		t.Errorf("lane e = %+v, want the template's deadline and url and the defaults", got)
	}
	if got := c.Lanes.Topics["e.slower"].Deadline; got != 30*time.Minute {
		t.Errorf("e.slower deadline %s", got)
	}
	want := [][]string{{"e", "e.slow", "e.slower"}, {"t"}}
	if got := c.LaneChain(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("LaneChain() = %v, want %v", got, want)
	}
	if got := c.LaneBrokers(); !slices.Equal(got, []string{"127.0.0.1:9092"}) {
		t.Errorf("LaneBrokers() = %v, want the embedded broker", got)
	}
}
