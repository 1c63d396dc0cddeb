// Package intake reads request bodies under one memory budget.
//
// A request body costs memory three times over before it is durable: the
// bytes read off the wire, the bytes its Content-Encoding expands to, and
// the records built from them. An attacker controls all three: a 1 MB gzip
// body can claim a gigabyte, and a chunked body has no declared length. So
// every byte a request holds is reserved from a Budget before it is
// allocated (reserve, then grow), and handed back when the request ends:
//
//	wire ──Read──► raw ──Decode──► decoded ──► records, batch copy
//	       │                │                      │
//	       └── Lease.Grow ──┴───── Lease.Grow ─────┘  ◄── Budget (one per relay)
//
// Decoders are charged for their own state too (the brotli ring buffer and
// the zstd window are read from the stream's header before decoding
// starts). Decoding stops at the endpoint's size limit and when the
// request's share of the budget is used up, whichever comes first.
//
// A reservation that cannot fit is one of two errors. ErrBusy: other
// requests hold the budget now; the client should retry (HTTP 503 with
// Retry-After). ErrOverBudget: this request alone needs more than the
// budget could ever give it (HTTP 413). Requests that stay small (at most
// SmallRequest bytes) may use the whole budget; larger ones only what is
// left above a floor (an eighth), so a flood of large or hostile bodies
// never starves ordinary envelopes.
//
// The budget counts what requests hold, not what the garbage collector has
// yet to reclaim: the Go heap of a process under attack is about twice the
// budget (GOGC=100) plus the rest of Baton. DESIGN.md has the formula.
package intake
