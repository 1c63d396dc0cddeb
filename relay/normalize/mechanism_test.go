package normalize

import "testing"

// TestMechanism has the cases of Relay's mechanism.rs and protocol
// mechanism tests, plus the missing type-and-value check of exceptions.
func TestMechanism(t *testing.T) {
	n := testNormalizer(t)
	const linux, darwin, windows = `"contexts":{"os":{"name":"Linux"}},`, `"debug_meta":{"system_sdk":{"sdk_name":"iOS"}},`, `"contexts":{"os":{"name":"Windows"}},`
	for _, tc := range []struct {
		name, hint, mech string
		want             string // JSON of the mechanism ("null": removed)
	}{
		{"no hint keeps errno", "", `{"type":"generic","meta":{"errno":{"number":2}}}`, `{"meta":{"errno":{"number":2}},"type":"generic"}`},
		{"linux errno", linux, `{"type":"generic","meta":{"errno":{"number":2}}}`, `{"meta":{"errno":{"name":"ENOENT","number":2}},"type":"generic"}`},
		{"errno name kept", linux, `{"type":"generic","meta":{"errno":{"number":2,"name":"OVERRIDDEN"}}}`, `{"meta":{"errno":{"name":"OVERRIDDEN","number":2}},"type":"generic"}`},
		{"darwin errno", darwin, `{"type":"generic","meta":{"errno":{"number":35}}}`, `{"meta":{"errno":{"name":"EAGAIN","number":35}},"type":"generic"}`},
		{"windows errno", windows, `{"type":"generic","meta":{"errno":{"number":80}}}`, `{"meta":{"errno":{"name":"STRUNCATE","number":80}},"type":"generic"}`},
		{"linux signal", linux, `{"type":"generic","meta":{"signal":{"number":11,"code":0}}}`, `{"meta":{"signal":{"code":0,"name":"SIGSEGV","number":11}},"type":"generic"}`},
		{"darwin signal and code", darwin, `{"type":"generic","meta":{"signal":{"number":11,"code":0}}}`, `{"meta":{"signal":{"code":0,"code_name":"SEGV_NOOP","name":"SIGSEGV","number":11}},"type":"generic"}`},
		{"windows no signals", windows, `{"type":"generic","meta":{"signal":{"number":11}}}`, `{"meta":{"signal":{"number":11}},"type":"generic"}`},
		{"mach without hint", "", `{"type":"generic","meta":{"mach_exception":{"exception":1,"code":1,"subcode":8}}}`, `{"meta":{"mach_exception":{"code":1,"exception":1,"name":"EXC_BAD_ACCESS","subcode":8}},"type":"generic"}`},
		{"legacy", "", `{"posix_signal":{"name":"SIGSEGV","code_name":"SEGV_NOOP","signal":11,"code":0},"relevant_address":"0x1","mach_exception":{"exception":1,"exception_name":"EXC_BAD_ACCESS","subcode":8,"code":1}}`,
			`{"data":{"relevant_address":"0x1"},"meta":{"mach_exception":{"code":1,"exception":1,"name":"EXC_BAD_ACCESS","subcode":8},"signal":{"code":0,"code_name":"SEGV_NOOP","name":"SIGSEGV","number":11}},"type":"generic"}`},
		{"legacy names filled", darwin, `{"posix_signal":{"signal":6}}`, `{"meta":{"signal":{"name":"SIGABRT","number":6}},"type":"generic"}`},
		{"empty removed", "", `{}`, "null"},
		{"not an object", "", `"x"`, "null"},
		{"help link kept", "", `{"type":"t","help_link":"https://example.com/h"}`, `{"help_link":"https://example.com/h","type":"t"}`},
		{"help link invalid", "", `{"type":"t","help_link":"example.com/h"}`, `{"type":"t"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(`{`+tc.hint+`"exception":{"values":[{"type":"E","mechanism":`+tc.mech+`}]}}`), &in)
			if err != nil {
				t.Fatal(err)
			}
			if got := js(get(decode(t, out), "exception.values.0.mechanism")); got != tc.want {
				t.Errorf("got  %s\nwant %s\n%s", got, tc.want, out)
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs (%v):\n%s\n%s", err, out, again)
			}
		})
	}
}

func TestExceptionWithoutTypeOrValue(t *testing.T) {
	n := testNormalizer(t)
	out, err := n.Event(nil, []byte(`{"exception":[{"type":"A"},{"stacktrace":{"frames":[]}},{"value":0}]}`), &Input{Received: recv})
	if err != nil {
		t.Fatal(err)
	}
	ev := decode(t, out)
	for path, want := range map[string]string{
		"exception.values.0":            `{"type":"A"}`,
		"exception.values.1":            "null",
		"exception.values.2":            `{"value":0}`,
		"_meta.exception.values.1..err": `[["missing_attribute",{"attribute":"type or value"}]]`,
		"_meta.exception.values.1..val": `{"stacktrace":{"frames":[]}}`,
	} {
		if got := js(get(ev, path)); got != want {
			t.Errorf("%s = %s, want %s\n%s", path, got, want, out)
		}
	}
	if again, _ := n.Event(nil, out, &Input{Received: recv}); string(again) != string(out) {
		t.Errorf("second pass differs:\n%s\n%s", out, again)
	}
}
