package relay

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/baton-relay/baton/relay/internal/testutil"
	"github.com/baton-relay/baton/relay/record"
)

// BenchmarkIngestErrorMarks is BenchmarkIngest's error envelope, with a
// trace of its own in its header, into a tail-sampled project: its mark kept in
// memory only, and made durable (appended with the error, in the same
// batch; tailsample.Marks), back to back under strict and relaxed
// durability: what durable error marks cost an error on the ingest path.
func BenchmarkIngestErrorMarks(b *testing.B) {
	body := bytes.Replace(testutil.ErrorEnvelope(), []byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc",`),
		[]byte(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","trace":{"trace_id":"`+benchTraceID+`","public_key":"a7c3e9f1b5d24680ace13579bdf02468"},`), 1)
	for _, durability := range []string{"strict", "relaxed"} {
		for _, durable := range []bool{false, true} {
			b.Run(fmt.Sprintf("durability=%s/marks=%s", durability, map[bool]string{false: "memory", true: "durable"}[durable]), func(b *testing.B) {
				r, c := startTestRelayWith(b, durability, "tail_sampling:\n  projects: [\"1\"]\n", nil)
				if !durable {
					r.tail.marks = nil // before any request reaches the relay
				}
				benchBody(b, c, body)
				b.StopTimer()
				var marks int64
				for _, st := range r.buf.Stats().Streams {
					if record.Stream(st.Stream).IsMarks() {
						marks = st.Pending
					}
				}
				if want := map[bool]int64{false: 0, true: int64(b.N)}[durable]; marks != want {
					b.Fatalf("%d error marks in the buffer, want %d", marks, want)
				}
			})
		}
	}
}

const benchTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// benchBody posts body to project 1 from 64 concurrent clients, each
// request with a trace id of its own in place of benchTraceID.
func benchBody(b *testing.B, c *fasthttp.HostClient, body []byte) {
	var traces atomic.Uint64
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	cpu := cpuTime()
	defer func() {
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://baton/api/1/envelope/")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("X-Sentry-Auth", "Sentry sentry_key=a7c3e9f1b5d24680ace13579bdf02468, sentry_version=7, sentry_client=bench/1.0")
		body := bytes.Clone(body) // this client's: each request a trace of its own
		at := bytes.Index(body, []byte(benchTraceID))
		req.SetBodyRaw(body)
		for pb.Next() {
			copy(body[at:], fmt.Sprintf("%032x", traces.Add(1)))
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}
