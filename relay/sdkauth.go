package relay

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"
)

// protocolVersion is the highest sentry_version Baton (like Relay) speaks.
const protocolVersion = 7

var (
	errAuthMissing  = errors.New("missing authorization information")
	errAuthMultiple = errors.New("multiple authorization payloads detected")
	errAuthInvalid  = errors.New("invalid authorization header")
	errAuthVersion  = errors.New("unsupported sentry protocol version")
)

// sdkAuth is what a request says about who sent it (an SDK or a
// downstream relay forwarding for one). Its byte slices alias the
// request (headers or query) and are valid only during the handler.
type sdkAuth struct {
	PublicKey []byte
	Client    []byte
	Version   int
}

// parseAuth collects the DSN public key from exactly one of the places Relay
// accepts: X-Sentry-Auth, Authorization (Sentry or Basic), or sentry_*
// query parameters. It returns errAuthMissing when none is present, so the
// envelope endpoint can fall back to the envelope header's dsn.
func parseAuth(req *fasthttp.Request, a *sdkAuth) error {
	*a = sdkAuth{}
	// As Relay's auth_from_parts: a header that is neither "Sentry ..." nor
	// (Authorization only) decodable Basic is ignored, not refused, so a
	// client that always sends its own Authorization (OTLP exporters with a
	// Bearer token) still authenticates by its query key.
	found := 0
	if h := req.Header.Peek("X-Sentry-Auth"); hasPrefixFold(h, "sentry ") {
		found++
		if err := parseSentryAuth(h, a); err != nil {
			return err
		}
	}
	if h := req.Header.Peek("Authorization"); hasPrefixFold(h, "sentry ") {
		if found++; found > 1 {
			return errAuthMultiple
		}
		if err := parseSentryAuth(h, a); err != nil {
			return err
		}
	} else if hasPrefixFold(h, "basic ") && parseBasicAuth(h[len("basic "):], a) {
		if found++; found > 1 {
			return errAuthMultiple
		}
	}
	if q := req.URI().QueryArgs(); q.Has("sentry_key") || q.Has("sentry_version") {
		found++
		if found > 1 {
			return errAuthMultiple
		}
		a.PublicKey = q.Peek("sentry_key")
		a.Client = q.Peek("sentry_client")
		if v := q.Peek("sentry_version"); len(v) > 0 {
			n, err := strconv.Atoi(string(trimVersion(v)))
			if err != nil {
				return errAuthInvalid
			}
			a.Version = n
		}
	}
	if found == 0 {
		return errAuthMissing
	}
	if a.Version > protocolVersion {
		return errAuthVersion
	}
	if len(a.PublicKey) == 0 {
		return errAuthMissing
	}
	return nil
}

// parseSentryAuth parses "Sentry k=v, k=v".
func parseSentryAuth(h []byte, a *sdkAuth) error {
	if !hasPrefixFold(h, "sentry ") {
		return errAuthInvalid
	}
	h = h[len("sentry "):]
	for len(h) > 0 {
		var pair []byte
		pair, h, _ = bytes.Cut(h, []byte{','})
		k, v, ok := bytes.Cut(bytes.TrimSpace(pair), []byte{'='})
		if !ok {
			continue
		}
		k, v = bytes.TrimSpace(k), bytes.TrimSpace(v)
		switch string(k) {
		case "sentry_key":
			a.PublicKey = v
		case "sentry_client":
			a.Client = v
		case "sentry_version":
			n, err := strconv.Atoi(string(trimVersion(v)))
			if err != nil {
				return errAuthInvalid
			}
			a.Version = n
		}
	}
	return nil
}

func parseBasicAuth(b64 []byte, a *sdkAuth) bool {
	dec, err := base64.StdEncoding.AppendDecode(nil, bytes.TrimSpace(b64))
	if err != nil {
		return false
	}
	key, _, ok := bytes.Cut(dec, []byte{':'})
	if !ok {
		return false
	}
	if a.PublicKey == nil {
		a.PublicKey = key
	}
	return true
}

// trimVersion accepts "7" and "7.0" as Relay does.
func trimVersion(v []byte) []byte {
	if i := bytes.IndexByte(v, '.'); i >= 0 {
		return v[:i]
	}
	return v
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
