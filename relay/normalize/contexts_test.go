package normalize

import "testing"

// TestContexts has the cases of Relay's normalize/contexts.rs tests: the
// context, given as the members before "type", comes out as want (JSON,
// keys sorted).
func TestContexts(t *testing.T) {
	n := testNormalizer(t)
	for _, tc := range []struct{ name, key, ctx, want string }{
		{"dotnet 4.8 without build", "runtime", `{"raw_description":".NET Framework 4.8.4250.0"}`,
			`{"name":".NET Framework","raw_description":".NET Framework 4.8.4250.0","runtime":".NET Framework 4.8.4250.0","type":"runtime","version":"4.8.4250.0"}`},
		{"dotnet 4.7.2 by build", "runtime", `{"raw_description":".NET Framework 4.7.3056.0","build":"461814"}`,
			`{"build":"461814","name":".NET Framework","raw_description":".NET Framework 4.7.3056.0","runtime":".NET Framework 4.7.2","type":"runtime","version":"4.7.2"}`},
		{"dotnet unknown build", "runtime", `{"raw_description":".NET Framework 200.0","build":999999}`,
			`{"build":999999,"name":".NET Framework","raw_description":".NET Framework 200.0","runtime":".NET Framework 200.0","type":"runtime","version":"200.0"}`},
		{"dotnet core", "runtime", `{"raw_description":".NET Core 2.0"}`,
			`{"name":".NET Core","raw_description":".NET Core 2.0","runtime":".NET Core 2.0","type":"runtime","version":"2.0"}`},
		{"runtime named", "rt", `{"type":"runtime","name":"CPython","version":"3.12.1"}`,
			`{"name":"CPython","runtime":"CPython 3.12.1","type":"runtime","version":"3.12.1"}`},
		{"windows 7", "os", `{"raw_description":"Microsoft Windows NT 6.1.7601 Service Pack 1"}`,
			`{"build":"7601","name":"Windows","os":"Windows 7","raw_description":"Microsoft Windows NT 6.1.7601 Service Pack 1","type":"os","version":"7"}`},
		{"windows 8", "os", `{"raw_description":"Microsoft Windows NT 6.2.9200.0"}`,
			`{"build":"9200","name":"Windows","os":"Windows 8","raw_description":"Microsoft Windows NT 6.2.9200.0","type":"os","version":"8"}`},
		{"windows 10", "os", `{"raw_description":"Microsoft Windows 10.0.16299"}`,
			`{"build":"16299","name":"Windows","os":"Windows 10","raw_description":"Microsoft Windows 10.0.16299","type":"os","version":"10"}`},
		{"windows 11", "os", `{"raw_description":"Microsoft Windows 10.0.22000"}`,
			`{"build":"22000","name":"Windows","os":"Windows 11","raw_description":"Microsoft Windows 10.0.22000","type":"os","version":"11"}`},
		{"windows future", "os", `{"raw_description":"Microsoft Windows 10.1.23456"}`,
			`{"build":"23456","name":"Windows","os":"Windows 10.1.23456","raw_description":"Microsoft Windows 10.1.23456","type":"os","version":"10.1.23456"}`},
		{"unity windows", "os", `{"raw_description":"Windows 10  (10.0.19042) 64bit"}`,
			`{"build":"19042","name":"Windows","os":"Windows 10","raw_description":"Windows 10  (10.0.19042) 64bit","type":"os","version":"10"}`},
		{"unreal windows", "os", `{"raw_description":"Windows 10"}`,
			`{"name":"Windows","os":"Windows 10","raw_description":"Windows 10","type":"os","version":"10"}`},
		{"unix", "os", `{"raw_description":"Unix 17.5.0.0"}`,
			`{"kernel_version":"17.5.0","name":"Unix","os":"Unix","raw_description":"Unix 17.5.0.0","type":"os"}`},
		{"centos", "os", `{"raw_description":"Unix 3.10.0.693"}`,
			`{"kernel_version":"3.10.0.693","name":"Unix","os":"Unix","raw_description":"Unix 3.10.0.693","type":"os"}`},
		{"linux uname", "os", `{"raw_description":"Linux 3.10.0-693.21.1.el7.x86_64 #1 SMP Wed Mar 7 19:03:37 UTC 2018"}`,
			`{"kernel_version":"3.10.0","name":"Linux","os":"Linux","raw_description":"Linux 3.10.0-693.21.1.el7.x86_64 #1 SMP Wed Mar 7 19:03:37 UTC 2018","type":"os"}`},
		{"linux distro", "os", `{"raw_description":"Linux 5.11 Ubuntu 20.04 64bit"}`,
			`{"kernel_version":"5.11","name":"Ubuntu","os":"Ubuntu 20.04","raw_description":"Linux 5.11 Ubuntu 20.04 64bit","type":"os","version":"20.04"}`},
		{"macos with build", "os", `{"raw_description":"Mac OS X 10.14.2 (18C54)"}`,
			`{"build":"18C54","name":"macOS","os":"macOS 10.14.2","raw_description":"Mac OS X 10.14.2 (18C54)","type":"os","version":"10.14.2"}`},
		{"macos without build", "os", `{"raw_description":"Mac OS X 10.14.2"}`,
			`{"name":"macOS","os":"macOS 10.14.2","raw_description":"Mac OS X 10.14.2","type":"os","version":"10.14.2"}`},
		{"ios", "os", `{"raw_description":"iOS 17.5.1"}`,
			`{"name":"iOS","os":"iOS 17.5.1","raw_description":"iOS 17.5.1","type":"os","version":"17.5.1"}`},
		{"ipados", "os", `{"raw_description":"iPadOS 15.1"}`,
			`{"name":"iPadOS","os":"iPadOS 15.1","raw_description":"iPadOS 15.1","type":"os","version":"15.1"}`},
		{"android", "os", `{"raw_description":"Android OS 11 / API-30 (RP1A.201005.001/2107031736)"}`,
			`{"name":"Android","os":"Android 11","raw_description":"Android OS 11 / API-30 (RP1A.201005.001/2107031736)","type":"os","version":"11"}`},
		{"nintendo", "os", `{"raw_description":"Nintendo Switch"}`,
			`{"name":"Nintendo OS","os":"Nintendo OS","raw_description":"Nintendo Switch","type":"os"}`},
		{"name not overwritten", "os", `{"name":"Properly defined name","raw_description":"Linux 4.4.0"}`,
			`{"name":"Properly defined name","os":"Properly defined name","raw_description":"Linux 4.4.0","type":"os"}`},
		{"version not overwritten", "os", `{"version":"Properly defined version","raw_description":"Linux 4.4.0"}`,
			`{"raw_description":"Linux 4.4.0","type":"os","version":"Properly defined version"}`},
		{"no name", "os", `{}`, `{"type":"os"}`},
		{"browser", "browser", `{"name":"Firefox","version":"120.0"}`, `{"browser":"Firefox 120.0","name":"Firefox","type":"browser","version":"120.0"}`},
		{"other", "app", `{"app_name":"x"}`, `{"app_name":"x","type":"app"}`},
		{"response json", "response", `{"data":"{\"a\":1}","headers":{"Content-Type":"text/plain"}}`,
			`{"data":{"a":1},"headers":[["Content-Type","text/plain"]],"inferred_content_type":"application/json","type":"response"}`},
		{"response header type", "response", `{"data":"a=b","headers":[["content-type","text/html; charset=utf-8"]]}`,
			`{"data":"a=b","headers":[["content-type","text/html; charset=utf-8"]],"inferred_content_type":"text/html","type":"response"}`},
		{"response set-cookie", "response", `{"headers":{"Set-Cookie":"a=b; c=d","Server":"x"}}`,
			`{"cookies":[["a","b"],["c","d"]],"headers":[["Server","x"]],"type":"response"}`},
		{"response set-cookie attributes kept", "response", `{"headers":{"Set-Cookie":"a=b; HttpOnly"}}`,
			`{"headers":[["Set-Cookie","a=b; HttpOnly"]],"type":"response"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Received: recv}
			out, err := n.Event(nil, []byte(`{"contexts":{"`+tc.key+`":`+tc.ctx+`}}`), &in)
			if err != nil {
				t.Fatal(err)
			}
			if got := js(get(decode(t, out), "contexts."+tc.key)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			again, err := n.Event(nil, out, &in)
			if err != nil || string(again) != string(out) {
				t.Errorf("second pass differs (%v):\n%s\n%s", err, out, again)
			}
		})
	}
}
