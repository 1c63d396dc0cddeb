package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeSentry is a minimal upstream Sentry for Baton in managed mode (see
// docs/relay-protocol.md §3.4 and §4.1–4.2): it registers any well-formed relay
// without checking signatures, answers every project config request with
// null (unknown key) except for the --known-keys (every key with anyKey),
// and accepts envelopes.
type fakeSentry struct {
	srv     *fasthttp.Server
	ln      net.Listener
	project int
	known   map[string]bool
	anyKey  bool // --known-keys any: every key has a config
	done    chan error

	challenges, responses   atomic.Uint64
	configRequests          atomic.Uint64
	keysKnown, keysUnknown  atomic.Uint64
	envelopes, envelopeSize atomic.Uint64
	badRequests, other      atomic.Uint64
}

// startSentry listens on addr (e.g. 127.0.0.1:0) and serves in the background.
func startSentry(addr string, project int, knownKeys []string) (*fakeSentry, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake sentry: listen on %s: %w", addr, err)
	}
	f := &fakeSentry{ln: ln, project: project, known: map[string]bool{}, done: make(chan error, 1)}
	for _, k := range knownKeys {
		f.known[k] = true
		f.anyKey = f.anyKey || k == anyKeys
	}
	f.srv = &fasthttp.Server{
		Handler:               f.handle,
		Name:                  "baton-load-sentry",
		MaxRequestBodySize:    64 << 20,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		NoDefaultServerHeader: true,
		MaxIdleWorkerDuration: time.Second, // see startNoop
	}
	go func() { f.done <- f.srv.Serve(ln) }()
	return f, nil
}

// URL is the base URL to configure as Baton's upstream.
func (f *fakeSentry) URL() string { return "http://" + f.ln.Addr().String() }

// Close stops accepting, closes open connections and waits for Serve to return.
func (f *fakeSentry) Close() error {
	if err := f.srv.Shutdown(); err != nil {
		return fmt.Errorf("fake sentry: shutdown: %w", err)
	}
	_ = f.ln.Close() // Shutdown misses a Serve that has not started yet
	return <-f.done
}

// Summary is one line of what the server answered, printed on exit.
func (f *fakeSentry) Summary() string {
	return fmt.Sprintf("fake sentry served: register/challenge %d, register/response %d, projectconfigs %d requests "+
		"(keys: %d known, %d unknown), envelopes %d (%d body bytes), bad requests %d, other paths %d",
		f.challenges.Load(), f.responses.Load(), f.configRequests.Load(), f.keysKnown.Load(), f.keysUnknown.Load(),
		f.envelopes.Load(), f.envelopeSize.Load(), f.badRequests.Load(), f.other.Load())
}

func (f *fakeSentry) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	switch {
	case path == "/api/0/relays/register/challenge/":
		f.challenge(ctx)
	case path == "/api/0/relays/register/response/":
		f.response(ctx)
	case path == "/api/0/relays/projectconfigs/":
		f.projectConfigs(ctx)
	case isEnvelopePath(path):
		if !ctx.IsPost() {
			f.fail(ctx, fasthttp.StatusMethodNotAllowed, "POST only")
			return
		}
		f.envelopes.Add(1)
		f.envelopeSize.Add(uint64(len(ctx.PostBody())))
		reply(ctx, []byte("{}"))
	default:
		f.other.Add(1)
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		reply(ctx, []byte(`{"detail":"not found"}`))
	}
}

// isEnvelopePath matches /api/<project id>/envelope/.
func isEnvelopePath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/api/")
	if !ok {
		return false
	}
	id, ok := strings.CutSuffix(rest, "/envelope/")
	if !ok || id == "" {
		return false
	}
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil
}

// decode reads the (possibly compressed) JSON body of a POST into v.
func (f *fakeSentry) decode(ctx *fasthttp.RequestCtx, v any) bool {
	if !ctx.IsPost() {
		f.fail(ctx, fasthttp.StatusMethodNotAllowed, "POST only")
		return false
	}
	body, err := ctx.Request.BodyUncompressed()
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		f.fail(ctx, fasthttp.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func (f *fakeSentry) fail(ctx *fasthttp.RequestCtx, status int, detail string) {
	f.badRequests.Add(1)
	ctx.SetStatusCode(status)
	b, _ := json.Marshal(map[string]string{"detail": detail})
	reply(ctx, b)
}

func reply(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// challenge answers POST /api/0/relays/register/challenge/.
func (f *fakeSentry) challenge(ctx *fasthttp.RequestCtx) {
	var req struct {
		RelayID   string `json:"relay_id"`
		PublicKey string `json:"public_key"`
		Version   string `json:"version"`
	}
	if !f.decode(ctx, &req) {
		return
	}
	if req.RelayID == "" || req.PublicKey == "" {
		f.fail(ctx, fasthttp.StatusBadRequest, "relay_id and public_key are required")
		return
	}
	f.challenges.Add(1)
	b, _ := json.Marshal(map[string]string{"relay_id": req.RelayID, "token": string(randomHex(24))})
	reply(ctx, b)
}

// response answers POST /api/0/relays/register/response/. The token is not
// checked: any relay that presents one is registered.
func (f *fakeSentry) response(ctx *fasthttp.RequestCtx) {
	var req struct {
		RelayID string `json:"relay_id"`
		Token   string `json:"token"`
		Version string `json:"version"`
	}
	if !f.decode(ctx, &req) {
		return
	}
	if req.RelayID == "" || req.Token == "" {
		f.fail(ctx, fasthttp.StatusBadRequest, "relay_id and token are required")
		return
	}
	f.responses.Add(1)
	b, _ := json.Marshal(map[string]string{"relay_id": req.RelayID})
	reply(ctx, b)
}

// projectState is the minimal valid config of a --known-keys key.
type projectState struct {
	ProjectID  int            `json:"projectId"`
	Rev        string         `json:"rev"`
	Disabled   bool           `json:"disabled"`
	PublicKeys []stateKey     `json:"publicKeys"`
	Config     map[string]any `json:"config"`
}

type stateKey struct {
	PublicKey string `json:"publicKey"`
	IsEnabled bool   `json:"isEnabled"`
}

// sentryDefaultScrubbing is what Sentry serves for a new project: data
// scrubbing on with the default rules, so a managed Baton under load
// scrubs as it would in production.
var sentryDefaultScrubbing = map[string]any{
	"scrubData": true, "scrubDefaults": true, "scrubIpAddresses": false,
	"sensitiveFields": []string{}, "excludeFields": []string{},
}

// projectConfigs answers POST /api/0/relays/projectconfigs/?version=N.
func (f *fakeSentry) projectConfigs(ctx *fasthttp.RequestCtx) {
	var req struct {
		PublicKeys []string `json:"publicKeys"`
	}
	if !f.decode(ctx, &req) {
		return
	}
	f.configRequests.Add(1)
	var b bytes.Buffer
	b.WriteString(`{"configs":{`)
	for i, k := range req.PublicKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		if !f.anyKey && !f.known[k] {
			f.keysUnknown.Add(1)
			b.WriteString("null")
			continue
		}
		f.keysKnown.Add(1)
		st, _ := json.Marshal(projectState{ProjectID: f.project, Rev: "1", PublicKeys: []stateKey{{PublicKey: k, IsEnabled: true}},
			Config: map[string]any{"allowedDomains": []string{"*"}, "datascrubbingSettings": sentryDefaultScrubbing}})
		b.Write(st)
	}
	b.WriteString(`},"pending":[],"unchanged":[]}`)
	reply(ctx, b.Bytes())
}

// anyKeys in --known-keys answers every key with a valid config.
const anyKeys = "any"

// serveSentry runs only the fake Sentry until ctx is done.
func serveSentry(ctx context.Context, o options, stdout, stderr io.Writer) int {
	f, err := startSentry(o.serveSentry, o.project, o.knownKeys)
	if err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	known := fmt.Sprintf("%d known keys -> project %d, every other key null", len(f.known), o.project)
	if f.anyKey {
		known = fmt.Sprintf("every key -> project %d", o.project)
	}
	fmt.Fprintf(stdout, "fake sentry listening on %s (registers any relay; project configs: %s; envelopes 200 {}); stop with Ctrl-C\n",
		f.URL(), known)
	<-ctx.Done()
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	fmt.Fprintln(stdout, f.Summary())
	return 0
}
