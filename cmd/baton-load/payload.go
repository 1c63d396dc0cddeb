package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// idPlaceholder marks where event ids go in a synthetic template. '@' never
// appears elsewhere in the generated JSON, so the offsets found are exact.
const idPlaceholder = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@"

// keyPlaceholder marks where the public key goes in a synthetic template (the
// envelope header's dsn and trace.public_key); '~' appears nowhere else.
const keyPlaceholder = "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"

// authPrefix is the synthetic requests' X-Sentry-Auth value up to the key,
// which ends the value so that --keys random can stamp it in place.
const authPrefix = "Sentry sentry_version=7, sentry_client=baton-load/1.0, sentry_key="

// Key modes accepted by --keys.
const (
	keysFixed  = "fixed"
	keysRandom = "random"
)

// Mix names accepted by --mix.
const (
	mixSynthetic = "synthetic"
	mixFixtures  = "fixtures"
	mixBoth      = "both"
)

// payload is one request the load generator can send. Bodies are shared
// read-only between workers, except synthetic ones, which each worker copies
// so that it can stamp its own event ids into them.
type payload struct {
	name       string
	method     string
	uri        string      // path and query, e.g. /api/1/envelope/?sentry_key=...
	headers    [][2]string // in send order, names in the case to send
	body       []byte      // the wire bytes (gzip where the client sent gzip)
	chunked    bool        // send with Transfer-Encoding: chunked
	idOffsets  []int       // synthetic only: where the 32-hex event id sits in body
	keyOffsets []int       // synthetic only: where the 32-hex public key sits in body
	// seriesOffsets (statsd payloads): where each line's 16-hex series
	// number sits in body.
	seriesOffsets []int
}

// synthetic reports whether workers stamp p's body (and so copy it).
func (p *payload) synthetic() bool { return len(p.idOffsets) > 0 || len(p.seriesOffsets) > 0 }

// payloadSet is the round-robin sequence of payloads every worker cycles through.
type payloadSet struct {
	mix        string
	items      []payload
	synthetic  int // distinct synthetic templates
	fixtures   int // distinct fixture requests
	avgBytes   int // mean body size over items
	idRunTag   [12]byte
	fixtureDir string
}

// synthSpec configures the synthetic error envelopes.
type synthSpec struct {
	count   int
	size    int
	project int
	key     string
	dsnHost string
}

// buildPayloads assembles the request sequence for mix.
func buildPayloads(mix string, s synthSpec, fixtureDir string) (*payloadSet, error) {
	set := &payloadSet{mix: mix, fixtureDir: fixtureDir}
	copy(set.idRunTag[:], randomHex(6))
	var synth, fixtures []payload
	if mix == mixSynthetic || mix == mixBoth {
		synth = syntheticPayloads(s)
	}
	if mix == mixFixtures || mix == mixBoth {
		var err error
		if fixtures, err = loadFixtures(fixtureDir); err != nil {
			return nil, err
		}
	}
	switch mix {
	case mixSynthetic:
		set.items = synth
	case mixFixtures:
		set.items = fixtures
	case mixBoth:
		set.items = interleave(synth, fixtures)
	default:
		return nil, fmt.Errorf("unknown --mix %q: use synthetic, fixtures or both", mix)
	}
	set.synthetic, set.fixtures = len(synth), len(fixtures)
	total := 0
	for i := range set.items {
		total += len(set.items[i].body)
	}
	set.avgBytes = total / len(set.items)
	return set, nil
}

// interleave alternates a and b 1:1, repeating the shorter list.
func interleave(a, b []payload) []payload {
	n := max(len(a), len(b))
	out := make([]payload, 0, 2*n)
	for i := range n {
		out = append(out, a[i%len(a)], b[i%len(b)])
	}
	return out
}

func randomHex(n int) []byte {
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = hexDigits[rand.IntN(16)]
	}
	return b
}

// syntheticPayloads builds s.count distinct JS-style error envelopes of about
// s.size bytes each.
func syntheticPayloads(s synthSpec) []payload {
	out := make([]payload, s.count)
	sentAt := time.Now().UTC()
	headers := [][2]string{
		{"Content-Type", "application/x-sentry-envelope"},
		{"User-Agent", "baton-load/1.0"},
		{"X-Sentry-Auth", authPrefix + s.key}, // last: the key ends the value (see prepare)
	}
	for i := range out {
		var body []byte
		if s.size >= attachmentFrom {
			body = syntheticAttachmentEnvelope(i, s, sentAt)
		} else {
			body = syntheticEnvelope(i, s, sentAt)
		}
		keyOffs := placeholderOffsets(body, keyPlaceholder)
		for _, off := range keyOffs {
			copy(body[off:], s.key)
		}
		out[i] = payload{
			name:       "synthetic-" + strconv.Itoa(i),
			method:     "POST",
			uri:        "/api/" + strconv.Itoa(s.project) + "/envelope/",
			headers:    headers,
			body:       body,
			idOffsets:  placeholderOffsets(body, idPlaceholder),
			keyOffsets: keyOffs,
		}
	}
	return out
}

// placeholderOffsets returns where placeholder occurs in body.
func placeholderOffsets(body []byte, placeholder string) []int {
	var offs []int
	for base := 0; ; {
		i := bytes.Index(body[base:], []byte(placeholder))
		if i < 0 {
			return offs
		}
		offs = append(offs, base+i)
		base += i + len(placeholder)
	}
}

type jsFrame struct {
	Filename    string   `json:"filename"`
	Module      string   `json:"module"`
	Function    string   `json:"function"`
	Lineno      int      `json:"lineno"`
	Colno       int      `json:"colno"`
	InApp       bool     `json:"in_app"`
	PreContext  []string `json:"pre_context,omitempty"`
	ContextLine string   `json:"context_line,omitempty"`
	PostContext []string `json:"post_context,omitempty"`
}

var (
	jsErrorTypes = []string{"TypeError", "RangeError", "PaymentError", "ReferenceError", "SyntaxError", "Error"}
	jsMessages   = []string{
		"cannot read properties of undefined (reading 'token')",
		"charge failed: card declined",
		"Maximum call stack size exceeded",
		"fetch failed: ECONNRESET",
		"Unexpected token < in JSON at position 0",
	}
	jsFunctions = []string{"chargeCard", "Router.handle", "processTicksAndRejections", "Layer.handle [as handle_request]",
		"next", "CheckoutService.submit", "async Promise.all", "Object.<anonymous>", "Module._compile", "loadUser"}
	jsFiles = []string{"/app/src/checkout.js", "/app/src/payments/stripe.js", "/app/node_modules/express/lib/router/index.js",
		"node:internal/process/task_queues", "/app/src/server.js", "/app/src/db/users.js"}
)

// syntheticEnvelope renders envelope header + event item header + event
// payload, adding stack frames until the body reaches s.size bytes.
func syntheticEnvelope(seed int, s synthSpec, sentAt time.Time) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	header := map[string]any{
		"event_id": idPlaceholder,
		"sent_at":  sentAt.Format("2006-01-02T15:04:05.000Z"),
		"dsn":      "http://" + keyPlaceholder + "@" + s.dsnHost + "/" + strconv.Itoa(s.project),
		"sdk":      map[string]string{"name": "sentry.javascript.node", "version": "11.12.0"},
		"trace": map[string]string{"environment": "production", "release": "shop-web@2.14." + strconv.Itoa(seed),
			"public_key": keyPlaceholder, "trace_id": string(randomHex(16)), "sample_rate": "1", "sampled": "true"},
	}
	errType := jsErrorTypes[r.IntN(len(jsErrorTypes))]
	if body := renderEnvelope(header, syntheticEvent(r, s, sentAt, errType, nil)); len(body) > s.size {
		return smallEnvelope(r, s, sentAt, errType)
	}
	var frames []jsFrame
	for {
		event := syntheticEvent(r, s, sentAt, errType, frames)
		body := renderEnvelope(header, event)
		if len(body) >= s.size {
			return body
		}
		frames = append(frames, randomFrame(r))
	}
}

// smallEnvelope is an error envelope below the size of the full synthetic
// event (about 1 KB): the ids and the dsn, an exception without a stack
// trace, and a message padded to s.size where the size allows.
func smallEnvelope(r *rand.Rand, s synthSpec, sentAt time.Time, errType string) []byte {
	header := map[string]any{
		"event_id": idPlaceholder,
		"sent_at":  sentAt.Format("2006-01-02T15:04:05.000Z"),
		"dsn":      "http://" + keyPlaceholder + "@" + s.dsnHost + "/" + strconv.Itoa(s.project),
	}
	event := map[string]any{
		"event_id":  idPlaceholder,
		"timestamp": float64(sentAt.UnixMilli()) / 1000,
		"platform":  "node",
		"level":     "error",
		"exception": map[string]any{"values": []any{map[string]any{"type": errType, "value": jsMessages[r.IntN(len(jsMessages))]}}},
	}
	body := renderEnvelope(header, event)
	if pad := s.size - len(body) - len(`,"message":""`); pad > 0 {
		event["message"] = strings.Repeat("x", pad)
		body = renderEnvelope(header, event)
	}
	return body
}

// attachmentFrom is the synthetic size from which an envelope carries its
// bulk in an attachment item beside a small error event, as SDKs send large
// files: an event that large would exceed Sentry's 1 MB event limit.
const attachmentFrom = 100_000

// attachmentEventSize is the size of the error event sent beside an attachment.
const attachmentEventSize = 2048

// syntheticAttachmentEnvelope is a small error event followed by an
// attachment item of random bytes that brings the body to s.size. Random
// bytes do not compress, as most large attachments (minidumps, archives,
// images) barely do, so the case measures bytes, not a codec's luck.
func syntheticAttachmentEnvelope(seed int, s synthSpec, sentAt time.Time) []byte {
	ev := s
	ev.size = attachmentEventSize
	body := syntheticEnvelope(seed, ev, sentAt)
	itemHeader := func(n int) string {
		return `{"type":"attachment","length":` + strconv.Itoa(n) + `,"filename":"upload-` + strconv.Itoa(seed) +
			`.bin","content_type":"application/octet-stream"}` + "\n"
	}
	n := max(s.size-len(body)-len(itemHeader(s.size))-1, 1)
	body = append(body, itemHeader(n)...)
	r := rand.New(rand.NewPCG(uint64(seed), 0xa77ac4))
	for range n {
		c := byte(r.Uint32())
		if c == idPlaceholder[0] || c == keyPlaceholder[0] { // placeholders are found by these bytes
			c = 0
		}
		body = append(body, c)
	}
	return append(body, '\n')
}

func syntheticEvent(r *rand.Rand, s synthSpec, ts time.Time, errType string, frames []jsFrame) map[string]any {
	return map[string]any{
		"event_id":    idPlaceholder,
		"timestamp":   float64(ts.UnixMilli()) / 1000,
		"platform":    "node",
		"level":       "error",
		"environment": "production",
		"release":     "shop-web@2.14.0",
		"server_name": "web-" + strconv.Itoa(r.IntN(40)),
		"tags":        map[string]string{"region": "eu-west-1", "route": "/checkout"},
		"contexts": map[string]any{
			"runtime": map[string]string{"name": "node", "version": "v20.20.0"},
			"os":      map[string]string{"name": "linux", "kernel_version": "6.18.0"},
		},
		"exception": map[string]any{"values": []any{map[string]any{
			"type":       errType,
			"value":      jsMessages[r.IntN(len(jsMessages))],
			"mechanism":  map[string]any{"type": "onuncaughtexception", "handled": false},
			"stacktrace": map[string]any{"frames": frames},
		}}},
		"sdk": map[string]string{"name": "sentry.javascript.node", "version": "11.12.0"},
	}
}

func randomFrame(r *rand.Rand) jsFrame {
	f := jsFrame{
		Filename: jsFiles[r.IntN(len(jsFiles))],
		Function: jsFunctions[r.IntN(len(jsFunctions))],
		Lineno:   1 + r.IntN(2000),
		Colno:    1 + r.IntN(80),
	}
	f.Module = strings.TrimSuffix(filepath.Base(f.Filename), ".js")
	f.InApp = strings.HasPrefix(f.Filename, "/app/src")
	if f.InApp {
		f.PreContext = []string{"  const amount = order.total;", "  if (!customer) {", "    throw new Error('no customer');", "  }"}
		f.ContextLine = "  const res = await " + f.Function + "(customer.token, amount);"
		f.PostContext = []string{"  order.status = res.status;", "  return res;", "}"}
	}
	return f
}

func renderEnvelope(header, event map[string]any) []byte {
	h, _ := json.Marshal(header) // maps of strings and numbers cannot fail
	e, _ := json.Marshal(event)
	var b bytes.Buffer
	b.Write(h)
	b.WriteString("\n{\"type\":\"event\",\"length\":" + strconv.Itoa(len(e)) + "}\n")
	b.Write(e)
	b.WriteByte('\n')
	return b.Bytes()
}

// fixtureMeta is the part of a fixture's .json this tool needs.
type fixtureMeta struct {
	File     string  `json:"file"`
	WireFile *string `json:"wire_file"`
	Request  struct {
		Method  string      `json:"method"`
		Path    string      `json:"path"`
		Query   string      `json:"query"`
		Headers [][2]string `json:"headers"`
		Chunked bool        `json:"transfer_encoding_chunked"`
	} `json:"request"`
}

// hopHeaders are dropped from fixtures: the HTTP client sets them itself.
var hopHeaders = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true}

// loadFixtures reads every captured request in dir (one .json per request).
func loadFixtures(dir string) ([]payload, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list fixtures in %s: %w", dir, err)
	}
	sort.Strings(names)
	var out []payload
	for _, name := range names {
		p, err := loadFixture(dir, name)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fixture *.json found in %s: pass --fixtures pointing at cmd/baton-load/testdata/sdk-envelopes", dir)
	}
	return out, nil
}

func loadFixture(dir, name string) (payload, error) {
	raw, err := os.ReadFile(name)
	if err != nil {
		return payload{}, fmt.Errorf("read fixture: %w", err)
	}
	var m fixtureMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return payload{}, fmt.Errorf("parse fixture %s: %w", name, err)
	}
	if m.File == "" || m.Request.Path == "" {
		return payload{}, fmt.Errorf("fixture %s has no \"file\" or \"request.path\": is it a capture description?", name)
	}
	bodyFile := m.File
	if m.WireFile != nil && *m.WireFile != "" {
		bodyFile = *m.WireFile // the gzip bytes as sent; Content-Encoding is in the headers
	}
	body, err := os.ReadFile(filepath.Join(dir, bodyFile))
	if err != nil {
		return payload{}, fmt.Errorf("fixture %s: read body: %w", name, err)
	}
	p := payload{name: m.File, method: m.Request.Method, uri: m.Request.Path, body: body, chunked: m.Request.Chunked}
	if p.method == "" {
		p.method = "POST"
	}
	if m.Request.Query != "" {
		p.uri += "?" + m.Request.Query
	}
	for _, h := range m.Request.Headers {
		if !hopHeaders[strings.ToLower(h[0])] {
			p.headers = append(p.headers, h)
		}
	}
	return p, nil
}

const hexDigits = "0123456789abcdef"

// putHex16 writes v as 16 lower-case hex digits into dst[:16].
func putHex16(dst []byte, v uint64) {
	_ = dst[15]
	for i := 15; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// putHex4 writes v as 4 lower-case hex digits into dst[:4].
func putHex4(dst []byte, v uint16) {
	_ = dst[3]
	for i := 3; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

var errNoPayloads = errors.New("no payloads to send")

// seriesPlaceholder marks where a metric line's series number goes in a
// statsd template; '^' appears nowhere else in it.
const seriesPlaceholder = "^^^^^^^^^^^^^^^^"

// statsdPayloads builds count envelopes of one statsd item with lines
// counter lines each: load.requests@none, one series per value of the tag
// series (the other tag is constant), which workers stamp per request
// (seriesOffsets). The lines carry no timestamp: Baton dates them on
// receipt.
func statsdPayloads(count, lines, project int, key string) []payload {
	out := make([]payload, count)
	headers := [][2]string{
		{"Content-Type", "application/x-sentry-envelope"},
		{"User-Agent", "baton-load/1.0"},
		{"X-Sentry-Auth", authPrefix + key},
	}
	for i := range out {
		var item []byte
		for l := range lines {
			if l > 0 {
				item = append(item, '\n')
			}
			item = fmt.Appendf(item, "load.requests@none:%d|c|#series:%s,route:/api/checkout", 1+l%3, seriesPlaceholder)
		}
		body := fmt.Appendf(nil, "{}\n{\"type\":\"statsd\",\"length\":%d}\n%s\n", len(item), item)
		out[i] = payload{
			name:          "statsd-" + strconv.Itoa(i),
			method:        "POST",
			uri:           "/api/" + strconv.Itoa(project) + "/envelope/",
			headers:       headers,
			body:          body,
			seriesOffsets: placeholderOffsets(body, seriesPlaceholder),
		}
	}
	return out
}

// payloadSetOf wraps items as a payload set (mix synthetic).
func payloadSetOf(items []payload) *payloadSet {
	set := &payloadSet{mix: mixSynthetic, items: items, synthetic: len(items)}
	copy(set.idRunTag[:], randomHex(6))
	total := 0
	for i := range items {
		total += len(items[i].body)
	}
	set.avgBytes = total / max(len(items), 1)
	return set
}
