package envelope

import "testing"

func TestTraceID(t *testing.T) {
	const id = "771a43a4192642f0b136d5159a501700"
	for _, tc := range []struct {
		name, env, want string
	}{
		{"dsc", `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","trace":{"public_key":"k","trace_id":"` + id + `","sample_rate":"0.5"}}` + "\n{\"type\":\"transaction\"}\n{}", id},
		{"dsc first", `{"trace":{"trace_id":"` + id + `"},"dsn":"x"}`, id},
		{"spaces", `{ "trace" : { "sample_rand":"0.1", "trace_id" : "` + id + `" } }` + "\n", id},
		{"no dsc", `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n{}", ""},
		{"nested elsewhere", `{"x":{"trace":{"trace_id":"` + id + `"}}}`, ""},
		{"not a string", `{"trace":{"trace_id":12}}`, ""},
		{"empty", `{"trace":{"trace_id":""}}`, ""},
		{"escaped", `{"trace":{"trace_id":"a\u0062"}}`, ""},
		{"trace null", `{"trace":null}`, ""},
		{"broken header", `{"trace":{"trace_id":"` + id + `"`, ""},
		{"too long", `{"trace":{"trace_id":"` + id + id + `x"}}`, ""},
		{"empty body", ``, ""},
	} {
		if got := string(TraceID([]byte(tc.env))); got != tc.want {
			t.Errorf("%s: TraceID = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTraceIDDoesNotAllocate(t *testing.T) {
	env := []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","trace":{"public_key":"k","trace_id":"771a43a4192642f0b136d5159a501700"}}` + "\n{}\n{}")
	if n := testing.AllocsPerRun(100, func() { TraceID(env) }); n != 0 {
		t.Errorf("TraceID allocates %v times", n)
	}
}

func BenchmarkTraceID(b *testing.B) {
	env := []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2025-03-01T12:30:00.5Z","sdk":{"name":"sentry.python","version":"2.19.0"},"trace":{"environment":"production","release":"app@1.2.3","public_key":"a7c3e9f1b5d24680ace13579bdf02468","trace_id":"771a43a4192642f0b136d5159a501700","sample_rate":"0.25","sample_rand":"0.1234","sampled":"true","transaction":"/api/orders"}}` + "\n{\"type\":\"transaction\"}\n{}\n")
	b.SetBytes(int64(len(env)))
	for b.Loop() {
		if TraceID(env) == nil {
			b.Fatal("no trace id")
		}
	}
}
