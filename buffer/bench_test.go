package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

const benchRecordSize = 5 << 10 // the 5 KB envelopes of docs/performance-anchors.md

func benchValue() []byte {
	v := make([]byte, benchRecordSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range v {
		v[i] = byte('a' + r.IntN(26)) // text-like, like JSON envelopes
	}
	return v
}

// BenchmarkAppend measures durable (Strict) appends of single 5 KB records
// from 1, 16 and 64 concurrent writers on the real disk: the numbers to
// compare with raw Pebble in docs/performance-anchors.md (b6, b8, b11).
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			buf, err := Open(b.TempDir(), Options{Logger: &testLogger{tb: b}})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			val := benchValue()
			lat := make([][]time.Duration, writers)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(benchRecordSize)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					entries := []Entry{{Stream: Stream(w % 4), Value: val}}
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if err := buf.Append(context.Background(), entries); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			st := buf.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-append-ms")
			b.ReportMetric(float64(st.CommitLatency.Quantile(0.5).Microseconds())/1000, "p50-commit-ms")
			b.ReportMetric(float64(st.CommitLatency.Quantile(0.99).Microseconds())/1000, "p99-commit-ms")
			b.ReportMetric(float64(b.N)/float64(max(st.Commits, 1)), "records/commit")
		})
	}
}

// BenchmarkReadAck measures draining: Read up to 256 records, Ack them.
func BenchmarkReadAck(b *testing.B) {
	buf, err := Open(b.TempDir(), Options{Logger: &testLogger{tb: b}})
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	val := benchValue()
	batch := make([]Entry, 256)
	for n := 0; n < b.N; n += len(batch) {
		batch = batch[:min(256, b.N-n)]
		for i := range batch {
			batch[i] = Entry{Stream: 1, Value: val}
		}
		if err := buf.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(benchRecordSize)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var dst []Record
	for got := 0; got < b.N; {
		dst, err = buf.Read(context.Background(), 1, dst, 256, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := buf.Ack(1, dst[len(dst)-1].Seq); err != nil {
			b.Fatal(err)
		}
		got += len(dst)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkPebbleBaseline is raw Pebble on the same disk, for comparing
// BenchmarkAppend on a noisy machine: 64 concurrent Set(Sync) (anchor b8) and
// one writer committing batches of 64 with Sync (anchor b11).
func BenchmarkPebbleBaseline(b *testing.B) {
	for _, mode := range []string{"set-sync-64", "batch64-1writer"} {
		b.Run(mode, func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{MemTableSize: 64 << 20, Logger: &testLogger{tb: b}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			val := benchValue()
			var next atomic.Int64
			start := time.Now()
			if mode == "set-sync-64" {
				var wg sync.WaitGroup
				for w := 0; w < 64; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							n := next.Add(1)
							if n > int64(b.N) {
								return
							}
							_ = db.Set(binary.BigEndian.AppendUint64(nil, uint64(n)), val, pebble.Sync)
						}
					}()
				}
				wg.Wait()
			} else {
				for n := 0; n < b.N; n += 64 {
					bt := db.NewBatch()
					for i := 0; i < 64; i++ {
						_ = bt.Set(binary.BigEndian.AppendUint64(nil, uint64(n+i)), val, nil)
					}
					_ = bt.Commit(pebble.Sync)
					bt.Close()
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkOpen measures Open+Close of a store holding a backlog in 8
// streams. The buffer itself reads only the per-stream meta keys; what grows
// with the backlog is Pebble replaying the WAL of the unflushed 64 MiB
// memtable.
func BenchmarkOpen(b *testing.B) {
	for _, backlog := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", backlog), func(b *testing.B) {
			dir := b.TempDir()
			opts := Options{Logger: &testLogger{tb: b}}
			buf, err := Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			batch := make([]Entry, 256)
			for n := 0; n < backlog; n += len(batch) {
				for i := range batch {
					batch[i] = Entry{Stream: Stream(i % 8), Value: val}
				}
				if err := buf.Append(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			if err := buf.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf, err := Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				if st := buf.Stats(); st.Pending < int64(backlog) {
					b.Fatalf("pending %d after reopen, want ≥ %d", st.Pending, backlog)
				}
				if err := buf.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenLarge measures Open+Close of a store holding 1 GiB of 1 KiB
// records in 16 streams, the start-up cost of a large backlog. It runs only
// with BATON_BENCH_OPEN_DIR set: the store is filled there once (a minute or
// so) and reused, so that versions of the code can be compared on the same
// data.
//
//	BATON_BENCH_OPEN_DIR=/tmp/open1g go test ./buffer -run '^$' -bench OpenLarge -benchtime 5x
func BenchmarkOpenLarge(b *testing.B) {
	dir := os.Getenv("BATON_BENCH_OPEN_DIR")
	if dir == "" {
		b.Skip("set BATON_BENCH_OPEN_DIR to a directory for the 1 GiB store")
	}
	const (
		total   = 1 << 30
		recSize = 1 << 10
		streams = 16
	)
	opts := Options{Logger: &testLogger{tb: b}, MaxBytes: 4 << 30, Weigh: benchWeigh}
	filled := filepath.Join(dir, "bench-filled")
	if _, err := os.Stat(filled); err != nil {
		fill := opts
		fill.Durability = Relaxed
		buf, err := Open(dir, fill)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		batch := make([]Entry, 256)
		vals := make([]byte, len(batch)*recSize)
		for n := 0; n < total/recSize; n += len(batch) {
			for i := range vals {
				vals[i] = byte(rng.Uint32())
			}
			for i := range batch {
				batch[i] = Entry{Stream: Stream((n + i) % streams), Value: vals[i*recSize : (i+1)*recSize]}
			}
			if err := buf.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := errors.Join(buf.Close(), os.WriteFile(filled, nil, 0o644)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, err := Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		if st := buf.Stats(); st.Pending != total/recSize {
			b.Fatalf("pending %d after reopen, want %d", st.Pending, total/recSize)
		}
		if err := buf.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWeigh gives each record the weight of its first byte.
func benchWeigh(v []byte) int64 {
	if len(v) == 0 {
		return 0
	}
	return int64(v[0])
}
