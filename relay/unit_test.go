package relay

import (
	"bytes"
	"compress/gzip"
	"errors"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/envelope"
)

func TestRecordRoundTrip(t *testing.T) {
	in := record{
		Class: envelope.ClassTransaction, Items: 3, ReceivedAt: 1764064800123456789, ProjectID: 42,
		PublicKey: []byte("a7c3e9f1b5d24680ace13579bdf02468"), Client: []byte("sentry.go/0.50.0"),
		ClientIP: []byte("10.1.2.3, 127.0.0.1"), Origin: []byte("https://app.example"),
	}
	env := []byte("{}\n{\"type\":\"transaction\",\"length\":2}\n{}\n")
	b := append(appendRecordHeader(nil, &in), env...)
	var out record
	if err := decodeRecord(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Class != in.Class || out.Items != 3 || out.ReceivedAt != in.ReceivedAt || out.ProjectID != 42 ||
		string(out.PublicKey) != string(in.PublicKey) || string(out.Client) != string(in.Client) ||
		string(out.ClientIP) != string(in.ClientIP) || string(out.Origin) != string(in.Origin) || !bytes.Equal(out.Envelope, env) {
		t.Fatalf("round trip: %+v", out)
	}
	// A version 1 record (written before origins were kept) still reads.
	v1 := bytes.Clone(b[:len(b)-len(env)-1-len(in.Origin)])
	v1[0] = 1
	v1 = append(v1, env...)
	if err := decodeRecord(v1, &out); err != nil || out.Origin != nil || !bytes.Equal(out.Envelope, env) || string(out.ClientIP) != string(in.ClientIP) {
		t.Fatalf("version 1 record: %v %+v", err, out)
	}
	for cut := range len(b) - len(env) {
		if err := decodeRecord(b[:cut], &out); err == nil {
			t.Fatalf("a record cut at %d bytes decoded", cut)
		}
	}
	bad := bytes.Clone(b)
	bad[1] = byte(envelope.NumClasses)
	if err := decodeRecord(bad, &out); !errors.Is(err, errBadRecord) {
		t.Fatalf("invalid class decoded: %v", err)
	}
}

func TestParseAuth(t *testing.T) {
	const key = "a7c3e9f1b5d24680ace13579bdf02468"
	cases := []struct {
		name    string
		header  [2]string
		query   string
		wantKey string
		wantErr error
		client  string
	}{
		{"x-sentry-auth", [2]string{"X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + key}, "", key, nil, "sentry.go/0.50.0"},
		{"sentry-cli timestamp", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key + ", sentry_version=7, sentry_timestamp=1764064800.5, sentry_client=sentry-cli/x86_64"}, "", key, nil, "sentry-cli/x86_64"},
		{"authorization sentry", [2]string{"Authorization", "Sentry sentry_key=" + key + ", sentry_version=7"}, "", key, nil, ""},
		{"basic", [2]string{"Authorization", "Basic YTdjM2U5ZjFiNWQyNDY4MGFjZTEzNTc5YmRmMDI0Njg6"}, "", key, nil, ""},
		{"query", [2]string{}, "sentry_version=7&sentry_key=" + key + "&sentry_client=sentry.javascript.node%2F11.12.0", key, nil, "sentry.javascript.node/11.12.0"},
		{"version 7.0", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key + ", sentry_version=7.0"}, "", key, nil, ""},
		{"nothing", [2]string{}, "", "", errAuthMissing, ""},
		{"both forms", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key}, "sentry_key=" + key, "", errAuthMultiple, ""},
		{"version 8", [2]string{"X-Sentry-Auth", "Sentry sentry_key=" + key + ", sentry_version=8"}, "", "", errAuthVersion, ""},
		{"not sentry", [2]string{"X-Sentry-Auth", "Bearer abc"}, "", "", errAuthInvalid, ""},
		{"bearer", [2]string{"Authorization", "Bearer abc"}, "", "", errAuthInvalid, ""},
		{"no key", [2]string{"X-Sentry-Auth", "Sentry sentry_version=7"}, "", "", errAuthMissing, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req fasthttp.Request
			req.SetRequestURI("/api/1/envelope/?" + c.query)
			if c.header[0] != "" {
				req.Header.Set(c.header[0], c.header[1])
			}
			var a auth
			err := parseAuth(&req, &a)
			if !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err == nil && (string(a.PublicKey) != c.wantKey || string(a.Client) != c.client) {
				t.Fatalf("key %q client %q", a.PublicKey, a.Client)
			}
		})
	}
}

func TestDecodeBody(t *testing.T) {
	plain := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	var gz, br bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	bw := brotli.NewWriter(&br)
	bw.Write(plain)
	bw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(plain, nil)
	enc.Close()

	for _, c := range []struct {
		enc  string
		body []byte
	}{{"", plain}, {"identity", plain}, {"UTF-8", plain}, {"gzip", gz.Bytes()}, {"x-gzip", gz.Bytes()}, {"br", br.Bytes()}, {"zstd", zs}} {
		got, err := decodeBody(nil, []byte(c.enc), c.body, len(plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%q: err %v, %d bytes", c.enc, err, len(got))
		}
		if _, err := decodeBody(nil, []byte(c.enc), c.body, len(plain)-1); !errors.Is(err, errBodyTooLarge) {
			t.Errorf("%q one byte over the limit: err %v", c.enc, err)
		}
	}
	if _, err := decodeBody(nil, []byte("lzma"), plain, 1<<20); !errors.Is(err, errBadEncoding) {
		t.Errorf("unknown encoding: %v", err)
	}
	if _, err := decodeBody(nil, []byte("gzip"), plain[:100], 1<<20); err == nil {
		t.Errorf("garbage gzip decoded")
	}
}

func TestOriginAllowed(t *testing.T) {
	cases := []struct {
		domains []string
		origin  string
		want    bool
	}{
		{[]string{"*"}, "https://any.example", true},
		{[]string{}, "https://any.example", false},
		{[]string{}, "", true},
		{[]string{"app.example"}, "https://app.example:8443", true},
		{[]string{"app.example"}, "https://evil.example", false},
		{[]string{"*.example"}, "https://a.b.example/path?q", true},
		{[]string{"*.example"}, "https://example.com", false},
	}
	for _, c := range cases {
		var req fasthttp.Request
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if got := originAllowed(c.domains, requestOrigin(&req)); got != c.want {
			t.Errorf("originAllowed(%v, %q) = %v", c.domains, c.origin, got)
		}
	}
}

func TestStreamMapping(t *testing.T) {
	r := &Relay{partitions: 4}
	for _, c := range envelope.Classes() {
		s := r.stream(c, []byte("a7c3e9f1b5d24680ace13579bdf02468"))
		if StreamClass(s) != c || uint32(s)&0xff >= 4 {
			t.Fatalf("class %s → stream %d → %s", c, s, StreamClass(s))
		}
		if r.stream(c, []byte("a7c3e9f1b5d24680ace13579bdf02468")) != s {
			t.Fatal("stream mapping is not stable")
		}
	}
}
