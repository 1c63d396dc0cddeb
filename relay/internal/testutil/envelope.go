package testutil

import (
	"fmt"
	"strings"
)

// ErrorEnvelope is a ~5 KB JavaScript error envelope with a 40-frame stack
// trace, like the load tool's: the size benchmarks and memory figures are
// quoted for.
func ErrorEnvelope() []byte {
	var frames []string
	for i := range 40 {
		frames = append(frames, fmt.Sprintf(`{"filename":"app:///static/js/main.%04x.js","function":"handler%d","lineno":%d,"colno":%d,"in_app":true}`, i*7919, i, 100+i, 7+i))
	}
	event := `{"platform":"javascript","level":"error","release":"web@2.3.1","environment":"production","exception":{"values":[{"type":"TypeError","value":"Cannot read properties of undefined (reading 'id')","stacktrace":{"frames":[` +
		strings.Join(frames, ",") + `]}}]},"tags":{"browser":"Chrome 131"},"user":{"ip_address":"{{auto}}"}}`
	return []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2026-11-25T10:00:00.000Z","sdk":{"name":"sentry.javascript.browser","version":"11.12.0"}}` +
		"\n{\"type\":\"event\"}\n" + event + "\n")
}
