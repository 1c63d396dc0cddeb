package testutil

import (
	"encoding/json"
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

// JSErrorEnvelope is a ~5 KB JavaScript error envelope shaped as the load
// tool's (cmd/baton-load, syntheticEnvelope) and real SDKs' send theirs:
// in-app frames carry pre_context, context_line and post_context, and
// strings have the escapes encoding/json writes (`<anonymous>` as
// `\u003canonymous\u003e`) and some a quote (`\"`). ErrorEnvelope's frames
// are flat scalars only, which processing has a shortcut for; this is
// what the shortcut has to handle to matter.
func JSErrorEnvelope() []byte {
	files := []string{"/app/src/checkout.js", "/app/src/payments/stripe.js", "/app/node_modules/express/lib/router/index.js",
		"node:internal/process/task_queues", "/app/src/server.js", "/app/src/db/users.js"}
	functions := []string{"chargeCard", "Router.handle", "processTicksAndRejections", "Layer.handle [as handle_request]",
		"next", "CheckoutService.submit", "async Promise.all", "Object.<anonymous>", "Module._compile", "loadUser"}
	var frames []string
	for i := 0; ; i++ {
		file, fn := files[i*5%len(files)], functions[i*7%len(functions)]
		module := strings.TrimSuffix(file[strings.LastIndexByte(file, '/')+1:], ".js")
		inApp := strings.HasPrefix(file, "/app/src")
		f := fmt.Sprintf(`{"filename":%s,"module":%s,"function":%s,"lineno":%d,"colno":%d,"in_app":%t`,
			jsonString(file), jsonString(module), jsonString(fn), 1+i*37%2000, 1+i*11%80, inApp)
		if inApp {
			f += `,"pre_context":["  const amount = order.total;","  if (!customer) {","    throw new Error(\"no customer\");","  }"],` +
				`"context_line":` + jsonString("  const res = await "+fn+"(customer.token, amount);") +
				`,"post_context":["  order.status = res.status;","  return res;","}"]`
		}
		frames = append(frames, f+"}")
		if i >= 4 && len(strings.Join(frames, ",")) > 4200 {
			break
		}
	}
	event := `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","timestamp":1795600800.123,"platform":"node","level":"error","environment":"production","release":"shop-web@2.14.0","server_name":"web-7",` +
		`"tags":{"region":"eu-west-1","route":"/checkout"},"contexts":{"runtime":{"name":"node","version":"v20.20.0"},"os":{"name":"linux","kernel_version":"6.18.0"}},` +
		`"exception":{"values":[{"type":"TypeError","value":"cannot read properties of undefined (reading 'token')","mechanism":{"type":"onuncaughtexception","handled":false},"stacktrace":{"frames":[` +
		strings.Join(frames, ",") + `]}}]},"sdk":{"name":"sentry.javascript.node","version":"11.12.0"}}`
	return []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2026-11-25T10:00:00.000Z","sdk":{"name":"sentry.javascript.node","version":"11.12.0"}}` +
		"\n{\"type\":\"event\"}\n" + event + "\n")
}

// jsonString is s as encoding/json writes it (HTML characters escaped).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
