package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/grouping"
	"github.com/baton-relay/baton/relay/groups"
	"github.com/baton-relay/baton/relay/normalize"
	"github.com/baton-relay/baton/relay/outcome"
	"github.com/baton-relay/baton/relay/pii"
	"github.com/baton-relay/baton/relay/policy"
	"github.com/baton-relay/baton/relay/project"
	"github.com/baton-relay/baton/relay/record"
)

// This file is what a first Relay does to events before it forwards them
// (docs/relay-protocol.md §6): normalization (relay/normalize) and then
// PII scrubbing with the project's compiled config (relay/pii). The ingest
// path runs it in frame; an envelope that waited for its project's config
// is scrubbed (and normalized, if it was not) when it is released.

// processor normalizes and scrubs event items; nil when nothing is done
// (proxy mode, or normalization.level: disabled), so proxy mode forwards
// payloads byte for byte.
type processor struct {
	norm *normalize.Normalizer
	// groups is the issue table of storm control (relay/groups); nil: no
	// storm control.
	groups *groups.Table
}

// newProcessor builds the processor cfg asks for. The User-Agent rules are
// the process's one parser (relay/useragent), compiled when the first event
// with a User-Agent header needs them.
func newProcessor(cfg config.Config) (*processor, error) {
	if cfg.Mode == config.ModeProxy || cfg.Normalization.Level == config.NormalizationDisabled {
		return nil, nil
	}
	var opts normalize.Options
	if path := cfg.Normalization.AndroidModels; path != "" {
		m, err := readAndroidModels(path)
		if err != nil {
			return nil, fmt.Errorf("normalization.android_models: %w", err)
		}
		opts.AndroidModels = m
	}
	n, err := normalize.New(opts)
	if err != nil {
		return nil, err
	}
	return &processor{norm: n}, nil
}

// Relay's discard reasons (DiscardReason) for the drops of processing.
const (
	reasonInvalidJSON         = "invalid_json"
	reasonSecurityReport      = "security_report"
	reasonSecurityReportType  = "security_report_type"
	reasonUnsupportedSecurity = "invalid-csp" // FilterStatKey::InvalidCsp
	reasonInvalidTx           = "invalid_transaction"
)

// dropError is an item processing drops with an outcome of its own, not
// the invalid one of every other failure: why and Relay's reason code.
type dropError struct {
	why    outcome.Reason
	reason string
	msg    string
}

func (e *dropError) Error() string { return e.msg }

// checkSecurityReport judges a raw security report by its kind as Relay
// does before converting it (SecurityReportType::from_json): a Reporting
// API report of another type than csp-violation is filtered (Relay's
// ProcessingError::UnsupportedSecurityType, reason invalid-csp), JSON that
// is no known report is invalid (security_report_type), a payload that is
// no JSON object invalid (invalid_json).
func checkSecurityReport(payload []byte) error {
	switch envelope.ClassifySecurityReport(payload) {
	case envelope.ReportUnsupported:
		return &dropError{outcome.ReasonFiltered, reasonUnsupportedSecurity, "security report of an unsupported type"}
	case envelope.ReportUnknown:
		return &dropError{outcome.ReasonInvalid, reasonSecurityReportType, "security report of an unknown type"}
	case envelope.ReportInvalidJSON:
		return &dropError{outcome.ReasonInvalid, reasonInvalidJSON, "security report is not a JSON object"}
	}
	return nil
}

// errProjectStatePII is an event of a project whose PII config does not
// compile.
var errProjectStatePII = errors.New(pii.ProjectStateReason)

// errFiltered is an item whose normalized event an inbound filter matched:
// its class is dropped in the verdict, and it is neither scrubbed nor
// written.
var errFiltered = errors.New("filtered")

// eventFilter judges an item's normalized event before it is scrubbed, as
// Relay runs its inbound filters between normalization and PII scrubbing;
// it reports whether a filter dropped the item's class.
type eventFilter func(policy.Event) bool

// processed reports whether the processor rewrites items of type t: event,
// transaction and security reports; NEL reports at ingest (they become log
// items, another class, scrubbed then); log containers, which Relay scrubs
// like events (scrubLogs): the SDK's, and on release those made of NEL
// reports that waited for their project's config; and OTLP log records
// (otel_log), which Relay scrubs as logs once converted.
func processed(t envelope.ItemType, atIngest bool) bool {
	switch t {
	case envelope.ItemEvent, envelope.ItemTransaction, envelope.ItemSecurity, envelope.ItemRawSecurity, envelope.ItemLog, envelope.ItemOtelLog:
		return true
	case envelope.ItemNEL:
		return atIngest
	}
	return false
}

// isEventItem reports whether an item of type t is what inbound filters
// judge (policy.EventOf): an event, transaction or security report.
func isEventItem(t envelope.ItemType) bool {
	switch t {
	case envelope.ItemEvent, envelope.ItemTransaction, envelope.ItemSecurity, envelope.ItemRawSecurity:
		return true
	}
	return false
}

// discardReason is Relay's reason for an item of type t that failed with
// err.
func discardReason(t envelope.ItemType, err error) string {
	var de *dropError
	switch {
	case errors.As(err, &de):
		return de.reason
	case errors.Is(err, errProjectStatePII):
		return pii.ProjectStateReason
	case t == envelope.ItemRawSecurity:
		return reasonSecurityReport
	case errors.Is(err, normalize.ErrInvalidTransaction):
		return reasonInvalidTx
	}
	return reasonInvalidJSON
}

// item rewrites it in place: normalized (unless an item a trusted relay
// marked fully_normalized), judged by filter (when not nil; errFiltered
// when it matched), then scrubbed with st's PII config (nil st: the config
// is not known yet, scrubbing waits for the release). New payloads and
// headers are appended to buf, which is returned; it's Payload and Header
// then point into buf. A failure leaves it unchanged.
//
// key is the DSN public key the envelope came with (the scope of the
// per-issue counts of storm control).
func (p *processor) item(buf []byte, it *envelope.Item, in *normalize.Input, trusted bool, st *project.State, key []byte, filter eventFilter) ([]byte, error) {
	norm := !normalize.FullyNormalized(it.Header, trusted)
	var (
		payload              []byte
		normalized, scrubbed bool
		err                  error
		group                *grouping.Brief
	)
	if grouped(it.Type) && st != nil && st.Grouping != nil && (norm || !relayHashed(it.Header)) {
		group = new(grouping.Brief)
	}
	start := len(buf)
	switch it.Type {
	case envelope.ItemRawSecurity, envelope.ItemNEL:
		buf, payload, normalized, scrubbed, err = p.report(buf, it, in, norm, st, key, filter, group)
	case envelope.ItemLog, envelope.ItemOtelLog:
		buf, payload, err = scrubLogs(buf, it.Type, it.Payload, st)
		scrubbed = payload != nil
	default:
		// scrubbed: written, normalized or scrubbed.
		buf, scrubbed, err = p.event(buf, it.Type, it.Payload, in, norm, st, key, filter, group)
		payload, normalized = buf[start:len(buf):len(buf)], norm
		if !scrubbed {
			payload = it.Payload
		}
	}
	if err != nil {
		return buf[:start], err
	}
	hdr := it.Header
	hashed := group != nil && group.Primary != ""
	if !normalized && !scrubbed && !hashed {
		return buf, nil
	}
	var n [20]byte
	length := strconv.AppendInt(n[:0], int64(len(payload)), 10)
	start = len(buf)
	switch {
	case it.Type == envelope.ItemNEL:
		// A log container of one log, as Relay makes of a NEL report.
		buf = append(buf, `{"type":"log","length":`...)
		buf = append(buf, length...)
		buf = append(buf, `,"content_type":"`+envelope.ContentTypeLogContainer+`","item_count":1}`...)
		it.Type, it.TypeName, it.Class = envelope.ItemLog, "log", envelope.ClassLog
		it.ContentType, it.ItemCount = envelope.ContentTypeLogContainer, 1
	default:
		if it.Type == envelope.ItemRawSecurity {
			hdr = setField(&buf, hdr, "type", []byte(`"security"`))
			it.Type, it.TypeName = envelope.ItemSecurity, "security"
		}
		if normalized {
			// As Relay marks what it normalized, so that the next relay
			// (which trusts Baton's signature) does not do it again.
			hdr = setField(&buf, hdr, "fully_normalized", []byte("true"))
		}
		if hashed {
			hdr = groupingHeader(&buf, hdr, group)
		} else if normalized && grouped(it.Type) && bytes.Contains(hdr, []byte(`"grouping_`)) {
			hdr = dropGroupingHeader(&buf, hdr)
		}
		start = len(buf)
		buf = envelope.SetHeaderField(buf, hdr, "length", length)
	}
	it.Header, it.Payload, it.Length = buf[start:len(buf):len(buf)], payload, len(payload)
	return buf, nil
}

// event normalizes (when norm), judges (with filter, on the tree) and
// scrubs (with st's config) the JSON event src of type kind in one parse
// and appends it, written once, to buf; wrote is false, and nothing
// appended, when none was to be done or scrubbing alone changed nothing.
// The tree aliases src, which must not overlap buf.
func (p *processor) event(buf []byte, kind envelope.ItemType, src []byte, in *normalize.Input, norm bool, st *project.State, key []byte, filter eventFilter, group *grouping.Brief) (out []byte, wrote bool, err error) {
	var cfg *pii.Config
	piiErr := st != nil && st.PIIErr != nil
	if st != nil {
		cfg = st.PII
	}
	// An event Baton normalized while its project's config was unknown
	// gets the config's breakdowns on release (computed again, the same,
	// for one normalized with them).
	breakdowns := !norm && in != nil && in.Breakdowns != nil && (kind == envelope.ItemEvent || kind == envelope.ItemTransaction)
	if !norm && filter == nil && group == nil && !breakdowns {
		if piiErr {
			return buf, false, errProjectStatePII
		}
		if cfg == nil {
			return buf, false, nil
		}
	}
	parse := event.Parse
	if group != nil || cfg.WalksAll() {
		// Hashing reads every frame, and so does a scrubbing config that
		// may select any value: parse them now rather than keep them lazy
		// and parse them twice (relay/event lazy.go).
		parse = event.ParseEager
	}
	t, err := parse(src)
	if err != nil {
		if norm {
			return buf, false, fmt.Errorf("%w: event is not valid JSON: %v", normalize.ErrInvalid, err)
		}
		return buf, false, fmt.Errorf("%w: %v", pii.ErrInvalidJSON, err)
	}
	defer t.Release()
	if norm {
		if err := p.norm.Tree(t, in); err != nil {
			return buf, false, err
		}
	} else if breakdowns {
		p.norm.Breakdowns(t, in.Breakdowns)
	}
	if filter != nil && filter(policy.EventFromTree(kind, t.Root())) {
		return buf, false, errFiltered
	}
	if piiErr { // an invalid or filtered event is that first, as Relay judges it
		return buf, false, errProjectStatePII
	}
	if err := cfg.ScrubTree(t); err != nil {
		return buf, false, err
	}
	if group != nil {
		if err := judgeHash(t, st, key, p.groups, group); err != nil {
			return buf, false, err
		}
	}
	if !norm && !t.Dirty() {
		return buf, false, nil
	}
	return t.AppendJSON(buf), true, nil
}

// report turns a raw security report into a security event, or a NEL
// report into a log container of one, and scrubs the former with st's
// config, through the byte APIs (reports are rebuilt, not edited). The
// new payload is appended to buf. With group, the security event is then
// hashed and judged as an error event is (judgeHash).
func (p *processor) report(buf []byte, it *envelope.Item, in *normalize.Input, norm bool, st *project.State, key []byte, filter eventFilter, group *grouping.Brief) (out, payload []byte, normalized, scrubbed bool, err error) {
	payload = it.Payload
	kind := it.Type
	if norm {
		start := len(buf)
		if it.Type == envelope.ItemRawSecurity {
			if err := checkSecurityReport(payload); err != nil {
				return buf, nil, false, false, err
			}
			in.Release, in.Environment = headerString(it.Header, "sentry_release"), headerString(it.Header, "sentry_environment")
			buf, err = p.norm.Security(buf, payload, in)
			in.Release, in.Environment = "", ""
		} else {
			buf = append(buf, `{"items":[`...)
			buf, err = p.norm.NEL(buf, payload, in)
			buf = append(buf, "]}"...)
		}
		if err != nil {
			return buf, nil, false, false, err
		}
		payload, normalized = buf[start:len(buf):len(buf)], true
		if kind == envelope.ItemRawSecurity {
			kind = envelope.ItemSecurity
		}
	}
	if filter != nil && filter(policy.EventFromJSON(kind, payload)) {
		return buf, nil, false, false, errFiltered
	}
	if st != nil {
		if st.PIIErr != nil {
			return buf, nil, false, false, errProjectStatePII
		}
		if st.PII != nil {
			start := len(buf)
			if it.Type == envelope.ItemNEL {
				// Relay scrubs each log with the project's config
				// (processing/logs scrub_log), the NEL ones too.
				buf, err = st.PII.ScrubLogs(buf, payload)
			} else {
				buf, err = st.PII.ScrubEvent(buf, payload)
			}
			if err != nil {
				return buf, nil, false, false, err
			}
			payload, scrubbed = buf[start:len(buf):len(buf)], true
		}
	}
	if group != nil && kind == envelope.ItemSecurity {
		t, err := event.ParseEager(payload)
		if err != nil {
			return buf, nil, false, false, fmt.Errorf("%w: %v", normalize.ErrInvalid, err)
		}
		err = judgeHash(t, st, key, p.groups, group)
		t.Release()
		if err != nil {
			return buf, nil, false, false, err
		}
	}
	return buf, payload, normalized, scrubbed, nil
}

// scrubLogs scrubs the log container payload with st's config, as Relay's
// logs processor scrubs each log (processing/logs scrub_log): the SDK's
// logs, and those Baton made of NEL reports while the project's config
// was not known (they are scrubbed at ingest otherwise); or, for an
// otel_log item (type t), its OTLP log record, in its own shape
// (pii.Config.ScrubOtelLog). The new payload
// is appended to buf; scrubbed is nil when there is no config (st nil: it
// is not known yet, the release scrubs) or nothing matched.
func scrubLogs(buf []byte, t envelope.ItemType, payload []byte, st *project.State) (out, scrubbed []byte, err error) {
	if st == nil {
		return buf, nil, nil
	}
	if st.PIIErr != nil {
		return buf, nil, errProjectStatePII
	}
	if st.PII == nil {
		return buf, nil, nil
	}
	scrub := st.PII.ScrubLogs
	if t == envelope.ItemOtelLog {
		scrub = st.PII.ScrubOtelLog
	}
	start := len(buf)
	if buf, err = scrub(buf, payload); err != nil {
		return buf[:start], nil, err
	}
	if bytes.Equal(buf[start:], payload) { // appended byte for byte: nothing matched
		return buf[:start], nil, nil
	}
	return buf, buf[start:len(buf):len(buf)], nil
}

// scrubAttachments scrubs the attachments of env with st's piiConfig as
// Relay does (relay/pii attachment.go, minidump.go), keeping their length,
// so their headers stand: minidumps by their structure, the others as
// plain attachments when the config names a file. With copyTo nil the
// payloads are scrubbed in place (the request owns them); otherwise a
// payload is copied to *copyTo first and the item points at the copy when
// it changed. Each attachment is judged on its own, as Relay's attachment
// processing does now. View hierarchies are left to scrubViewHierarchies
// when the project has them scrubbed as JSON. It reports whether a payload
// changed.
func scrubAttachments(env *envelope.Envelope, st *project.State, copyTo *[]byte) bool {
	if st == nil || st.Attachments == nil {
		return false
	}
	changed, asJSON := false, scrubsViewHierarchies(st)
	for i := range env.Items {
		it := &env.Items[i]
		if !scrubsAttachment(it, st.Attachments, asJSON) {
			continue
		}
		scrub := st.Attachments.Scrub
		if it.AttachmentType == envelope.AttachmentTypeMinidump {
			scrub = st.Attachments.ScrubMinidump
		}
		data := it.Payload
		if copyTo != nil {
			start := len(*copyTo)
			*copyTo = append(*copyTo, it.Payload...)
			data = (*copyTo)[start:len(*copyTo):len(*copyTo)]
			if !scrub(it.Filename, data) {
				*copyTo = (*copyTo)[:start]
				continue
			}
		} else if !scrub(it.Filename, data) {
			continue
		}
		it.Payload, changed = data, true
	}
	return changed
}

// scrubsAttachment reports whether scrubAttachments scrubs it with a:
// a minidump always, a view hierarchy unless it is scrubbed asJSON, any
// other attachment when a names files.
func scrubsAttachment(it *envelope.Item, a *pii.Attachments, asJSON bool) bool {
	switch {
	case it.Type != envelope.ItemAttachment || len(it.Payload) == 0:
		return false
	case it.AttachmentType == envelope.AttachmentTypeMinidump:
		return true
	case asJSON && isViewHierarchy(it):
		return false
	}
	return a.ScrubsPlain()
}

// setField appends hdr with key set to *buf and returns the new header.
func setField(buf *[]byte, hdr []byte, key string, val []byte) []byte {
	start := len(*buf)
	*buf = envelope.SetHeaderField(*buf, hdr, key, val)
	return (*buf)[start:len(*buf):len(*buf)]
}

// headerString is the string value of key in an item header, "" when it is
// absent or not a string.
func headerString(hdr []byte, key string) string {
	v, ok := envelope.HeaderField(hdr, key)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// sentAt is the envelope header's sent_at, zero when absent or malformed.
func sentAt(h *envelope.Header) time.Time {
	if h.SentAt == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, h.SentAt)
	if err != nil {
		return time.Time{}
	}
	return t
}

// procSlack is what a processed item may grow by beyond twice its size:
// contexts from the User-Agent, `_meta` remarks, its new header.
const procSlack = 4 << 10

// process runs the processor over the event items of the classes s.verdict
// keeps, before their records are built: their payloads and headers are
// replaced in s.env. A class with an item that fails is dropped, outcome
// invalid (filtered for a security report of an unsupported type, as
// Relay) with Relay's reason in s.invalid; a NEL report becomes a log
// item and moves to the log class. The new payloads are charged to the
// request's lease; an error is the lease's.
func (r *Relay) process(ctx *fasthttp.RequestCtx, in *admitted, s *scratch, received time.Time) error {
	v := &s.verdict
	var nin normalize.Input
	ready := false
	// The envelope's event (the first event item, policy.EventOf's) is
	// judged on its normalized tree when the project filters events.
	var filter eventFilter
	judge := in.limit && r.enforcer.FiltersEvent(v, &in.adm, &in.perClass)
	if judge {
		filter = func(ev policy.Event) bool { return r.enforcer.Filter(v, &in.adm, &in.perClass, ev) }
	}
	if st := in.adm.State; st != nil && st.Attachments != nil {
		// Scrubbing reads an attachment as Latin-1 text (twice its size)
		// and as UTF-16LE text (1.5 times): charged while it runs.
		n, asJSON := 0, scrubsViewHierarchies(st)
		for i := range s.env.Items {
			if it := &s.env.Items[i]; scrubsAttachment(it, st.Attachments, asJSON) {
				n = max(n, 4*len(it.Payload))
			}
		}
		if err := s.lease.Grow(n); err != nil {
			return err
		}
		scrubAttachments(&s.env, st, nil)
		s.lease.Shrink(n)
	}
	if st, n := in.adm.State, viewHierarchySize(&s.env); n > 0 && scrubsViewHierarchies(st) {
		// Rewritten view hierarchies go to s.proc: charged for their
		// size up front, for what replacements added after.
		if err := s.proc.Reserve(n+procSlack, &s.lease); err != nil {
			return err
		}
		scrubViewHierarchies(&s.env, st, &s.proc.B)
		if err := s.proc.Reserve(0, &s.lease); err != nil {
			return err
		}
	}
	if st := in.adm.State; !v.Drop[envelope.ClassReplay] && scrubsReplays(&s.env, st) {
		// Scrubbed replays go to s.proc; the decompressed recording (or
		// an event's tree) is charged while it lives.
		limit := recordingLimit(&r.limits)
		scratch, out := replayScratch(&s.env, st, limit)
		if err := s.proc.Reserve(out, &s.lease); err != nil {
			return err
		}
		if err := s.lease.Grow(scratch); err != nil {
			return err
		}
		_, err := scrubReplays(&s.env, st, &s.proc.B, limit)
		s.lease.Shrink(scratch)
		if err := s.proc.Reserve(0, &s.lease); err != nil {
			return err
		}
		if err != nil {
			why := outcome.ReasonInvalid
			if de := (*dropError)(nil); errors.As(err, &de) {
				why = de.why
			}
			v.Drop[envelope.ClassReplay], v.Why[envelope.ClassReplay] = true, why
			s.invalid[envelope.ClassReplay] = discardReason(envelope.ItemReplayRecording, err)
		}
	}
	for i := range s.env.Items {
		it := &s.env.Items[i]
		if v.Drop[it.Class] || !processed(it.Type, true) {
			continue
		}
		if st := in.adm.State; (it.Type == envelope.ItemLog || it.Type == envelope.ItemOtelLog) && (st == nil || st.PII == nil && st.PIIErr == nil) {
			continue // nothing to scrub them with (yet): not charged for
		}
		if !ready { // only envelopes with events pay for the strings
			ready = true
			nin = normalize.Input{
				UserAgent: string(ctx.Request.Header.UserAgent()),
				Origin:    string(ctx.Request.Header.Peek("Origin")),
				Referer:   string(ctx.Request.Header.Referer()),
				SentAt:    sentAt(&s.env.Header),
				Received:  received,
			}
			s.breakdowns = appendBreakdowns(s.breakdowns[:0], in.adm.State)
			nin.Breakdowns = s.breakdowns
			if a := clientAddr(ctx); a.IsValid() {
				nin.ClientAddr = a.String()
			}
			if !s.env.Header.EventID.IsZero() {
				nin.EventID = s.env.Header.EventID.String()
			}
		}
		if err := s.proc.Reserve(2*len(it.Payload)+len(it.Header)+procSlack, &s.lease); err != nil {
			return err
		}
		// The tree the item is parsed into holds ~100 bytes a node, which
		// a payload of `{},` has every 3 bytes: charged while it lives.
		tree := event.Cost(it.Payload)
		if err := s.lease.Grow(tree); err != nil {
			return err
		}
		from := it.Class
		var f eventFilter
		if judge && isEventItem(it.Type) {
			f, judge = filter, false
		}
		var err error
		s.proc.B, err = r.proc.item(s.proc.B, it, &nin, s.trusted, in.adm.State, in.key, f)
		s.lease.Shrink(tree)
		// Output past the reservation (`_meta` for every scrubbed tag can
		// make it ten times the input) was appended beyond it: charged now,
		// so the request holds what it made or is refused.
		if err := s.proc.Reserve(0, &s.lease); err != nil {
			return err
		}
		if err != nil {
			if errors.Is(err, errFiltered) {
				continue // dropped in the verdict, reported as filtered
			}
			if why := groupingReason(err); why != "" {
				r.enforcer.FilterClass(v, from, why)
				continue
			}
			why := outcome.ReasonInvalid
			if de := (*dropError)(nil); errors.As(err, &de) {
				why = de.why
			}
			if why == outcome.ReasonFiltered {
				// Counted in Stats.Filtered under Relay's filter stat
				// key (FilterStatKey::InvalidCsp), as the filters are.
				r.enforcer.FilterClass(v, from, discardReason(it.Type, err))
			}
			v.Drop[from], v.Why[from] = true, why
			s.invalid[from] = discardReason(it.Type, err)
			continue
		}
		if it.Class != from {
			in.perClass[from]--
			in.perClass[it.Class]++
		}
	}
	return nil
}

// errSinkTooLarge means a released record grew past what its class's sink
// takes (dropped as too_large: sending it would only be refused).
var errSinkTooLarge = errors.New("released envelope is larger than its destination accepts")

// release is what a releaser does to a record that waited for its
// project's config, now known as st: its event items are scrubbed (and
// normalized, if they were not at ingest). It returns the record to store
// instead of rec (nil: rec as it is), or Relay's reason when the record
// is to be dropped as invalid, or errSinkTooLarge when it is to be dropped
// as too large, or errDiscardedHash or errGroupingStorm when it is to be
// dropped as filtered.
func (r *Relay) release(rec *record.Record, st *project.State) (value []byte, reason string, err error) {
	if r.proc == nil {
		return nil, "", nil
	}
	var env envelope.Envelope
	if env.Parse(rec.Envelope, &r.limits) != nil {
		return nil, "", nil // it parsed when it was accepted; the forwarder judges it
	}
	var (
		buf            []byte
		nin            normalize.Input
		ready, changed bool
	)
	changed = scrubAttachments(&env, st, &buf)
	changed = scrubViewHierarchies(&env, st, &buf) || changed
	rc, err := scrubReplays(&env, st, &buf, recordingLimit(&r.limits))
	if err != nil {
		return nil, discardReason(envelope.ItemReplayRecording, err), nil
	}
	changed = rc || changed
	for i := range env.Items {
		it := &env.Items[i]
		if !processed(it.Type, false) {
			continue
		}
		if !ready {
			ready = true
			nin = normalize.Input{SentAt: sentAt(&env.Header), Received: rec.Received(), Breakdowns: appendBreakdowns(nil, st)}
			if a := firstAddr(rec.ClientIP); a.IsValid() {
				nin.ClientAddr = a.String()
			}
			if !env.Header.EventID.IsZero() {
				nin.EventID = env.Header.EventID.String()
			}
		}
		var err error
		was := it.Header
		// Trusted: Baton normalized and marked every item at ingest but
		// those a verified relay had marked.
		if buf, err = r.proc.item(buf, it, &nin, true, st, rec.PublicKey, nil); err != nil {
			if groupingReason(err) != "" {
				return nil, "", err
			}
			return nil, discardReason(it.Type, err), nil
		}
		changed = changed || len(was) != len(it.Header) || &was[0] != &it.Header[0]
	}
	if !changed {
		return nil, "", nil
	}
	out := env.AppendTo(nil)
	// Checked at ingest as it was; scrubbing's _meta may have grown it.
	if lim := r.maxEnvelope[rec.Class]; lim > 0 && len(out) > lim {
		return nil, "", fmt.Errorf("%w: %s, %d bytes, limit %d", errSinkTooLarge, rec.Class, len(out), lim)
	}
	return record.Append(nil, rec, out), "", nil
}
