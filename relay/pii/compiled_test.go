package pii

import (
	"bytes"
	"reflect"
	"testing"
)

// piiRichEvent has values each built-in rule matches, near misses, and keys
// that exercise the compiled key ids: upper case, non-ASCII (U+017F folds
// to s, U+212A to k), longer than any selector key, pair lists.
const piiRichEvent = `{"extra":{"Password":"hunter2","pass":"x","SESSION":"s1","ſession":"s2","\u212aey":"k1",` +
	`"card":"4111 1111 1111 1111","card2":"4111-1111-1111-111","iban":"DE89370400440532013000","iban2":"de89370400440532013000",` +
	`"ssn":"078-05-1120","ssn2":"078-05-112","ip":"10.0.0.1 and 10.0.0","ip6":"fe80::1%eth0 ::1 2001:db8::ff00:42:8329",` +
	`"url":"https://user:secret@example.com/x","url2":"//a:b@c","path":"C:\\Users\\jane\\file.txt","path2":"/home/joe/x","path3":"/HOME/Joe/x",` +
	`"pem":"-----BEGIN PRIVATE KEY-----\nMIIBVQ\n-----END PRIVATE KEY-----","msg":"Bearer abc.def","mail":"a@b.co","api_key":{"x":1},` +
	`"a_very_long_key_that_no_selector_names_at_all_and_then_some_more_characters_here":"ApiKey=1",` +
	`"nested":{"cookies":[["sessionid","v"],["Other","w"]],"list":["4111111111111111",["token","t"],["k",null]]},"n":5,"b":true,"z":"\u0000"},` +
	`"request":{"url":"http://u:p@h/","headers":[["Cookie","a=b; sessionid=c"],["Authorization","Bearer xyz"],["User-Agent","Mozilla/5.0 (Users/x)"]],` +
	`"cookies":{"SessionId":"v","csrftoken":"w"},"env":{"REMOTE_ADDR":"192.0.2.1"},"data":{"secret":[1,2],"ok":"fine"}},` +
	`"user":{"ip_address":"192.0.2.2","email":"x@y.z","id":"4111111111111111"},"sdk":{"client_ip":"192.0.2.3"},` +
	`"logentry":{"formatted":"mail a@b.co card 4111111111111111 Bearer t0k","message":"%s"},` +
	`"exception":{"values":[{"value":"in /home/jane/app","stacktrace":{"frames":[{"filename":"/Users/jane/a.js","abs_path":"/home/jane/a.js",` +
	`"vars":{"Token":"t","ſecret":"s","password":"p"}}]}}]},"tags":{"apiKey":"1","ip":"10.1.1.1"},"debug_meta":{"images":[{"code_file":"/home/x/lib"}]}}`

// TestCompiledMatchesReference: a compiled Config (key ids, regex
// prefilters) writes exactly what the reference one, which matches keys by
// their text and runs every regex, writes.
func TestCompiledMatchesReference(t *testing.T) {
	events := []string{piiRichEvent, selectorEvent, string(loadEvent())}
	for _, c := range []struct {
		name     string
		settings DataScrubbingSettings
		pii      string
	}{
		{"defaults", defaults, ""},
		{"data only", DataScrubbingSettings{ScrubData: true, ScrubDefaults: true}, ""},
		{"sensitive and safe fields", DataScrubbingSettings{ScrubData: true, ScrubDefaults: true, SensitiveFields: []string{"card", "Mail"}, ExcludeFields: []string{"extra.iban", "ssn", "not a selector ("}}, ""},
		{"piiConfig", defaults, `{"applications":{"$string":["@email","@creditcard"],"$frame.vars.**":["@password"],"extra.nested.**":["@anything:hash"]}}`},
		{"everything", defaults, `{"applications":{"**":["@common","@anything:hash"],"$string":["@uuid","@mac:replace","@imei","@bearer"]}}`},
		{"paths", DataScrubbingSettings{}, `{"applications":{"extra.nested.list.0 || $frame.* || $exception.stacktrace.frames.0.vars":["@anything:replace"],"!$string && !$object && !$user.*":["@anything:hash"],"$error.value && !extra.**":["@userpath"],"$logentry || $thread || $request.*":["@ip:mask"]}}`},
		{"index", DataScrubbingSettings{}, `{"applications":{"extra.nested.list.0 || $error.value":["@anything:replace"]}}`},
		{"keys", DataScrubbingSettings{}, `{"rules":{"r":{"type":"redact_pair","keyPattern":"(?i)sess"}},"applications":{"extra.session || extra.'ſession' || extra.key || extra.a_very_long_key_that_no_selector_names_at_all_and_then_some_more_characters_here || $http.cookies.sessionid":["@anything:replace"],"**.token || **.'ſecret'":["r","@anything:mask"]}}`},
	} {
		fast, err := Compile(c.settings, []byte(c.pii))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := compileRules(c.settings, []byte(c.pii))
		if err != nil {
			t.Fatal(err)
		}
		if fast.keys == nil || ref.keys != nil {
			t.Fatal("want a compiled and a reference Config")
		}
		for i, ev := range events {
			want, err := ref.ScrubEvent(nil, []byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			got, err := fast.ScrubEvent(nil, []byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s, event %d:\ngot  %s\nwant %s", c.name, i, got, want)
			}
			if i == 0 && bytes.Equal(want, []byte(ev)) {
				t.Errorf("%s: nothing scrubbed in the rich event", c.name)
			}
		}
	}
}

// TestCompileDeterministic: a config compiles to equal Configs every time
// (relay/project compares decoded states with reflect.DeepEqual): tables
// are filled in key order, prefilters shared, never compared as funcs.
func TestCompileDeterministic(t *testing.T) {
	for range 5 {
		a, _ := Compile(defaults, []byte(`{"applications":{"$frame.vars.**":["@password"],"extra.a || extra.b || extra.c":["@ip"]}}`))
		b, _ := Compile(defaults, []byte(`{"applications":{"$frame.vars.**":["@password"],"extra.a || extra.b || extra.c":["@ip"]}}`))
		if !reflect.DeepEqual(a, b) {
			t.Fatal("two compiles of one config differ")
		}
	}
}
