package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// This file holds the metrics codec: the statsd text of "statsd" items
// (ParseStatsd), Relay's bucket JSON of "metric_buckets" items (ParseBuckets,
// AppendBucketsJSON), the canonical bucket key (AppendKey, KeyHash) and bucket
// merging (Merge). See docs/relay-protocol.md section 6.
//
// Statsd lines are parsed the way Relay's Bucket::parse_all does (relay-metrics
// bucket.rs, relay-base-schema metrics/mri.rs):
//
//   - the payload is split at '\n'; one trailing '\r' is dropped; empty lines
//     are skipped; a line that is not valid UTF-8 is an error;
//   - a line is '|'-separated: "<mri>:<values>", then the type (c or m
//     counter; d, h or ms distribution; s set; g gauge), then optional
//     components: "#tags" (the last one wins), "T<unix seconds>"; any other
//     component (e.g. a sample rate "@0.1") is ignored, as in Relay;
//   - the mri is "[<namespace>/]<name>[@<unit>]": the namespace defaults to
//     custom, and one Relay does not know (sessions, transactions, spans,
//     custom, stats) becomes "unsupported"; the name must start with an ASCII
//     letter, every run of bytes outside [A-Za-z0-9_.] becomes one '_', and
//     it is cut to 150 bytes; the unit is one of Relay's units or aliases
//     (ns, ms, s), "" or "none", or a custom unit of 1-15 word characters
//     (lowercased); anything else makes the line invalid;
//   - values are Rust floats (optional sign, digits with an optional point
//     and exponent; no hex, no '_', nothing infinite or NaN); counters sum
//     all values (saturating at ±MaxFloat64); distributions keep every value
//     in order; set values that are not u32 integers are hashed with 32-bit
//     FNV-1a, as Relay's hash_set_value does (the fixtures confirm it: CRC32
//     does not match); gauges take one value or last:min:max:sum:count (more
//     values are ignored, as in Relay);
//   - tags are "key[:value]" separated by ','; a key containing an ASCII
//     control character is skipped; values are unescaped as Relay's
//     unescaper does (\t \n \r \\ \" \' \/ \b \f \v, \u{..}, \uXXXX, \xHH,
//     octal) and then lose their ASCII control characters; a tag whose value
//     has a malformed escape is dropped; a repeated key keeps its last value;
//   - a line without T gets the receive time; widths are 0.
//
// Not done here (later stages of Relay's pipeline): bucket-interval
// alignment, namespace/size validation and dropping of "unsupported"
// namespaces, tag length limits, received_at stamping (ParseStatsd leaves
// Metadata at its default, as Relay's parser does), and the legacy pre-MRI
// bucket names a very old Relay accepted in JSON (ParseBuckets keeps any name
// verbatim; only statsd names are normalised).

// MetricType is the type of a metric bucket; its value is the one-letter
// code Relay uses in MRIs and bucket JSON.
type MetricType uint8

// The metric types.
const (
	MetricCounter      MetricType = 'c'
	MetricDistribution MetricType = 'd'
	MetricSet          MetricType = 's'
	MetricGauge        MetricType = 'g'
)

// String returns the type's code ("c", "d", "s", "g"), or "invalid".
func (t MetricType) String() string {
	switch t {
	case MetricCounter:
		return "c"
	case MetricDistribution:
		return "d"
	case MetricSet:
		return "s"
	case MetricGauge:
		return "g"
	}
	return "invalid"
}

// Valid reports whether t is one of the four metric types.
func (t MetricType) Valid() bool {
	return t == MetricCounter || t == MetricDistribution || t == MetricSet || t == MetricGauge
}

// parseStatsdType maps the statsd type field to a MetricType, with Relay's
// aliases.
func parseStatsdType(b []byte) MetricType {
	switch string(b) {
	case "c", "m":
		return MetricCounter
	case "d", "h", "ms":
		return MetricDistribution
	case "s":
		return MetricSet
	case "g":
		return MetricGauge
	}
	return 0
}

// GaugeValue is the value of a gauge bucket.
type GaugeValue struct {
	Last, Min, Max, Sum float64
	Count               uint64
}

// BucketValue holds a bucket's value; only the field of the bucket's Type is
// meaningful. All floats are finite.
type BucketValue struct {
	Counter      float64
	Distribution []float64 // in arrival order, duplicates kept
	Set          []uint32  // ascending, no duplicates
	Gauge        GaugeValue
}

// Tag is one metric tag.
type Tag struct {
	Key, Value string
}

// BucketMetadata is Relay's per-bucket metadata.
type BucketMetadata struct {
	// Merges counts how many buckets were merged into this one; a fresh
	// bucket has 1 (Relay's default, which is not serialized).
	Merges uint32
	// ReceivedAt is the unix time the first metric of the bucket was
	// received by the outermost relay; 0 means unknown.
	ReceivedAt int64
}

func (m BucketMetadata) isDefault() bool { return m.Merges == 1 && m.ReceivedAt == 0 }

// Bucket is one metric bucket, as in Relay's bucket JSON.
//
// Tags is a slice sorted by key with unique keys rather than a map: the
// order is then deterministic for free (JSON output, AppendKey and KeyHash
// walk it without sorting), it matches Relay's BTreeMap order, it costs one
// allocation instead of a map's several, and lookups (Tag) on the typical
// handful of tags are as fast as a map's. Code that builds buckets by hand
// must keep Tags sorted and unique (SetTag does).
type Bucket struct {
	Timestamp int64  // unix seconds: start of the bucket's window
	Width     int64  // window length in seconds; 0 for a fresh bucket
	Name      string // MRI: "<type>:<namespace>/<name>@<unit>"
	Type      MetricType
	Value     BucketValue
	Tags      []Tag
	Metadata  BucketMetadata
}

// Tag returns the value of the tag key.
func (b *Bucket) Tag(key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(b.Tags, key, func(t Tag, k string) int { return cmpString(t.Key, k) })
	if !ok {
		return "", false
	}
	return b.Tags[i].Value, true
}

// SetTag sets the tag key to value, keeping Tags sorted.
func (b *Bucket) SetTag(key, value string) {
	i, ok := slices.BinarySearchFunc(b.Tags, key, func(t Tag, k string) int { return cmpString(t.Key, k) })
	if ok {
		b.Tags[i].Value = value
		return
	}
	b.Tags = slices.Insert(b.Tags, i, Tag{key, value})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Clone returns a deep copy of b (value slices and tags are copied; strings
// are immutable and shared).
func (b *Bucket) Clone() Bucket {
	c := *b
	c.Value.Distribution = slices.Clone(b.Value.Distribution)
	c.Value.Set = slices.Clone(b.Value.Set)
	c.Tags = slices.Clone(b.Tags)
	return c
}

// ErrMetricTypeMismatch is returned by Merge for buckets of different types.
var ErrMetricTypeMismatch = errors.New("metrics: cannot merge buckets of different types")

// Merge folds o into b as Relay's aggregator does: counters add (saturating
// at ±MaxFloat64), distributions append o's values, sets take the union,
// gauges keep o's last value, the smaller min, the larger max and add sum
// and count; metadata adds merges and keeps the earliest known received_at.
// Name, tags, timestamp and width are b's: the caller merges only buckets
// with the same key and time window. Buckets of different (or invalid)
// types are not merged: the error wraps ErrMetricTypeMismatch.
func (b *Bucket) Merge(o *Bucket) error {
	if b.Type != o.Type || !b.Type.Valid() {
		return fmt.Errorf("%w: %s and %s", ErrMetricTypeMismatch, b.Type, o.Type)
	}
	switch b.Type {
	case MetricCounter:
		b.Value.Counter = satAdd(b.Value.Counter, o.Value.Counter)
	case MetricDistribution:
		b.Value.Distribution = append(b.Value.Distribution, o.Value.Distribution...)
	case MetricSet:
		b.Value.Set = unionSorted(b.Value.Set, o.Value.Set)
	case MetricGauge:
		g, og := &b.Value.Gauge, &o.Value.Gauge
		g.Last = og.Last
		g.Min = min(g.Min, og.Min)
		g.Max = max(g.Max, og.Max)
		g.Sum = satAdd(g.Sum, og.Sum)
		if g.Count+og.Count < g.Count {
			g.Count = math.MaxUint64
		} else {
			g.Count += og.Count
		}
	}
	m, om := &b.Metadata, &o.Metadata
	if m.Merges+om.Merges < m.Merges {
		m.Merges = math.MaxUint32
	} else {
		m.Merges += om.Merges
	}
	if om.ReceivedAt != 0 && (m.ReceivedAt == 0 || om.ReceivedAt < m.ReceivedAt) {
		m.ReceivedAt = om.ReceivedAt
	}
	return nil
}

// satAdd adds two finite floats, saturating like Relay's FiniteF64.
func satAdd(a, b float64) float64 {
	s := a + b
	if math.IsInf(s, 1) {
		return math.MaxFloat64
	}
	if math.IsInf(s, -1) {
		return -math.MaxFloat64
	}
	return s
}

// unionSorted merges the ascending, duplicate-free o into a in place (from
// the back, so o may even be a itself) and returns the result.
func unionSorted(a, o []uint32) []uint32 {
	if len(o) == 0 {
		return a
	}
	if len(a) == 0 {
		return append(a, o...)
	}
	if a[len(a)-1] < o[0] { // common case: new values above the old ones
		return append(a, o...)
	}
	n, m := len(a), len(o)
	a = slices.Grow(a, m)[:n+m]
	i, j := n-1, m-1
	for k := n + m - 1; j >= 0; k-- {
		if i >= 0 && a[i] > o[j] {
			a[k] = a[i]
			i--
		} else {
			a[k] = o[j]
			j--
		}
	}
	return slices.Compact(a)
}

// AppendKey appends the canonical aggregation key of b: type, name (the MRI,
// which carries namespace and unit) and the sorted tags, each string
// length-prefixed (uvarint) so distinct buckets never share a key. It does
// not include the timestamp, width, project or value: the aggregator adds
// its time slot and project key. Equal keys mean mergeable buckets.
func (b *Bucket) AppendKey(dst []byte) []byte {
	dst = append(dst, byte(b.Type))
	dst = appendKeyString(dst, b.Name)
	dst = binary.AppendUvarint(dst, uint64(len(b.Tags)))
	for i := range b.Tags {
		dst = appendKeyString(dst, b.Tags[i].Key)
		dst = appendKeyString(dst, b.Tags[i].Value)
	}
	return dst
}

func appendKeyString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// KeyHash returns the 64-bit FNV-1a hash of AppendKey's bytes, computed
// without building the key. It is stable across processes, versions and
// platforms, so it can steer partitions (KeyHash() % N) and Kafka keys.
func (b *Bucket) KeyHash() uint64 {
	h := uint64(fnvOffset64)
	h = (h ^ uint64(b.Type)) * fnvPrime64
	h = hashKeyString(h, b.Name)
	h = hashUvarint(h, uint64(len(b.Tags)))
	for i := range b.Tags {
		h = hashKeyString(h, b.Tags[i].Key)
		h = hashKeyString(h, b.Tags[i].Value)
	}
	return h
}

func hashUvarint(h, v uint64) uint64 {
	for v >= 0x80 {
		h = (h ^ uint64(byte(v)|0x80)) * fnvPrime64
		v >>= 7
	}
	return (h ^ v) * fnvPrime64
}

func hashKeyString(h uint64, s string) uint64 {
	h = hashUvarint(h, uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime64
	}
	return h
}

// hashSetValue is Relay's hash_set_value: 32-bit FNV-1a.
func hashSetValue(b []byte) uint32 { return FNV32a(b) }

// FNV32a is the 32-bit FNV-1a hash of b. Relay hashes set values with it,
// and Baton partitions public keys with it: both must never change.
func FNV32a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// ---------------------------------------------------------------------------
// Statsd

// LineError reports a statsd line ParseStatsd skipped. It unwraps to
// ErrInvalid.
type LineError struct {
	Line   int    // 1-based line number in the payload
	Offset int    // byte offset in the payload of the offending part
	Msg    string // what is wrong
}

func (e *LineError) Error() string {
	return fmt.Sprintf("statsd line %d: %s (at offset %d)", e.Line, e.Msg, e.Offset)
}

func (e *LineError) Unwrap() error { return ErrInvalid }

// maxMetricNameLen is Relay's CUSTOM_METRIC_NAME_MAX_SIZE.
const maxMetricNameLen = 150

// statsdParser holds scratch memory reused across the lines of a payload,
// and the memory the payload's buckets share.
type statsdParser struct {
	buf   []byte    // MRI followed by unescaped tag keys and values
	spans []tagSpan // tags in buf
	errs  []LineError

	// Shared by every bucket of the payload; resolve points the buckets
	// into them once they stop growing.
	text  []byte    // each bucket's buf, back to back
	tags  []tagSpan // each bucket's tags, as spans of text
	dists []float64 // each distribution's values
	sets  []uint32  // each set's values
	fix   []fixup
	cur   fixup // the line being parsed

	values int // capacity for dists or sets, when first needed
}

// fixup is where one bucket's parts lie in the shared memory.
type fixup struct {
	i            int // index in dst
	nameS, nameE int32
	tagS, tagE   int32 // range of p.tags
	valS, valE   int32 // range of p.dists or p.sets
}

type tagSpan struct{ ks, ke, vs, ve int32 }

// ParseStatsd parses the statsd payload of a "statsd" item and appends one
// bucket per valid line to dst; invalid lines are skipped and reported, one
// LineError each, and the rest are kept. Lines without a timestamp get now.
// See the top of metrics.go for the exact grammar.
//
// The buckets of one call share their memory (one string for every name and
// tag, one tag array, one value array per type), so a payload costs a handful
// of allocations, not a few per line. Nothing aliases payload and buckets may
// outlive it, but keeping one bucket keeps its whole call's memory: a caller
// that keeps a few buckets for long should clone them (the aggregator does).
func ParseStatsd(dst []Bucket, payload []byte, now time.Time) ([]Bucket, []LineError) {
	var p statsdParser
	p.presize(payload)
	defer func() { p.resolve(dst) }()
	ts := now.Unix()
	line := 0
	for pos := 0; pos < len(payload); {
		line++
		start := pos
		end := bytes.IndexByte(payload[pos:], '\n')
		if end < 0 {
			end = len(payload)
			pos = end
		} else {
			end += pos
			pos = end + 1
		}
		l := payload[start:end]
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if len(l) == 0 {
			continue
		}
		var b Bucket
		p.cur = fixup{}
		if off, msg := p.parseLine(&b, l, ts); msg != "" {
			p.errs = append(p.errs, LineError{Line: line, Offset: start + off, Msg: msg})
			continue
		}
		p.cur.i = len(dst)
		p.fix = append(p.fix, p.cur)
		dst = append(dst, b)
	}
	return dst, p.errs
}

// presize sizes the shared memory from payload, so it is allocated once:
// names and tags take about the payload's bytes plus the MRI prefix and
// unit each line gains; every tag and value sits between ',', '#' or ':'.
func (p *statsdParser) presize(payload []byte) {
	lines := bytes.Count(payload, []byte{'\n'}) + 1
	p.text = make([]byte, 0, len(payload)+lines*mriOverhead)
	p.fix = make([]fixup, 0, lines)
	p.tags = make([]tagSpan, 0, bytes.Count(payload, []byte{','})+bytes.Count(payload, []byte{'#'}))
	p.values = bytes.Count(payload, []byte{':'})
}

// mriOverhead is what normalising a statsd name adds at most, in practice:
// "d:custom/" and "@millisecond".
const mriOverhead = 24

// resolve points the buckets of dst that this call parsed into the shared
// memory, which no longer grows.
func (p *statsdParser) resolve(dst []Bucket) {
	if len(p.fix) == 0 {
		return
	}
	// p.text is this call's own and never written again: the string shares it.
	s := unsafe.String(unsafe.SliceData(p.text), len(p.text))
	var tags []Tag
	if len(p.tags) > 0 {
		tags = make([]Tag, len(p.tags))
		for i, sp := range p.tags {
			tags[i] = Tag{s[sp.ks:sp.ke], s[sp.vs:sp.ve]}
		}
	}
	for _, f := range p.fix {
		b := &dst[f.i]
		b.Name = s[f.nameS:f.nameE]
		if f.tagE > f.tagS {
			b.Tags = tags[f.tagS:f.tagE:f.tagE] // full slice: an append copies
		}
		switch b.Type {
		case MetricDistribution:
			b.Value.Distribution = p.dists[f.valS:f.valE:f.valE]
		case MetricSet:
			b.Value.Set = p.sets[f.valS:f.valE:f.valE]
		}
	}
}

// parseLine parses one non-empty line into b. On failure it returns the
// offset within l of the problem and a message.
func (p *statsdParser) parseLine(b *Bucket, l []byte, ts int64) (int, string) {
	if !utf8.Valid(l) {
		for i := 0; ; {
			r, n := utf8.DecodeRune(l[i:])
			if r == utf8.RuneError && n == 1 {
				return i, "invalid UTF-8"
			}
			i += n
		}
	}
	// "<mri>:<values>|<type>|..."
	head, rest, hasType := bytes.Cut(l, []byte{'|'})
	colon := bytes.IndexByte(head, ':')
	if colon < 0 {
		return len(head), "missing ':' between metric name and value"
	}
	mri, values := head[:colon], head[colon+1:]
	if !hasType {
		return len(l), "missing '|<type>' after the value"
	}
	typeOff := len(head) + 1
	typ, rest, more := bytes.Cut(rest, []byte{'|'})
	t := parseStatsdType(typ)
	if t == 0 {
		return typeOff, fmt.Sprintf("unknown metric type %q", clipBytes(typ))
	}
	b.Type = t
	b.Timestamp = ts
	b.Metadata.Merges = 1

	p.buf = p.buf[:0]
	if off, msg := p.appendMRI(t, mri); msg != "" {
		return off, msg
	}
	mriLen := len(p.buf)

	valOff := colon + 1
	if off, msg := p.parseValues(b, t, values); msg != "" {
		return valOff + off, msg
	}

	p.spans = p.spans[:0]
	off := typeOff + len(typ) + 1
	for more {
		var c []byte
		c, rest, more = bytes.Cut(rest, []byte{'|'})
		if len(c) > 0 {
			switch c[0] {
			case '#':
				p.buf = p.buf[:mriLen] // the last tags component wins
				p.spans = p.spans[:0]
				p.parseTags(c[1:])
			case 'T':
				v, ok := parseRustUint(c[1:], math.MaxInt64)
				if !ok {
					return off, fmt.Sprintf("invalid timestamp %q", clipBytes(c))
				}
				b.Timestamp = int64(v)
			}
		}
		off += len(c) + 1
	}
	p.finish(mriLen)
	return 0, ""
}

// appendMRI appends the normalised MRI of the statsd name mri to p.buf.
func (p *statsdParser) appendMRI(t MetricType, mri []byte) (int, string) {
	name, unit := mri, []byte(nil)
	hasUnit := false
	if at := bytes.IndexByte(mri, '@'); at >= 0 {
		name, hasUnit = mri[:at], true
		unit = mri[at+1:]
		if at2 := bytes.IndexByte(unit, '@'); at2 >= 0 {
			unit = unit[:at2] // Relay ignores everything after a second '@'
		}
	}
	nameOff := 0
	ns := "custom"
	if slash := bytes.IndexByte(name, '/'); slash >= 0 {
		ns = metricNamespace(name[:slash])
		name = name[slash+1:]
		nameOff = slash + 1
	}
	if len(name) == 0 {
		return nameOff, "empty metric name"
	}
	if c := name[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return nameOff, fmt.Sprintf("invalid metric name %q: must start with an ASCII letter", clipBytes(name))
	}
	unitStr := "none"
	if hasUnit {
		var ok bool
		if unitStr, ok = MetricUnit(unit); !ok {
			return len(name) + nameOff + 1, fmt.Sprintf("invalid unit %q", clipBytes(unit))
		}
	}
	p.buf = append(p.buf, byte(t), ':')
	p.buf = append(p.buf, ns...)
	p.buf = append(p.buf, '/')
	nameStart := len(p.buf)
	inRun := false
	for _, c := range name {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' {
			p.buf = append(p.buf, c)
			inRun = false
		} else if !inRun {
			p.buf = append(p.buf, '_')
			inRun = true
		}
	}
	if len(p.buf)-nameStart > maxMetricNameLen {
		p.buf = p.buf[:nameStart+maxMetricNameLen]
	}
	p.buf = append(p.buf, '@')
	if unitStr == "" { // custom unit: lowercase copy
		for _, c := range unit {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			p.buf = append(p.buf, c)
		}
	} else {
		p.buf = append(p.buf, unitStr...)
	}
	return 0, ""
}

// metricNamespace maps a statsd namespace to Relay's MetricNamespace name.
func metricNamespace(ns []byte) string {
	switch string(ns) {
	case "sessions":
		return "sessions"
	case "transactions":
		return "transactions"
	case "spans":
		return "spans"
	case "custom":
		return "custom"
	case "stats":
		return "stats"
	}
	return "unsupported"
}

// MetricUnit returns the canonical name of a unit as Relay's MetricUnit
// reads it (aliases such as "ms" included); "" with ok means a valid
// custom unit. Metric buckets and event measurements share it.
func MetricUnit(u []byte) (string, bool) {
	if c, ok := knownUnits[string(u)]; ok {
		return c, true
	}
	if len(u) > 15 {
		return "", false
	}
	for _, c := range u {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return "", false
		}
	}
	return "", true
}

// knownUnits maps Relay's unit names and aliases to canonical names.
var knownUnits = map[string]string{
	"nanosecond": "nanosecond", "ns": "nanosecond", "microsecond": "microsecond",
	"millisecond": "millisecond", "ms": "millisecond", "second": "second", "s": "second",
	"minute": "minute", "hour": "hour", "day": "day", "week": "week",
	"bit": "bit", "byte": "byte", "kilobyte": "kilobyte", "kibibyte": "kibibyte",
	"megabyte": "megabyte", "mebibyte": "mebibyte", "gigabyte": "gigabyte", "gibibyte": "gibibyte",
	"terabyte": "terabyte", "tebibyte": "tebibyte", "petabyte": "petabyte", "pebibyte": "pebibyte",
	"exabyte": "exabyte", "exbibyte": "exbibyte", "ratio": "ratio", "percent": "percent",
	"": "none", "none": "none",
}

// parseValues parses the ':'-separated values for type t into b.Value.
func (p *statsdParser) parseValues(b *Bucket, t MetricType, values []byte) (int, string) {
	switch t {
	case MetricCounter:
		sum := 0.0
		for off := 0; ; {
			v, _, more := bytes.Cut(values[off:], []byte{':'})
			f, ok := parseRustFloat(v)
			if !ok {
				return off, fmt.Sprintf("invalid counter value %q", clipBytes(v))
			}
			sum = satAdd(sum, f)
			if !more {
				break
			}
			off += len(v) + 1
		}
		b.Value.Counter = sum
	case MetricDistribution:
		// Straight into the payload's shared array; a bad value takes the
		// line's values back out.
		if p.dists == nil {
			p.dists = make([]float64, 0, p.values)
		}
		start := len(p.dists)
		for off := 0; ; {
			v, _, more := bytes.Cut(values[off:], []byte{':'})
			f, ok := parseRustFloat(v)
			if !ok {
				p.dists = p.dists[:start]
				return off, fmt.Sprintf("invalid distribution value %q", clipBytes(v))
			}
			p.dists = append(p.dists, f)
			if !more {
				break
			}
			off += len(v) + 1
		}
		p.cur.valS, p.cur.valE = int32(start), int32(len(p.dists))
	case MetricSet:
		if p.sets == nil {
			p.sets = make([]uint32, 0, p.values)
		}
		start := len(p.sets)
		for off := 0; ; {
			v, _, more := bytes.Cut(values[off:], []byte{':'})
			n, ok := parseRustUint(v, math.MaxUint32)
			if !ok {
				n = uint64(hashSetValue(v))
			}
			p.sets = append(p.sets, uint32(n))
			if !more {
				break
			}
			off += len(v) + 1
		}
		slices.Sort(p.sets[start:])
		p.sets = p.sets[:start+len(slices.Compact(p.sets[start:]))]
		p.cur.valS, p.cur.valE = int32(start), int32(len(p.sets))
	case MetricGauge:
		var f [4]float64
		off, k := 0, 0
		for ; k < 5; k++ {
			v, _, more := bytes.Cut(values[off:], []byte{':'})
			if k < 4 {
				x, ok := parseRustFloat(v)
				if !ok {
					return off, fmt.Sprintf("invalid gauge value %q", clipBytes(v))
				}
				f[k] = x
			} else {
				n, ok := parseRustUint(v, math.MaxUint64)
				if !ok {
					return off, fmt.Sprintf("invalid gauge count %q", clipBytes(v))
				}
				b.Value.Gauge = GaugeValue{Last: f[0], Min: f[1], Max: f[2], Sum: f[3], Count: n}
				return 0, ""
			}
			off += len(v) + 1
			if !more {
				break
			}
		}
		if k != 0 {
			return len(values), "gauge needs 1 value or 5 (last:min:max:sum:count)"
		}
		b.Value.Gauge = GaugeValue{Last: f[0], Min: f[0], Max: f[0], Sum: f[0], Count: 1}
	}
	return 0, ""
}

// parseTags parses "key[:value],..." into p.buf and p.spans.
func (p *statsdParser) parseTags(s []byte) {
	for {
		pair, rest, more := bytes.Cut(s, []byte{','})
		key, val, _ := bytes.Cut(pair, []byte{':'})
		if validTagKey(key) {
			ks := len(p.buf)
			p.buf = append(p.buf, key...)
			vs := len(p.buf)
			var ok bool
			if p.buf, ok = unescapeTagValue(p.buf, val); ok {
				p.spans = append(p.spans, tagSpan{int32(ks), int32(vs), int32(vs), int32(len(p.buf))})
			} else {
				p.buf = p.buf[:ks]
			}
		}
		if !more {
			return
		}
		s = rest
	}
}

// finish moves the line's name and tags into the shared memory; resolve
// sets b.Name and b.Tags once the whole payload is parsed.
func (p *statsdParser) finish(mriLen int) {
	base := int32(len(p.text))
	p.text = append(p.text, p.buf...)
	p.cur.nameS, p.cur.nameE = base, base+int32(mriLen)
	p.cur.tagS = int32(len(p.tags))
	for _, sp := range lastTagPerKey(p.buf, p.spans) {
		p.tags = append(p.tags, tagSpan{sp.ks + base, sp.ke + base, sp.vs + base, sp.ve + base})
	}
	p.cur.tagE = int32(len(p.tags))
}

// buildTags returns the last tag of each key in spans, sorted by key, as
// substrings of s (a copy of buf).
func buildTags(s string, buf []byte, spans []tagSpan) []Tag {
	spans = lastTagPerKey(buf, spans)
	if len(spans) == 0 {
		return nil
	}
	tags := make([]Tag, len(spans))
	for i, sp := range spans {
		tags[i] = Tag{s[sp.ks:sp.ke], s[sp.vs:sp.ve]}
	}
	return tags
}

// lastTagPerKey sorts spans by key (stable, so the last of equal keys is
// the last given) and drops all but the last of each key.
func lastTagPerKey(buf []byte, spans []tagSpan) []tagSpan {
	if len(spans) < 2 {
		return spans
	}
	slices.SortStableFunc(spans, func(a, b tagSpan) int {
		return bytes.Compare(buf[a.ks:a.ke], buf[b.ks:b.ke])
	})
	w := 0
	for i := range spans {
		if i+1 < len(spans) && bytes.Equal(buf[spans[i].ks:spans[i].ke], buf[spans[i+1].ks:spans[i+1].ke]) {
			continue
		}
		spans[w] = spans[i]
		w++
	}
	return spans[:w]
}

// validTagKey is Relay's is_valid_tag_key: no ASCII control characters.
func validTagKey(k []byte) bool {
	for _, c := range k {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// unescapeTagValue appends the unescaped tag value s (valid UTF-8) to dst
// without ASCII control characters, as Relay's unescape_tag_value (the
// unescaper crate, then validate_tag_value). ok is false for a malformed
// escape; dst is then garbage past its original length.
func unescapeTagValue(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c >= 0x20 && c != 0x7f {
				dst = append(dst, c)
			}
			i++
			continue
		}
		i++
		if i >= len(s) {
			return dst, false
		}
		var r rune
		switch c = s[i]; c {
		case 'b', 'f', 'n', 'r', 't', 'v': // control characters: stripped
			i++
			continue
		case '\'', '"', '\\', '/':
			r = rune(c)
			i++
		case 'u':
			i++
			if i >= len(s) {
				return dst, false
			}
			var digits []byte
			if s[i] == '{' {
				j := bytes.IndexByte(s[i+1:], '}')
				if j < 0 {
					digits, i = s[i+1:], len(s)
				} else {
					digits, i = s[i+1:i+1+j], i+2+j
				}
			} else {
				var ok bool
				if digits, ok = nextChars(s[i:], 4); !ok {
					return dst, false
				}
				i += len(digits)
			}
			v, ok := parseHexU32(digits)
			if !ok || v > utf8.MaxRune || (0xd800 <= v && v <= 0xdfff) {
				return dst, false
			}
			r = rune(v)
		case 'x':
			i++
			digits, ok := nextChars(s[i:], 2)
			if !ok {
				return dst, false
			}
			i += len(digits)
			v, ok := parseHexU32(digits)
			if !ok || v > 0xff {
				return dst, false
			}
			r = rune(v)
		default: // octal: \[0-3][0-7]{0,2} or \[4-7][0-7]?
			if c < '0' || c > '7' {
				return dst, false
			}
			v := rune(c - '0')
			i++
			extra := 2
			if c >= '4' {
				extra = 1
			}
			for ; extra > 0 && i < len(s) && '0' <= s[i] && s[i] <= '7'; extra-- {
				v = v*8 + rune(s[i]-'0')
				i++
			}
			r = v
		}
		if r >= 0x20 && r != 0x7f {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst, true
}

// nextChars returns the first n characters (runes) of s.
func nextChars(s []byte, n int) ([]byte, bool) {
	i := 0
	for ; n > 0; n-- {
		if i >= len(s) {
			return nil, false
		}
		_, size := utf8.DecodeRune(s[i:])
		i += size
	}
	return s[:i], true
}

// parseHexU32 is Rust's u32::from_str_radix(s, 16): an optional '+', then at
// least one hex digit, no overflow.
func parseHexU32(s []byte) (uint32, bool) {
	if len(s) > 1 && s[0] == '+' {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		d := unhex(c)
		if d < 0 {
			return 0, false
		}
		if v = v<<4 | uint64(d); v > math.MaxUint32 {
			return 0, false
		}
	}
	return uint32(v), true
}

// parseRustUint parses a decimal integer as Rust's u32/u64 FromStr does (an
// optional '+', then digits), no larger than limit.
func parseRustUint(s []byte, limit uint64) (uint64, bool) {
	if len(s) > 1 && s[0] == '+' {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseRustFloat parses a finite float in the grammar of Rust's f64
// FromStr: [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?.
// Infinities and NaN (which Relay's FiniteF64 rejects), hex floats and
// underscores (which Go would accept) are refused, as are values that
// overflow to infinity.
func parseRustFloat(s []byte) (float64, bool) {
	// Fast path: short unsigned integers are exact.
	if n := len(s); n > 0 && n <= 15 {
		var v int64
		i := 0
		for ; i < n && '0' <= s[i] && s[i] <= '9'; i++ {
			v = v*10 + int64(s[i]-'0')
		}
		if i == n {
			return float64(v), true
		}
	}
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
		if i == d {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// clipBytes shortens b for error messages.
func clipBytes(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// ---------------------------------------------------------------------------
// Bucket JSON

// ParseBuckets parses the payload of a "metric_buckets" item: a JSON array
// of Relay bucket objects {"timestamp", "width", "name", "type", "value",
// "tags"?, "metadata"?}. Like serde in Relay it requires timestamp, width,
// name, type and value, reads value by type (a number for c, an array of
// numbers for d, an array of u32 for s, an object with last, min, max, sum
// and count for g), ignores unknown keys and rejects repeated known keys.
// Sets are sorted and deduplicated and tags sorted (the last of a repeated
// key wins), as Relay's BTreeSet and BTreeMap do. Names are kept verbatim.
// Timestamps and widths above MaxInt64 are rejected (Relay allows u64);
// metadata without merges counts 1 merge.
//
// Any problem fails the whole payload with a *ParseError (unwrapping to
// ErrInvalid) that gives the byte offset and the bucket index.
func ParseBuckets(data []byte) ([]Bucket, error) {
	return AppendParsedBuckets(nil, data)
}

// AppendParsedBuckets is ParseBuckets appending to dst. On error dst is
// returned with its original length.
func AppendParsedBuckets(dst []Bucket, data []byte) ([]Bucket, error) {
	n0 := len(dst)
	fail := func(off, idx int, msg string) ([]Bucket, error) {
		if idx >= 0 {
			msg = fmt.Sprintf("metric bucket %d: %s", idx, msg)
		} else {
			msg = "metric buckets: " + msg
		}
		return dst[:n0], &ParseError{Offset: off, Err: ErrInvalid, Msg: msg}
	}
	if err := validJSON(data); err != nil {
		return fail(err.off, -1, err.msg)
	}
	i := skipWS(data, 0)
	if data[i] != '[' {
		return fail(i, -1, "expected a JSON array")
	}
	var jp jsonBucketParser
	i = skipWS(data, i+1)
	for idx := 0; data[i] != ']'; idx++ {
		var b Bucket
		end, off, msg := jp.parse(&b, data, i)
		if msg != "" {
			return fail(off, idx, msg)
		}
		dst = append(dst, b)
		if i = skipWS(data, end); data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return dst, nil
}

// jsonBucketParser holds scratch memory reused across the buckets of a
// payload.
type jsonBucketParser struct {
	buf          []byte // unescaped name, tag keys and values
	spans        []tagSpan
	nameS, nameE int
}

// Bucket object keys, as bits.
const (
	bkTimestamp = 1 << iota
	bkWidth
	bkName
	bkType
	bkValue
	bkTags
	bkMetadata
	bkRequired = bkTimestamp | bkWidth | bkName | bkType | bkValue
)

var bucketKeys = [...]struct {
	bit  int
	name string
}{
	{bkTimestamp, "timestamp"}, {bkWidth, "width"}, {bkName, "name"}, {bkType, "type"},
	{bkValue, "value"}, {bkTags, "tags"}, {bkMetadata, "metadata"},
}

// parse parses the bucket object at data[i] (inside validated JSON) into b
// and returns the index after it, or an offset and a message.
func (jp *jsonBucketParser) parse(b *Bucket, data []byte, i int) (end, off int, msg string) {
	if data[i] != '{' {
		return 0, i, "expected a JSON object"
	}
	jp.buf, jp.spans = jp.buf[:0], jp.spans[:0]
	b.Metadata.Merges = 1
	seen := 0
	var valStart, valEnd int
	var it objIter
	_ = it.init(data, i)
	for it.next() {
		field := 0
		for _, k := range bucketKeys {
			if it.keyIs(k.name) {
				field = k.bit
				break
			}
		}
		if field == 0 {
			continue // unknown keys are ignored, as by serde
		}
		if seen&field != 0 {
			return 0, it.keyStart, "duplicate key " + string(data[it.keyStart:it.keyEnd])
		}
		seen |= field
		v := data[it.valStart:it.valEnd]
		switch field {
		case bkTimestamp, bkWidth:
			n, ok := jsonInt(v, math.MaxInt64)
			if !ok {
				return 0, it.valStart, fmt.Sprintf("%q must be an integer in 0..2^63-1", data[it.keyStart+1:it.keyEnd-1])
			}
			if field == bkTimestamp {
				b.Timestamp = int64(n)
			} else {
				b.Width = int64(n)
			}
		case bkName:
			content, esc, ok := stringValue(v)
			if !ok {
				return 0, it.valStart, `"name" must be a string`
			}
			jp.nameS = len(jp.buf)
			jp.buf = appendJSONContent(jp.buf, content, esc)
			jp.nameE = len(jp.buf)
		case bkType:
			content, esc, ok := stringValue(v)
			if ok && esc {
				var tmp [8]byte
				content = unescapeJSON(tmp[:0], content)
			}
			if !ok || len(content) != 1 || !MetricType(content[0]).Valid() {
				return 0, it.valStart, `"type" must be "c", "d", "s" or "g"`
			}
			b.Type = MetricType(content[0])
		case bkValue:
			valStart, valEnd = it.valStart, it.valEnd
		case bkTags:
			if off, msg := jp.parseTags(data, it.valStart); msg != "" {
				return 0, off, msg
			}
		case bkMetadata:
			if off, msg := parseMetadata(&b.Metadata, data, it.valStart); msg != "" {
				return 0, off, msg
			}
		}
	}
	if missing := bkRequired &^ seen; missing != 0 {
		for _, k := range bucketKeys {
			if missing&k.bit != 0 {
				return 0, i, fmt.Sprintf("missing %q", k.name)
			}
		}
	}
	if off, msg := parseBucketValue(b, data[valStart:valEnd], valStart); msg != "" {
		return 0, off, msg
	}
	s := string(jp.buf)
	b.Name = s[jp.nameS:jp.nameE]
	b.Tags = buildTags(s, jp.buf, jp.spans)
	return it.end, 0, ""
}

func appendJSONContent(dst, content []byte, esc bool) []byte {
	if esc {
		return unescapeJSON(dst, content)
	}
	return append(dst, content...)
}

// parseTags reads the tags object at data[i] into jp.buf and jp.spans.
func (jp *jsonBucketParser) parseTags(data []byte, i int) (int, string) {
	var it objIter
	if it.init(data, i) != nil {
		return i, `"tags" must be an object of strings`
	}
	for it.next() {
		content, esc, ok := stringValue(data[it.valStart:it.valEnd])
		if !ok {
			return it.valStart, fmt.Sprintf("tag %s must have a string value", data[it.keyStart:it.keyEnd])
		}
		ks := len(jp.buf)
		jp.buf = appendJSONContent(jp.buf, data[it.keyStart+1:it.keyEnd-1], it.keyEsc)
		vs := len(jp.buf)
		jp.buf = appendJSONContent(jp.buf, content, esc)
		jp.spans = append(jp.spans, tagSpan{int32(ks), int32(vs), int32(vs), int32(len(jp.buf))})
	}
	return 0, ""
}

// parseMetadata reads the metadata object at data[i].
func parseMetadata(m *BucketMetadata, data []byte, i int) (int, string) {
	var it objIter
	if it.init(data, i) != nil {
		return i, `"metadata" must be an object`
	}
	var seenMerges, seenReceived bool
	for it.next() {
		v := data[it.valStart:it.valEnd]
		switch {
		case it.keyIs("merges"):
			n, ok := jsonInt(v, math.MaxUint32)
			if !ok || seenMerges {
				return it.valStart, `"metadata.merges" must be one integer in 0..2^32-1`
			}
			m.Merges, seenMerges = uint32(n), true
		case it.keyIs("received_at"):
			if seenReceived {
				return it.keyStart, `duplicate key "received_at"`
			}
			seenReceived = true
			if isNull(v) {
				m.ReceivedAt = 0
				continue
			}
			n, ok := jsonInt(v, math.MaxInt64)
			if !ok {
				return it.valStart, `"metadata.received_at" must be null or an integer in 0..2^63-1`
			}
			m.ReceivedAt = int64(n)
		}
	}
	return 0, ""
}

// parseBucketValue reads the value v (at offset off) for b.Type.
func parseBucketValue(b *Bucket, v []byte, off int) (int, string) {
	switch b.Type {
	case MetricCounter:
		f, ok := jsonFloat(v)
		if !ok {
			return off, `"value" of a counter must be a finite number`
		}
		b.Value.Counter = f
	case MetricDistribution, MetricSet:
		if v[0] != '[' {
			return off, fmt.Sprintf(`"value" of type %s must be an array`, b.Type)
		}
		var dist []float64
		var set []uint32
		for i := skipWS(v, 1); v[i] != ']'; {
			end, _ := scanValue(v, i, 1)
			e := v[i:end]
			if b.Type == MetricDistribution {
				f, ok := jsonFloat(e)
				if !ok {
					return off + i, "distribution values must be finite numbers"
				}
				dist = append(dist, f)
			} else {
				n, ok := jsonInt(e, math.MaxUint32)
				if !ok {
					return off + i, "set values must be integers in 0..2^32-1"
				}
				set = append(set, uint32(n))
			}
			if i = skipWS(v, end); v[i] == ',' {
				i = skipWS(v, i+1)
			}
		}
		if b.Type == MetricDistribution {
			b.Value.Distribution = dist
		} else {
			slices.Sort(set)
			b.Value.Set = slices.Clip(slices.Compact(set))
		}
	case MetricGauge:
		var it objIter
		if it.init(v, 0) != nil {
			return off, `"value" of a gauge must be an object`
		}
		g := &b.Value.Gauge
		seen := 0
		for it.next() {
			e := v[it.valStart:it.valEnd]
			k, f := -1, (*float64)(nil)
			for j, name := range [...]string{"last", "min", "max", "sum", "count"} {
				if it.keyIs(name) {
					k = j
					break
				}
			}
			switch k {
			case -1:
				continue
			case 0:
				f = &g.Last
			case 1:
				f = &g.Min
			case 2:
				f = &g.Max
			case 3:
				f = &g.Sum
			}
			if seen&(1<<k) != 0 {
				return off + it.keyStart, "duplicate gauge key " + string(v[it.keyStart:it.keyEnd])
			}
			seen |= 1 << k
			if f != nil {
				x, ok := jsonFloat(e)
				if !ok {
					return off + it.valStart, "gauge last, min, max and sum must be finite numbers"
				}
				*f = x
			} else {
				n, ok := jsonInt(e, math.MaxUint64)
				if !ok {
					return off + it.valStart, "gauge count must be a non-negative integer"
				}
				g.Count = n
			}
		}
		if seen != 0x1f {
			return off, "gauge value needs last, min, max, sum and count"
		}
	}
	return 0, ""
}

// jsonInt parses a validated JSON number as an integer in 0..limit (serde's
// unsigned integers: no fraction, no exponent).
func jsonInt(v []byte, limit uint64) (uint64, bool) {
	if len(v) == 0 || v[0] == '+' {
		return 0, false
	}
	return parseRustUint(v, limit)
}

// jsonFloat parses a JSON number (any other value fails) as a finite float.
func jsonFloat(v []byte) (float64, bool) {
	if len(v) == 0 || !(v[0] == '-' || '0' <= v[0] && v[0] <= '9') {
		return 0, false
	}
	return parseRustFloat(v)
}

// AppendBucketsJSON appends bs as a Relay bucket JSON array: per bucket
// timestamp, width, name, type, value, then tags when there are any and
// metadata when it differs from the default (1 merge, no received_at), as
// Relay serializes them. Floats are written as serde_json does for finite
// values ("4.0", "1e21"); a non-finite float (only possible in buckets
// built by hand) is written as null.
func AppendBucketsJSON(dst []byte, bs []Bucket) []byte {
	dst = append(dst, '[')
	for i := range bs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = bs[i].AppendJSON(dst)
	}
	return append(dst, ']')
}

// AppendJSON appends b as one Relay bucket JSON object.
func (b *Bucket) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"timestamp":`...)
	dst = strconv.AppendInt(dst, b.Timestamp, 10)
	dst = append(dst, `,"width":`...)
	dst = strconv.AppendInt(dst, b.Width, 10)
	dst = append(dst, `,"name":`...)
	dst = appendJSONString(dst, b.Name)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, b.Type.String()...)
	dst = append(dst, `","value":`...)
	switch b.Type {
	case MetricCounter:
		dst = appendJSONFloat(dst, b.Value.Counter)
	case MetricDistribution:
		dst = append(dst, '[')
		for i, f := range b.Value.Distribution {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONFloat(dst, f)
		}
		dst = append(dst, ']')
	case MetricSet:
		dst = append(dst, '[')
		for i, v := range b.Value.Set {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, uint64(v), 10)
		}
		dst = append(dst, ']')
	case MetricGauge:
		g := &b.Value.Gauge
		dst = append(dst, `{"last":`...)
		dst = appendJSONFloat(dst, g.Last)
		dst = append(dst, `,"min":`...)
		dst = appendJSONFloat(dst, g.Min)
		dst = append(dst, `,"max":`...)
		dst = appendJSONFloat(dst, g.Max)
		dst = append(dst, `,"sum":`...)
		dst = appendJSONFloat(dst, g.Sum)
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendUint(dst, g.Count, 10)
		dst = append(dst, '}')
	default:
		dst = append(dst, "null"...)
	}
	if len(b.Tags) > 0 {
		dst = append(dst, `,"tags":{`...)
		for i := range b.Tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, b.Tags[i].Key)
			dst = append(dst, ':')
			dst = appendJSONString(dst, b.Tags[i].Value)
		}
		dst = append(dst, '}')
	}
	if !b.Metadata.isDefault() {
		dst = append(dst, `,"metadata":{"merges":`...)
		dst = strconv.AppendUint(dst, uint64(b.Metadata.Merges), 10)
		if b.Metadata.ReceivedAt != 0 {
			dst = append(dst, `,"received_at":`...)
			dst = strconv.AppendInt(dst, b.Metadata.ReceivedAt, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendJSONFloat writes f like serde_json (ryu): shortest round-trip
// digits, ".0" on integral values, exponent form outside [1e-6, 1e21).
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(dst, "null"...)
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		n := len(dst)
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// "1e+21" -> "1e21", "1e-07" -> "1e-7"
		e := bytes.IndexByte(dst[n:], 'e') + n + 1
		if dst[e] == '+' {
			dst = append(dst[:e], dst[e+1:]...)
		} else {
			e++
		}
		if dst[e] == '0' && e+1 < len(dst) {
			dst = append(dst[:e], dst[e+1:]...)
		}
		return dst
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	if bytes.IndexByte(dst[n:], '.') < 0 {
		dst = append(dst, '.', '0')
	}
	return dst
}
