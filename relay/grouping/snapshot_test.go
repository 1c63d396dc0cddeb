package grouping

import "testing"

// TestSentrySnapshots asserts the hashes Sentry's own grouping snapshot
// tests (tests/sentry/grouping/snapshots/test_variants, config
// newstyle@2023_01_11) record for their inputs; the inputs here keep the
// fields grouping reads.
func TestSentrySnapshots(t *testing.T) {
	cases := []struct {
		name, event, primary string
		variants             map[string]string
	}{
		{"frame_ignores_filename_if_abs_path_is_http",
			`{"platform":"javascript","stacktrace":{"frames":[{"function":"test","abs_path":"http://foo.com/foo.py","filename":"/foo.py"}]}}`,
			"098f6bcd4621d373cade4e832627b4f6", map[string]string{"app": "", "system": "098f6bcd4621d373cade4e832627b4f6"}},
		{"frame_ignores_filename_if_http",
			`{"platform":"javascript","stacktrace":{"frames":[{"function":"test","abs_path":"http://foo.com/foo.py","context_line":"hello world","filename":"/foo.py"}]}}`,
			"64a0e0a34d99dce03a8c5a4c237a4b5a", map[string]string{"app": "", "system": "64a0e0a34d99dce03a8c5a4c237a4b5a"}},
		{"frame_sanitizes_erb_templates",
			`{"platform":"ruby","stacktrace":{"frames":[{"function":"_foo_html_erb__3327151541118998292_70361296749460","abs_path":"foo.html.erb","filename":"foo.html.erb"}]}}`,
			"4067a71d7098866f87c746a57a77b2bb", map[string]string{"app": "", "system": "4067a71d7098866f87c746a57a77b2bb"}},
		{"go_pkg_mod",
			`{"platform":"go","exception":{"values":[{"type":"*pq.Error","value":"pq: cannot cast jsonb null to type integer","stacktrace":{"frames":[
			 {"function":"FuncJob.Run","module":"github.com/robfig/cron/v3","filename":"/go/pkg/mod/github.com/robfig/cron/v3@v3.0.0/cron.go","abs_path":"/go/pkg/mod/github.com/robfig/cron/v3@v3.0.0/cron.go"},
			 {"function":"background.func2","module":"main","filename":"/my_app/main.go","abs_path":"/my_app/main.go","in_app":true}]}}]}}`,
			"4b8bbc500bd2cabfcadc1f1be867e0bb", map[string]string{"app": "4b8bbc500bd2cabfcadc1f1be867e0bb", "system": "348fc4026c9fa11ffba8fbfa80a134c9"}},
		{"hybrid_fingerprint_base",
			`{"fingerprint":["{{ default }}","dogs are great"],"exception":{"values":[{"type":"FailedToFetchError","value":"FailedToFetchError: Charlie didn't bring the ball back!"}]},"platform":"javascript"}`,
			"e3d593b4335190212ca7c18b8e967fb1", map[string]string{"app": "e3d593b4335190212ca7c18b8e967fb1"}},
		{"custom_fingerprint",
			`{"platform":"python","fingerprint":["celery","SoftTimeLimitExceeded","sentry.tasks.store.process_event"],"exception":{"values":[{"type":"SoftTimeLimitExceeded","value":"SoftTimeLimitExceeded()","stacktrace":{"frames":[
			 {"function":"_wrapped","module":"sentry.tasks.base","filename":"sentry/tasks/base.py","abs_path":"/usr/src/sentry/tasks/base.py","context_line":"    result = func(*args, **kwargs)","in_app":true}]}}]}}`,
			"f30afa00b85f5cac5ee0bce01b31f08d", map[string]string{"custom-fingerprint": "f30afa00b85f5cac5ee0bce01b31f08d", "app": "", "system": ""}},
		{"javascript_message_parameterization",
			`{"platform":"javascript","logentry":{"formatted":"testing testing 1, 2, 3"}}`,
			"f9e47f16e3b9770b440157179c47bf7a", map[string]string{"default": "f9e47f16e3b9770b440157179c47bf7a"}},
		{"csp",
			`{"platform":"other","csp":{"blocked_uri":"https://YYY","violated_directive":"script-src","effective_directive":"script-src"},"logentry":{"formatted":"Blocked 'script' from 'YYY'"}}`,
			"666766514295bb52812324097cdaf53e", map[string]string{"default": "666766514295bb52812324097cdaf53e"}},
		{"expectct",
			`{"expectct":{"date_time":"2014-04-06T13:00:50Z","hostname":"example.com","port":443}}`,
			"3d2933f4b5ec459ec8d569a398fd328c", map[string]string{"default": "3d2933f4b5ec459ec8d569a398fd328c"}},
		{"checksum_no_regex_match",
			`{"checksum":"not a legit checksum","message":"Dogs are great!"}`,
			"not a legit checksum", map[string]string{"checksum": "not a legit checksum", "hashed-checksum": "de46d023e69b171b90ccf3ebca7aede4"}},
		// The stored 2023 snapshot of frame_uses_context_line_over_function
		// shows only filename and function: its input then had neither the
		// context line nor the source map (the newer
		// exception_javascript_no_in_app snapshot shows a source-mapped
		// frame grouping by context line, function ignored).
		{"frame_uses_context_line_over_function (2023 input)",
			`{"platform":"javascript","stacktrace":{"frames":[{"function":"bar","abs_path":"foo.py","lineno":1,"filename":"foo.py"}]}}`,
			"fb73cb54ced59b1c0c60d9bb40b7336b", map[string]string{"app": "", "system": "fb73cb54ced59b1c0c60d9bb40b7336b"}},
		{"exception_javascript_no_in_app (source-mapped frames)",
			`{"platform":"javascript","exception":{"values":[{"type":"TypeError","value":"Cannot read property 'submitError' of null","stacktrace":{"frames":[
			 {"module":"app/components/modals/createTeamModal","filename":"./app/components/modals/createTeamModal.jsx","abs_path":"webpack:///./app/components/modals/createTeamModal.jsx","context_line":"        onError(err);","in_app":false,"data":{"sourcemap":"https://example.com/app.js.map"}},
			 {"module":"app/views/settings/components/forms/form","filename":"./app/views/settings/components/forms/form.jsx","abs_path":"webpack:///./app/views/settings/components/forms/form.jsx","function":"onError","context_line":"    this.model.submitError(error);","in_app":false,"data":{"sourcemap":"https://example.com/app.js.map"}}]}}]}}`,
			"26552f86ca2368e708afa1df6effc1c5", map[string]string{"app": "", "system": "26552f86ca2368e708afa1df6effc1c5"}},
		{"javascript_xbrowser_chrome",
			`{"platform":"javascript","fingerprint":["{{ default }}"],"exception":{"values":[{"type":"Error","value":"bad","stacktrace":{"frames":[
			 {"abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":49,"colno":19,"in_app":false},
			 {"function":"Foo.testMethod","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":43,"colno":7,"in_app":false},
			 {"function":"aha","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":38,"colno":5,"in_app":false},
			 {"function":"eval","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":1,"colno":1,"in_app":false},
			 {"function":"test","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":32,"colno":23,"in_app":false},
			 {"function":"Array.map","abs_path":"<anonymous>","in_app":false,"filename":"<anonymous>"},
			 {"abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":33,"colno":17,"in_app":false},
			 {"function":"Object.callback","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":24,"colno":7,"in_app":false},
			 {"function":"callAnotherThing","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":19,"colno":16,"in_app":false},
			 {"function":"Object.aha","abs_path":"file:///tmp/test.html","filename":"/tmp/test.html","lineno":18,"colno":13,"in_app":false}]}}]}}`,
			"c63e8727af1a8fe75872b6a762797113", map[string]string{"app": "", "system": "c63e8727af1a8fe75872b6a762797113"}},
		{"javascript_polyfills",
			`{"platform":"javascript","exception":{"values":[{"type":"Error","value":"bad","stacktrace":{"frames":[
			 {"function":"e.<anonymous>","module":"@babel/runtime/helpers/asyncToGenerator","lineno":21,"colno":12},
			 {"function":"listener","module":"core-js/internals/task","lineno":46,"colno":3},
			 {"function":"_.sent","module":"tslib/tslib.es6","lineno":81,"colno":77}]}}]}}`,
			"be36642f41f047346396f018f62375d3", map[string]string{"app": "be36642f41f047346396f018f62375d3", "system": ""}},
		{"frame_ignores_sun_java_generated_constructors",
			`{"stacktrace":{"frames":[{"function":"invoke","module":"sun.reflect.GeneratedSerializationConstructorAccessor1"}]},"platform":"java"}`,
			"07d1a8e5728b3c4c7aa8b8273fd0e753", map[string]string{"app": "", "system": "07d1a8e5728b3c4c7aa8b8273fd0e753"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := hashOf(t, c.event)
			want(t, r, c.primary, c.variants)
		})
	}
}
