package buffer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCrashCloneAck (G1, crash-clone-ack): writers append concurrently while
// the filesystem is crash-cloned mid-flight, keeping a random share of
// unsynced writes. Every Append that returned nil before the clone must be in
// the clone, once, in per-stream order.
func TestCrashCloneAck(t *testing.T) {
	for round := 0; round < 6; round++ {
		seed := uint64(time.Now().UnixNano())
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fs := vfs.NewCrashableMem()
			opts := Options{FS: fs, Logger: &testLogger{tb: t}, MemTableSize: 256 << 10}
			b, err := Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu    sync.Mutex
				acked = map[string]bool{}
				stop  = make(chan struct{})
				wg    sync.WaitGroup
			)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						v := fmt.Sprintf("w%d-%d", w, i)
						err := b.Append(context.Background(), []Entry{{Stream: Stream(w % 3), Value: []byte(v)}})
						if err != nil {
							return // closed under us
						}
						mu.Lock()
						acked[v] = true
						mu.Unlock()
					}
				}()
			}
			// Crash after a random number of acks, not a random time: every
			// round then checks a crash with acked writes in flight.
			target := 10 + rng.IntN(300)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				mu.Lock()
				n := len(acked)
				if n >= target {
					break // still holding mu: nothing is acked between the count and the clone
				}
				mu.Unlock()
				if time.Now().After(deadline) {
					t.Fatalf("seed %d: only %d of %d appends acked in 10s", seed, n, target)
				}
			}
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, 8))})
			want := make(map[string]bool, len(acked))
			for k := range acked {
				want[k] = true
			}
			mu.Unlock()
			close(stop)
			wg.Wait()
			_ = b.Close()

			opts.FS = clone
			b, err = Open("db", opts)
			if err != nil {
				t.Fatalf("seed %d: open clone: %v", seed, err)
			}
			defer b.Close()
			got := map[string]bool{}
			for s := Stream(0); s < 3; s++ {
				last := map[int]int{} // per writer: each writes one stream, in order
				for _, v := range readAll(t, b, s) {
					if got[v] {
						t.Fatalf("seed %d: %s delivered twice", seed, v)
					}
					got[v] = true
					var w, i int
					fmt.Sscanf(v, "w%d-%d", &w, &i)
					if prev, ok := last[w]; ok && i <= prev {
						t.Fatalf("seed %d: stream %d: %s after w%d-%d", seed, s, v, w, prev)
					}
					last[w] = i
				}
			}
			for v := range want {
				if !got[v] {
					t.Fatalf("seed %d: acked %s lost (%d acked before the crash, %d recovered)", seed, v, len(want), len(got))
				}
			}
			if len(want) == 0 {
				t.Fatalf("seed %d: nothing was acked before the crash", seed)
			}
		})
	}
}
