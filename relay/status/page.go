package status

import (
	"cmp"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/baton-relay/baton/relay/telemetry"
)

// Detail is what the relay knows that no instrument carries. The relay
// fills it from the same snapshots its metric callbacks read.
type Detail struct {
	Version string
	Mode    string
	Started time.Time
	// NotReady says why /ready answers 503; empty when it answers 200.
	NotReady []string
	// Routes are the destinations, by class name.
	Routes    map[string]Route
	Upstreams []Upstream
	Kafka     []Kafka
	Identity  Identity
	Managed   *Managed // nil unless managed mode
	Redis     *Redis   // nil unless redis is configured
}

// Redis is the fleet state in Redis (relay/fleet).
type Redis struct {
	Addresses []string `json:"addresses"`
	Up        bool     `json:"up"`
	Leases    int64    `json:"leases"`
	Fallbacks int64    `json:"fallbacks"`
	Windows   int      `json:"windows"`
	// CardinalityCalls are the metric cardinality batches Redis decided;
	// CardinalityFallbacks the series decided locally without it.
	CardinalityCalls     int64     `json:"cardinality_calls"`
	CardinalityFallbacks int64     `json:"cardinality_fallbacks"`
	LastError            string    `json:"last_error,omitempty"`
	LastErrorAt          time.Time `json:"last_error_at,omitzero"`
	// ProjectConfigs is redis.project_configs, nil when off.
	ProjectConfigs *RedisConfigs `json:"project_configs,omitempty"`
}

// RedisConfigs is the project config source in Redis.
type RedisConfigs struct {
	Prefix      string    `json:"prefix"`
	Subscribed  bool      `json:"subscribed"` // the update channel
	Reads       int64     `json:"reads"`      // pipelined reads
	Updates     int64     `json:"updates"`    // update messages received
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Route is where a class goes.
type Route struct {
	Kind  string `json:"kind"` // "upstream" or "kafka"
	Name  string `json:"name"`
	Topic string `json:"topic,omitempty"`
}

// Upstream is a pool of upstream relays.
type Upstream struct {
	Name    string   `json:"name"`
	Members []Member `json:"members"`
}

// Member is one URL of a pool.
type Member struct {
	URL         string    `json:"url"`
	State       string    `json:"state"` // healthy, ejected, outage
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Latency is the moving average round trip; LatencyMS the same for
	// the JSON.
	Latency   time.Duration `json:"-"`
	LatencyMS num           `json:"latency_ms"`
}

// Kafka is one cluster (its latency and error counts come from the
// instruments).
type Kafka struct {
	Name        string    `json:"name"`
	Connected   bool      `json:"connected"`
	Fault       string    `json:"fault,omitempty"` // the cluster refuses Baton: SASL, TLS, ACLs
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// From the instruments:
	ProduceP50MS  num   `json:"produce_p50_ms"`
	ProduceP99MS  num   `json:"produce_p99_ms"`
	RequestErrors int64 `json:"request_errors"`
	RecordErrors  int64 `json:"record_errors"`
	ConnectErrors int64 `json:"connect_errors"`
	DeadLettered  int64 `json:"dead_lettered"`
}

// Identity is the accounting identity of /api/relay/stats/.
type Identity struct {
	Recovered  int64 `json:"recovered"`
	Accepted   int64 `json:"accepted"`
	Produced   int64 `json:"produced"`
	Delivered  int64 `json:"delivered"`
	Dropped    int64 `json:"dropped"`
	Aggregated int64 `json:"aggregated"`
	Pending    int64 `json:"pending"`
	Balanced   bool  `json:"balanced"`
}

// Managed is managed mode's config cache and registration.
type Managed struct {
	Upstream   string `json:"upstream"`
	Registered bool   `json:"registered"`
	Configs    int    `json:"configs"`
	Misses     int    `json:"misses"` // keys cached as pending or unknown
	Waiting    int64  `json:"waiting_records"`
	Requests   int64  `json:"requests"`
	Failures   int64  `json:"failures"`
	LastError  string `json:"last_error,omitempty"`
	// From the instruments:
	FetchP50MS num `json:"fetch_p50_ms"`
	FetchP99MS num `json:"fetch_p99_ms"`
}

// Page is the JSON of /api/status.
type Page struct {
	Time       time.Time `json:"time"`
	IntervalMS int64     `json:"interval_ms"`
	Version    string    `json:"version"`
	Mode       string    `json:"mode"`
	UptimeS    num       `json:"uptime_s"`
	Ready      bool      `json:"ready"`
	NotReady   []string  `json:"not_ready"`
	// Per second over the last interval, in buffer records.
	AcceptedPS  num        `json:"accepted_per_s"`
	DeliveredPS num        `json:"delivered_per_s"`
	DroppedPS   num        `json:"dropped_per_s"`
	Memory      Memory     `json:"memory"`
	Disk        Disk       `json:"disk"`
	Streams     []Stream   `json:"streams"`
	Upstreams   []Upstream `json:"upstreams"`
	Kafka       []Kafka    `json:"kafka"`
	Drops       []Drop     `json:"drops"`
	Identity    Identity   `json:"identity"`
	Managed     *Managed   `json:"managed,omitempty"`
	Redis       *Redis     `json:"redis,omitempty"`
	Series      Series     `json:"series"`
	// ReadError is set when the instruments could not be read.
	ReadError string `json:"read_error,omitempty"`
}

// Memory is the process's resident memory against the Go memory limit.
type Memory struct {
	RSS   int64 `json:"rss_bytes"`
	Limit int64 `json:"limit_bytes"` // 0: none
}

// Disk is the buffer's bytes against its budget and the free space.
type Disk struct {
	Pending int64 `json:"pending_bytes"`
	Budget  int64 `json:"budget_bytes"`
	Files   int64 `json:"disk_bytes"`
	Free    int64 `json:"free_bytes"` // 0: unknown
	Full    bool  `json:"full"`
}

// Stream is one class's streams of a kind, partitions summed.
type Stream struct {
	Class        string `json:"class"`
	Kind         string `json:"kind"` // class, pending, flushed, outcomes, tail
	Pending      int64  `json:"pending_records"`
	PendingBytes int64  `json:"pending_bytes"`
	OldestAgeS   num    `json:"oldest_age_s"`
	IntakePS     num    `json:"intake_per_s"`
	DrainPS      num    `json:"drain_per_s"`
	Destination  string `json:"destination"`
	// State is idle (nothing pending or coming in), flowing, retrying
	// (Error says why), waiting (for project configs) or full.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// Drop is what was dropped of a class for a reason.
type Drop struct {
	Class   string `json:"class"`
	Reason  string `json:"reason"`
	Records int64  `json:"records"`
	Items   int64  `json:"items"`
	PerS    num    `json:"per_s"`
}

// Series are the charts' data, oldest first: unix seconds, records per
// second, pending records, ack latency in milliseconds (null: no acks).
type Series struct {
	T         []int64 `json:"t"`
	Accepted  []num   `json:"accepted"`
	Delivered []num   `json:"delivered"`
	Dropped   []num   `json:"dropped"`
	Backlog   []num   `json:"backlog"`
	AckP50    []num   `json:"ack_p50_ms"`
	AckP99    []num   `json:"ack_p99_ms"`
}

// sample is what rates are computed against.
type sample struct {
	at       time.Time
	accepted float64
	deliver  float64
	dropped  float64
	drops    map[string]float64 // class/reason → records
	streams  map[string]float64 // class/kind → pending + drained
	drained  map[string]float64 // class/kind → drained
	retries  map[string]float64 // route → retries
}

// build turns a reading and the detail into the page, and appends to the
// series.
func (s *Status) build(now time.Time, rd telemetry.Reading, d Detail) Page {
	p := Page{
		Time: now, IntervalMS: s.o.Interval.Milliseconds(), Version: d.Version, Mode: d.Mode,
		UptimeS: num(now.Sub(d.Started).Seconds()), Ready: len(d.NotReady) == 0, NotReady: d.NotReady,
		Identity: d.Identity, Managed: d.Managed, Drops: []Drop{},
	}
	p.Redis = d.Redis
	if p.NotReady == nil {
		p.NotReady = []string{}
	}
	cur := &sample{at: now, drops: map[string]float64{}, streams: map[string]float64{}, drained: map[string]float64{}, retries: map[string]float64{}}
	cur.accepted = sum(rd, "baton_accepted_records_total")
	cur.deliver = sum(rd, "baton_delivered_records_total")
	cur.dropped = sum(rd, "baton_dropped_records_total")
	prev, dt := s.prev, 0.0
	if prev != nil {
		dt = now.Sub(prev.at).Seconds()
	}
	rate := func(now, then float64) num {
		if dt <= 0 {
			return 0
		}
		return num(max(now-then, 0) / dt)
	}
	if prev != nil {
		p.AcceptedPS = rate(cur.accepted, prev.accepted)
		p.DeliveredPS = rate(cur.deliver, prev.deliver)
		p.DroppedPS = rate(cur.dropped, prev.dropped)
	}

	p.Memory = Memory{RSS: int64(sum(rd, "process_resident_memory_bytes")), Limit: int64(sum(rd, "baton_memory_limit_bytes"))}
	p.Disk = Disk{
		Pending: int64(sum(rd, "baton_buffer_pending_bytes")), Budget: int64(sum(rd, "baton_buffer_budget_bytes")),
		Files: int64(sum(rd, "baton_buffer_disk_bytes")), Free: int64(sum(rd, "baton_buffer_free_bytes")),
		Full: sum(rd, "baton_buffer_full") > 0,
	}

	// Drops by class and reason.
	items := map[string]float64{}
	for _, pt := range rd["baton_dropped_items_total"] {
		items[pt.Attrs["class"]+"/"+pt.Attrs["reason"]] += pt.Value
	}
	for _, pt := range rd["baton_dropped_records_total"] {
		k := pt.Attrs["class"] + "/" + pt.Attrs["reason"]
		cur.drops[k] += pt.Value
	}
	for k, v := range cur.drops {
		if v == 0 && items[k] == 0 {
			continue
		}
		class, reason, _ := strings.Cut(k, "/")
		dr := Drop{Class: class, Reason: reason, Records: int64(v), Items: int64(items[k])}
		if prev != nil {
			dr.PerS = rate(v, prev.drops[k])
		}
		p.Drops = append(p.Drops, dr)
	}
	slices.SortFunc(p.Drops, func(a, b Drop) int {
		return cmp.Or(cmp.Compare(b.Records, a.Records), cmp.Compare(a.Class, b.Class), cmp.Compare(a.Reason, b.Reason))
	})

	for _, pt := range rd["baton_forward_retries_total"] {
		cur.retries[pt.Attrs["route"]] += pt.Value
	}
	p.Upstreams = make([]Upstream, len(d.Upstreams))
	for i, u := range d.Upstreams {
		u.Members = slices.Clone(u.Members)
		for j := range u.Members {
			m := &u.Members[j]
			m.URL = RedactURL(m.URL)
			if m.Latency > 0 {
				m.LatencyMS = ms(m.Latency)
			} else {
				m.LatencyMS = num(math.NaN())
			}
		}
		p.Upstreams[i] = u
	}
	p.Kafka = s.kafka(rd, d)
	p.Streams = s.streams(rd, d, cur, prev, rate)
	if m := p.Managed; m != nil {
		m2 := *m
		l := s.quantiles("baton_project_fetch_latency_seconds", histogram(rd, "baton_project_fetch_latency_seconds", nil))
		m2.FetchP50MS, m2.FetchP99MS = l.p50, l.p99
		p.Managed = &m2
	}

	ack := s.quantilesDelta("ack", histogram(rd, "baton_ack_latency_seconds", nil))
	backlog := sum(rd, "baton_buffer_pending_records")
	s.ring.add(point{t: now.Unix(), accepted: p.AcceptedPS, delivered: p.DeliveredPS, dropped: p.DroppedPS,
		backlog: num(backlog), ackP50: ack.p50, ackP99: ack.p99})
	p.Series = s.ring.series()
	s.prev = cur
	return p
}

// streams groups the per-partition stream gauges by class and kind.
func (s *Status) streams(rd telemetry.Reading, d Detail, cur, prev *sample, rate func(now, then float64) num) []Stream {
	byKey := map[string]*Stream{}
	get := func(a map[string]string) *Stream {
		k := a["class"] + "/" + a["kind"]
		st := byKey[k]
		if st == nil {
			st = &Stream{Class: a["class"], Kind: a["kind"]}
			byKey[k] = st
		}
		return st
	}
	for _, pt := range rd["baton_buffer_stream_pending_records"] {
		st := get(pt.Attrs)
		st.Pending += int64(pt.Value)
	}
	for _, pt := range rd["baton_buffer_stream_pending_bytes"] {
		get(pt.Attrs).PendingBytes += int64(pt.Value)
	}
	for _, pt := range rd["baton_buffer_stream_oldest_age_seconds"] {
		st := get(pt.Attrs)
		st.OldestAgeS = max(st.OldestAgeS, num(pt.Value))
	}
	for _, pt := range rd["baton_buffer_stream_drained_records_total"] {
		get(pt.Attrs)
		cur.drained[pt.Attrs["class"]+"/"+pt.Attrs["kind"]] += pt.Value
	}
	full := sum(rd, "baton_buffer_full") > 0
	out := make([]Stream, 0, len(byKey))
	for k, st := range byKey {
		cur.streams[k] = float64(st.Pending) + cur.drained[k]
		if prev != nil {
			st.IntakePS = rate(cur.streams[k], prev.streams[k])
			st.DrainPS = rate(cur.drained[k], prev.drained[k])
		}
		route := st.Class
		if st.Kind == "outcomes" {
			route = "outcomes"
		}
		var dest Route
		switch st.Kind {
		case "pending":
			st.Destination = "waiting for its project's config"
		default:
			dest = d.Routes[st.Class]
			st.Destination = dest.String()
		}
		retrying := prev != nil && cur.retries[route] > prev.retries[route]
		down, why := d.down(dest)
		switch {
		case st.Pending > 0 && full:
			st.State = "full"
		case st.Kind == "pending" && st.Pending > 0:
			st.State = "waiting"
		case st.Pending > 0 && (retrying || down):
			st.State = "retrying"
			st.Error = why
			if st.Error == "" {
				st.Error = "sends fail; see " + st.Destination
			}
		case st.Pending == 0 && st.IntakePS == 0:
			st.State = "idle"
		default:
			st.State = "flowing"
		}
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b Stream) int { return cmp.Or(cmp.Compare(a.Class, b.Class), cmp.Compare(a.Kind, b.Kind)) })
	return out
}

func (r Route) String() string {
	switch {
	case r.Kind == "":
		return "—"
	case r.Topic != "":
		return r.Kind + " " + r.Name + " → " + r.Topic
	}
	return r.Kind + " " + r.Name
}

// down reports whether r's destination is down now, and its last error.
func (d Detail) down(r Route) (bool, string) {
	switch r.Kind {
	case "upstream":
		for _, u := range d.Upstreams {
			if u.Name != r.Name {
				continue
			}
			healthy, last := 0, Member{}
			for _, m := range u.Members {
				if m.State == "healthy" {
					healthy++
				}
				if m.LastError != "" && m.LastErrorAt.After(last.LastErrorAt) {
					last = m
				}
			}
			return healthy == 0, last.LastError
		}
	case "kafka":
		for _, k := range d.Kafka {
			if k.Name == r.Name {
				why := cmp.Or(k.Fault, k.LastError)
				return !k.Connected || k.Fault != "", why
			}
		}
	}
	return false, ""
}

// kafka adds each cluster's produce latency and error counts.
func (s *Status) kafka(rd telemetry.Reading, d Detail) []Kafka {
	out := slices.Clone(d.Kafka)
	for i := range out {
		k := &out[i]
		match := map[string]string{"cluster": k.Name}
		l := s.quantiles("kafka/"+k.Name, histogram(rd, "baton_kafka_produce_latency_seconds", match))
		k.ProduceP50MS, k.ProduceP99MS = l.p50, l.p99
		k.RequestErrors = int64(sumWhere(rd, "baton_kafka_produce_request_errors_total", match))
		k.RecordErrors = int64(sumWhere(rd, "baton_kafka_produce_record_errors_total", match))
		k.ConnectErrors = int64(sumWhere(rd, "baton_kafka_connect_errors_total", match))
		for class, r := range d.Routes {
			if r.Kind == "kafka" && r.Name == k.Name {
				k.DeadLettered += int64(sumWhere(rd, "baton_dead_lettered_records_total", map[string]string{"class": class}))
			}
		}
	}
	return out
}

func sum(rd telemetry.Reading, name string) float64 { return sumWhere(rd, name, nil) }

// sumWhere sums the points of name whose attributes include match.
func sumWhere(rd telemetry.Reading, name string, match map[string]string) float64 {
	var v float64
	for _, pt := range rd[name] {
		if matches(pt.Attrs, match) {
			v += pt.Value
		}
	}
	return v
}

func matches(a, match map[string]string) bool {
	for k, want := range match {
		if a[k] != want {
			return false
		}
	}
	return true
}

// hist is a cumulative histogram: counts per bucket, the last above every
// bound.
type hist struct {
	bounds []float64
	counts []uint64
}

// histogram sums the points of name whose attributes include match.
func histogram(rd telemetry.Reading, name string, match map[string]string) hist {
	var h hist
	for _, pt := range rd[name] {
		if !matches(pt.Attrs, match) || len(pt.Counts) == 0 {
			continue
		}
		if h.counts == nil {
			h.bounds, h.counts = pt.Bounds, make([]uint64, len(pt.Counts))
		}
		if len(pt.Counts) != len(h.counts) {
			continue
		}
		for i, c := range pt.Counts {
			h.counts[i] += c
		}
	}
	return h
}

type latency struct{ p50, p99 num }

// histPrev is a histogram's counts at the previous sample.
type histPrev []uint64

// quantilesDelta returns the quantiles (ms) of what h counted since the
// previous sample: NaN when nothing was.
func (s *Status) quantilesDelta(key string, h hist) latency {
	prev := s.hist[key]
	s.hist[key] = slices.Clone(h.counts)
	if len(prev) != len(h.counts) {
		prev = make(histPrev, len(h.counts))
	}
	d := hist{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		d.counts[i] = h.counts[i] - min(prev[i], h.counts[i])
	}
	return latency{num(quantile(d, 0.5) * 1000), num(quantile(d, 0.99) * 1000)}
}

// quantiles is quantilesDelta that keeps the last figures while nothing
// new was counted.
func (s *Status) quantiles(key string, h hist) latency {
	l := s.quantilesDelta(key, h)
	if math.IsNaN(float64(l.p50)) {
		if last, ok := s.last[key]; ok {
			return last
		}
		return l
	}
	s.last[key] = l
	return l
}

// quantile interpolates quantile q inside its bucket (the overflow bucket
// reads as its lower bound); NaN for an empty histogram.
func quantile(h hist, q float64) float64 {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i >= len(h.bounds) {
				return h.bounds[len(h.bounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = h.bounds[i-1]
			}
			return lo + (h.bounds[i]-lo)*(rank-seen)/float64(c)
		}
		seen += float64(c)
	}
	return h.bounds[len(h.bounds)-1]
}

// RedactURL drops a URL's user info, query and fragment: what a page may
// show of an upstream's address.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// ShortKey shortens a DSN public key to its first 8 characters.
func ShortKey(k string) string {
	if len(k) <= 8 {
		return k
	}
	return k[:8] + "…"
}

// ms is d in milliseconds.
func ms(d time.Duration) num { return num(float64(d) / float64(time.Millisecond)) }
