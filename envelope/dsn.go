package envelope

import (
	"errors"
	"strconv"
	"strings"
)

// DSN is a parsed Sentry DSN: scheme://public_key[:secret]@host[:port]/[path/]project_id.
// The fields are substrings of the parsed string (no allocation).
type DSN struct {
	Scheme    string // "http" or "https"
	PublicKey string // 32 ASCII characters (Relay's ProjectKey)
	Host      string // host, with ":port" when the DSN has one
	Path      string // path before the project id, without trailing slash ("" for none)
	ProjectID uint64
}

var errDSN = errors.New("invalid DSN")

// ParseDSN parses a DSN the way Relay does: http or https, a public key of
// exactly 32 ASCII characters (a secret after ':' is accepted and ignored),
// a non-empty host and a numeric project id as the last path segment. Query
// and fragment are ignored.
func ParseDSN(s string) (DSN, error) {
	var d DSN
	i := strings.Index(s, "://")
	if i < 0 {
		return d, dsnError("missing scheme")
	}
	switch scheme := s[:i]; {
	case equalFoldASCII(scheme, "http"):
		d.Scheme = "http"
	case equalFoldASCII(scheme, "https"):
		d.Scheme = "https"
	default:
		return d, dsnError("scheme must be http or https")
	}
	rest := s[i+3:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	authority, path := rest, ""
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		authority, path = rest[:j], rest[j:]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return d, dsnError("missing public key")
	}
	key := authority[:at]
	if c := strings.IndexByte(key, ':'); c >= 0 {
		key = key[:c]
	}
	if len(key) != 32 || !isASCII(key) {
		return d, dsnError("public key must be 32 ASCII characters")
	}
	d.PublicKey = key
	d.Host = authority[at+1:]
	if d.Host == "" {
		return d, dsnError("missing host")
	}
	path = strings.TrimSuffix(path, "/")
	k := strings.LastIndexByte(path, '/')
	if k < 0 {
		return d, dsnError("missing project id")
	}
	pid, err := strconv.ParseUint(path[k+1:], 10, 64)
	if err != nil {
		return d, dsnError("project id must be a number")
	}
	d.ProjectID = pid
	d.Path = path[:k]
	return d, nil
}

func dsnError(msg string) error { return &dsnErr{msg} }

type dsnErr struct{ msg string }

func (e *dsnErr) Error() string { return "invalid DSN: " + e.msg }
func (e *dsnErr) Unwrap() error { return errDSN }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// String returns the DSN without secret: scheme://public_key@host/path/project_id.
func (d DSN) String() string {
	if d.Scheme == "" {
		return ""
	}
	return d.Scheme + "://" + d.PublicKey + "@" + d.Host + d.Path + "/" + strconv.FormatUint(d.ProjectID, 10)
}
