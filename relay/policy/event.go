package policy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/baton-relay/baton/envelope"
	evtree "github.com/baton-relay/baton/relay/event"
)

// EventItem returns the item inbound filters judge: the envelope's event,
// transaction, security or raw_security item, with its type (ItemUnknown
// and nil when there is none). Apply calls it only for a project with a
// filter that reads the event.
type EventItem func() (envelope.ItemType, []byte)

// Event is an event item as the event filters read it, for Filter: from
// its JSON (EventFromJSON) or from the tree normalization left
// (EventFromTree). The zero Event is no event.
type Event struct{ e *event }

// EventFromJSON reads what filters need of payload, an item of type kind.
func EventFromJSON(kind envelope.ItemType, payload []byte) Event {
	return Event{parseEvent(kind, payload)}
}

// EventFromTree reads what filters need of root, the parsed event of an
// item of type kind, without writing it out and parsing it again: only
// the fields filters read are visited. root must stay unchanged until
// the Event is judged.
func EventFromTree(kind envelope.ItemType, root *evtree.Node) Event {
	e := &event{kind: kind, tagsRead: true}
	if root.Kind() != evtree.Object {
		return Event{e}
	}
	e.Type, _ = root.Get("type").Str()
	e.Release = lenientNode(root.Get("release"))
	e.Dist = lenientNode(root.Get("dist"))
	e.Environment = lenientNode(root.Get("environment"))
	e.Transaction = lenientNode(root.Get("transaction"))
	e.Platform = lenientNode(root.Get("platform"))
	e.Logger = lenientNode(root.Get("logger"))
	e.Level = lenientNode(root.Get("level"))
	if m := root.Get("message"); !m.IsNull() {
		e.Message = m.AppendJSON(nil) // normalization moved it to logentry: rare
	}
	e.LogEntry = logEntryNode(root.Get("logentry"))
	e.LegacyMessage = logEntryNode(root.Get("sentry.interfaces.Message"))
	x := root.Get("exception")
	if x.Kind() == evtree.Object {
		x = x.Get("values")
	}
	if x.Kind() == evtree.Array {
		e.exceptions = make([]exception, 0, x.Len())
		for i := range x.Len() {
			e.exceptions = append(e.exceptions, exceptionNode(x.Index(i)))
		}
	}
	if u := root.Get("user"); u.Kind() == evtree.Object {
		e.User = &user{
			ID: lenientNode(u.Get("id")), Email: lenientNode(u.Get("email")), IPAddress: lenientNode(u.Get("ip_address")),
			Segment: lenientNode(u.Get("segment")), Username: lenientNode(u.Get("username")),
		}
	}
	if r := root.Get("request"); r.Kind() == evtree.Object {
		e.Request = &request{URL: lenientNode(r.Get("url")), Method: lenientNode(r.Get("method"))}
		e.headers = nodePairs(r.Get("headers"))
	}
	e.tags = nodePairs(root.Get("tags"))
	if c := root.Get("contexts"); c.Kind() == evtree.Object {
		e.contexts = c
	}
	if d := root.Get("sdk"); d.Kind() == evtree.Object {
		e.SDK = &sdk{Name: lenientNode(d.Get("name")), Version: lenientNode(d.Get("version"))}
	}
	if c := root.Get("csp"); c.Kind() == evtree.Object {
		e.CSP = &cspReport{BlockedURI: strNode(c.Get("blocked_uri")), SourceFile: strNode(c.Get("source_file"))}
	}
	return Event{e}
}

// lenientNode is n read as a lenient string field.
func lenientNode(n *evtree.Node) lenient {
	b, _ := n.Lenient()
	return lenient(b)
}

// strNode is a string node's content, nil for other kinds.
func strNode(n *evtree.Node) *string {
	s, ok := n.Str()
	if !ok {
		return nil
	}
	return &s
}

func logEntryNode(n *evtree.Node) *logEntry {
	if n.Kind() != evtree.Object {
		return nil
	}
	return &logEntry{Message: lenientNode(n.Get("message")), Formatted: lenientNode(n.Get("formatted"))}
}

func exceptionNode(n *evtree.Node) exception {
	x := exception{Type: lenientNode(n.Get("type")), Value: lenientNode(n.Get("value"))}
	if st := n.Get("stacktrace"); st.Kind() == evtree.Object {
		x.Stacktrace = &stacktrace{Frames: judgedFrames(st.Get("frames"))}
	}
	return x
}

// judgedFrames is the frames matchBrowserExtensions reads, the last ones
// back to the first whose abs_path it judges or lacks: the earlier ones,
// which it never reaches, are not read, so that lazy frames (relay/event)
// with an abs_path, as browser SDKs send them, stay unparsed.
func judgedFrames(frames *evtree.Node) []frame {
	if frames.Kind() != evtree.Array {
		return nil
	}
	n := frames.Len()
	k := n
	for k > 0 {
		k--
		if p := strNode(frames.Index(k).Get("abs_path")); p == nil || !skippedPath(*p) {
			break
		}
	}
	out := make([]frame, n-k)
	for i := range out {
		out[i].AbsPath = strNode(frames.Index(k + i).Get("abs_path"))
	}
	return out
}

// nodePairs is lenientPairs of a tree: an object, or a list of [name,
// value] pairs (entries of another length are skipped).
func nodePairs(n *evtree.Node) [][2]string {
	var out [][2]string
	switch n.Kind() {
	case evtree.Object:
		for i := range n.Len() {
			out = append(out, [2]string{string(n.Key(i)), string(lenientNode(n.Index(i)))})
		}
	case evtree.Array:
		for i := range n.Len() {
			if p := n.Index(i); p.Kind() == evtree.Array && p.Len() == 2 {
				out = append(out, [2]string{string(lenientNode(p.Index(0))), string(lenientNode(p.Index(1)))})
			}
		}
	}
	return out
}

// EventOf finds the event item of a parsed envelope.
func EventOf(env *envelope.Envelope) (envelope.ItemType, []byte) {
	for i := range env.Items {
		switch it := &env.Items[i]; it.Type {
		case envelope.ItemEvent, envelope.ItemTransaction, envelope.ItemSecurity, envelope.ItemRawSecurity:
			return it.Type, it.Payload
		}
	}
	return envelope.ItemUnknown, nil
}

// EventIn finds the event item of a serialized envelope (a stored record's),
// parsing it.
func EventIn(raw []byte) (envelope.ItemType, []byte) {
	var env envelope.Envelope
	if env.Parse(raw, &envelope.Limits{}) != nil {
		return envelope.ItemUnknown, nil
	}
	return EventOf(&env)
}

// lenient is a string field an SDK may send as a number or boolean.
type lenient string

func (l *lenient) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = lenient(s)
		return nil
	}
	if len(b) > 0 && b[0] != '{' && b[0] != '[' && !bytes.Equal(b, []byte("null")) {
		*l = lenient(b)
	}
	return nil
}

type logEntry struct {
	Message   lenient `json:"message"`
	Formatted lenient `json:"formatted"`
}

type exception struct {
	Type       lenient     `json:"type"`
	Value      lenient     `json:"value"`
	Stacktrace *stacktrace `json:"stacktrace"`
}

type stacktrace struct {
	Frames []frame `json:"frames"`
}

type frame struct {
	AbsPath *string `json:"abs_path"`
}

// cspReport is the CSP part of a security event (Baton's or Relay's
// normalized "csp") or of a browser's raw report ("csp-report").
type cspReport struct {
	BlockedURI    *string `json:"blocked_uri"`
	SourceFile    *string `json:"source_file"`
	RawBlockedURI *string `json:"blocked-uri"`
	RawSourceFile *string `json:"source-file"`
	// Reporting API format (report-to): blockedURL, sourceFile.
	BlockedURL     *string `json:"blockedURL"`
	RawSourceFile2 *string `json:"sourceFile"`
}

func (c *cspReport) blocked() (string, bool) {
	for _, p := range []*string{c.BlockedURI, c.RawBlockedURI, c.BlockedURL} {
		if p != nil {
			return *p, true
		}
	}
	return "", false
}

func (c *cspReport) source() (string, bool) {
	for _, p := range []*string{c.SourceFile, c.RawSourceFile, c.RawSourceFile2} {
		if p != nil {
			return *p, true
		}
	}
	return "", false
}

// event is what inbound filters read of an event payload. It accepts an
// event as the SDK sent it (message as a string, exception as a list,
// headers as an object) as well as a normalized one.
type event struct {
	Type          string                     `json:"type"`
	Release       lenient                    `json:"release"`
	Dist          lenient                    `json:"dist"`
	Environment   lenient                    `json:"environment"`
	Transaction   lenient                    `json:"transaction"`
	Platform      lenient                    `json:"platform"`
	Logger        lenient                    `json:"logger"`
	Level         lenient                    `json:"level"`
	Message       json.RawMessage            `json:"message"`
	LogEntry      *logEntry                  `json:"logentry"`
	LegacyMessage *logEntry                  `json:"sentry.interfaces.Message"`
	Exception     json.RawMessage            `json:"exception"`
	User          *user                      `json:"user"`
	Request       *request                   `json:"request"`
	Tags          json.RawMessage            `json:"tags"`
	Contexts      map[string]json.RawMessage `json:"contexts"`
	SDK           *sdk                       `json:"sdk"`
	CSP           *cspReport                 `json:"csp"`
	CSPReport     *cspReport                 `json:"csp-report"`
	Body          *cspReport                 `json:"body"` // one report of the Reporting API

	kind       envelope.ItemType
	exceptions []exception
	headers    [][2]string
	tags       [][2]string // Tags as pairs, once read (tagsRead)
	tagsRead   bool
	contexts   *evtree.Node // contexts of an event read from a tree (Contexts unused)
}

type user struct {
	ID        lenient `json:"id"`
	Email     lenient `json:"email"`
	IPAddress lenient `json:"ip_address"`
	Segment   lenient `json:"segment"`
	Username  lenient `json:"username"`
}

type request struct {
	URL     lenient         `json:"url"`
	Method  lenient         `json:"method"`
	Headers json.RawMessage `json:"headers"`
}

type sdk struct {
	Name    lenient `json:"name"`
	Version lenient `json:"version"`
}

// parseEvent reads what filters need of payload, an item of type kind.
func parseEvent(kind envelope.ItemType, payload []byte) *event {
	e := &event{kind: kind}
	p := bytes.TrimSpace(payload)
	if kind == envelope.ItemRawSecurity && len(p) > 0 && p[0] == '[' {
		// The Reporting API sends a list of reports: judge the first.
		var list []json.RawMessage
		if json.Unmarshal(p, &list) == nil && len(list) > 0 {
			p = list[0]
		}
	}
	if json.Unmarshal(p, e) != nil {
		return &event{kind: kind}
	}
	e.decodeExceptions()
	e.decodeHeaders()
	return e
}

func (e *event) decodeExceptions() {
	x := bytes.TrimSpace(e.Exception)
	if len(x) == 0 {
		return
	}
	if x[0] == '{' {
		var v struct {
			Values []exception `json:"values"`
		}
		if json.Unmarshal(x, &v) == nil {
			e.exceptions = v.Values
		}
		return
	}
	_ = json.Unmarshal(x, &e.exceptions)
}

func (e *event) decodeHeaders() {
	if e.Request != nil {
		e.headers = lenientPairs(e.Request.Headers)
	}
}

// lenientPairs reads the two shapes SDKs send headers and tags in: an object,
// or a list of [name, value] pairs (entries of another length are skipped).
func lenientPairs(raw json.RawMessage) [][2]string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return nil
	}
	var out [][2]string
	if b[0] == '{' {
		var m map[string]lenient
		if json.Unmarshal(b, &m) == nil {
			for k, v := range m {
				out = append(out, [2]string{k, string(v)})
			}
		}
		return out
	}
	var pairs [][]lenient
	if json.Unmarshal(b, &pairs) == nil {
		for _, p := range pairs {
			if len(p) == 2 {
				out = append(out, [2]string{string(p[0]), string(p[1])})
			}
		}
	}
	return out
}

// header returns a request header, its name compared case-insensitively.
func (e *event) header(name string) (string, bool) {
	for _, h := range e.headers {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

func (e *event) userAgent() (string, bool) { return e.header("User-Agent") }

// isTransaction, isCSP: the event types filters single out.
func (e *event) isTransaction() bool {
	return e.kind == envelope.ItemTransaction || e.Type == "transaction"
}

func (e *event) csp() *cspReport {
	switch {
	case e.CSP != nil:
		return e.CSP
	case e.kind == envelope.ItemRawSecurity && e.CSPReport != nil:
		return e.CSPReport
	case e.kind == envelope.ItemRawSecurity && e.Body != nil:
		return e.Body
	}
	return nil
}

// messages returns the logentry's message as Relay's normalization leaves
// it: formatted, else message; a plain "message" string is formatted.
func (e *event) message() (string, bool) {
	le := e.LogEntry
	if le == nil {
		le = e.LegacyMessage
	}
	if le == nil && len(e.Message) > 0 {
		var s string
		if json.Unmarshal(e.Message, &s) == nil {
			return s, true
		}
		le = &logEntry{}
		if json.Unmarshal(e.Message, le) != nil {
			return "", false
		}
	}
	if le == nil {
		return "", false
	}
	if le.Formatted != "" {
		return string(le.Formatted), true
	}
	return string(le.Message), le.Message != ""
}

// ipAddress is the user's IP ({{auto}} was replaced by the client's).
func (e *event) ipAddress() (string, bool) {
	if e.User == nil || e.User.IPAddress == "" {
		return "", false
	}
	return string(e.User.IPAddress), true
}

// Field answers the event.* names of generic filter conditions (Relay's
// Getter for events): the fields below, tags and string context fields.
func (e *event) Field(name string) (string, bool) {
	name, ok := strings.CutPrefix(name, "event.")
	if !ok {
		return "", false
	}
	str := func(l lenient) (string, bool) { return string(l), l != "" }
	switch name {
	case "release":
		return str(e.Release)
	case "dist":
		return str(e.Dist)
	case "environment":
		return str(e.Environment)
	case "transaction":
		if !e.isTransaction() {
			return "", false
		}
		return str(e.Transaction)
	case "platform":
		if e.Platform == "" {
			return "other", true
		}
		return str(e.Platform)
	case "logger":
		return str(e.Logger)
	case "level":
		return str(e.Level)
	case "message":
		return e.message()
	case "user.id", "user.email", "user.segment", "user.username":
		if e.User == nil {
			return "", false
		}
		switch name {
		case "user.id":
			return str(e.User.ID)
		case "user.email":
			return str(e.User.Email)
		case "user.segment":
			return str(e.User.Segment)
		default:
			return str(e.User.Username)
		}
	case "user.ip_address":
		return e.ipAddress()
	case "request.url", "request.method":
		if e.Request == nil {
			return "", false
		}
		if name == "request.url" {
			return str(e.Request.URL)
		}
		return str(e.Request.Method)
	case "sdk.name", "sdk.version":
		if e.SDK == nil {
			return "", false
		}
		if name == "sdk.name" {
			return str(e.SDK.Name)
		}
		return str(e.SDK.Version)
	case "user_agent", "request.headers.user-agent":
		return e.userAgent()
	case "is_local_ip":
		return strconv.FormatBool(matchLocalhost(e)), true
	case "has_bad_browser_extensions":
		return strconv.FormatBool(matchBrowserExtensions(e)), true
	case "web_crawlers":
		return strconv.FormatBool(matchWebCrawler(e)), true
	}
	if tag, ok := strings.CutPrefix(name, "tags."); ok {
		return e.tag(tag)
	}
	if rest, ok := strings.CutPrefix(name, "contexts."); ok {
		ctx, field, ok := strings.Cut(rest, ".")
		if !ok {
			return "", false
		}
		if e.contexts != nil {
			v, ok := e.contexts.Get(ctx).Get(field).Lenient()
			return string(v), ok && len(v) > 0
		}
		var m map[string]lenient
		if json.Unmarshal(e.Contexts[ctx], &m) != nil {
			return "", false
		}
		v, ok := m[field]
		return string(v), ok && v != ""
	}
	return "", false
}

func (e *event) tag(name string) (string, bool) {
	if !e.tagsRead {
		e.tags, e.tagsRead = lenientPairs(e.Tags), true
	}
	for _, p := range e.tags {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}
