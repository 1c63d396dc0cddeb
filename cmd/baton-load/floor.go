package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
)

// Floor servers are the reference for "what must a durable relay do at the
// least": a fasthttp handler that reads the body, appends it to a Pebble WAL
// as one Set in a batch committed with pebble.Sync (concurrent requests share
// an fsync through Pebble's commit pipeline, the same group commit Baton's
// buffer relies on), then answers 200 {}. The kafka kinds also produce the
// body to a Kafka topic (asynchronously, as a relay forwards after the
// answer) and delete the key once the broker acknowledged it. The -nosync
// kinds commit with pebble.NoSync: the WAL is written but not fsynced, the
// floor of a relaxed relay. Nothing else: no parsing, no auth, no routing,
// no compression.
const (
	floorPebble       = "pebble"
	floorPebbleNoSync = "pebble-nosync"
	floorKafka        = "kafka"
	floorKafkaNoSync  = "kafka-nosync"
)

// floorKinds in the order the tables list them.
var floorKinds = []string{floorPebble, floorPebbleNoSync, floorKafka, floorKafkaNoSync}

// floorTopic receives the kafka floors' records. It is not a baton.* topic,
// so --kafka delivery checks do not count it.
const floorTopic = "baton-load-floor"

// floorMemTable matches Baton's buffer (48 MiB memtables).
const floorMemTable = 48 << 20

// floorReclaim is how often the pebble-only floors drop what they wrote
// (one DeleteRange), as if it had been forwarded: without it every body
// would be flushed to sstables and compacted, work a relay that keeps up
// does not do.
const floorReclaim = 100 * time.Millisecond

func floorProduces(kind string) bool { return strings.HasPrefix(kind, floorKafka) }

// floorConfig describes one floor server.
type floorConfig struct {
	kind  string
	addr  string // listen address, e.g. 127.0.0.1:0
	dir   string // Pebble directory
	kafka string // bootstrap broker, for the kafka kinds
	// reclaim is the pebble-only kinds' DeleteRange period; 0: floorReclaim,
	// negative: never (tests read back every record).
	reclaim time.Duration
}

// floorServer is one running floor.
type floorServer struct {
	cfg      floorConfig
	wo       *pebble.WriteOptions
	db       *pebble.DB
	cl       *kgo.Client // nil for the pebble-only kinds
	srv      *fasthttp.Server
	ln       net.Listener
	done     chan error
	next     atomic.Uint64 // last key handed out; keys are 1, 2, … big-endian
	served   atomic.Uint64
	bytes    atomic.Uint64
	failed   atomic.Uint64 // commits that failed (answered 500)
	produced atomic.Uint64
	prodErrs atomic.Uint64

	// Acked keys waiting for the deleter (kafka kinds).
	delMu   sync.Mutex
	acked   []uint64
	delWake chan struct{}
	stop    chan struct{}
	bg      sync.WaitGroup
}

// floorLogger drops Pebble's informational logs; errors go to stderr.
type floorLogger struct{}

func (floorLogger) Infof(string, ...any) {}
func (floorLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "baton-load: floor pebble: "+format+"\n", args...)
}
func (floorLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "baton-load: floor pebble: fatal: "+format+"\n", args...)
	os.Exit(2)
}

// startFloor opens the Pebble directory (and the Kafka client), listens on
// cfg.addr and serves in the background.
func startFloor(cfg floorConfig) (*floorServer, error) {
	if !slices.Contains(floorKinds, cfg.kind) {
		return nil, fmt.Errorf("floor server: unknown kind %q, want one of %s", cfg.kind, strings.Join(floorKinds, ", "))
	}
	if floorProduces(cfg.kind) && cfg.kafka == "" {
		return nil, fmt.Errorf("floor server %s: needs a Kafka broker (--floor-kafka)", cfg.kind)
	}
	if cfg.reclaim == 0 {
		cfg.reclaim = floorReclaim
	}
	f := &floorServer{cfg: cfg, wo: pebble.Sync, done: make(chan error, 1), delWake: make(chan struct{}, 1), stop: make(chan struct{})}
	if strings.HasSuffix(cfg.kind, "-nosync") {
		f.wo = pebble.NoSync
	}
	var err error
	f.db, err = pebble.Open(cfg.dir, &pebble.Options{MemTableSize: floorMemTable, FormatMajorVersion: pebble.FormatNewest, Logger: floorLogger{}})
	if err != nil {
		return nil, fmt.Errorf("floor server: open pebble %s: %w", cfg.dir, err)
	}
	if floorProduces(cfg.kind) {
		f.cl, err = kgo.NewClient(kgo.SeedBrokers(cfg.kafka), kgo.DefaultProduceTopic(floorTopic), kgo.AllowAutoTopicCreation(),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("floor server: kafka client for %s: %w", cfg.kafka, err), f.db.Close())
		}
	}
	f.ln, err = net.Listen("tcp", cfg.addr)
	if err != nil {
		if f.cl != nil {
			f.cl.Close()
		}
		return nil, errors.Join(fmt.Errorf("floor server: listen on %s: %w", cfg.addr, err), f.db.Close())
	}
	f.srv = &fasthttp.Server{
		Handler: f.handle, Name: "baton-load-floor", MaxRequestBodySize: 64 << 20,
		NoDefaultDate: true, NoDefaultContentType: true, NoDefaultServerHeader: true, CloseOnShutdown: true,
		ReadBufferSize: 16 << 10, MaxIdleWorkerDuration: time.Second, // as the no-op server
	}
	f.bg.Add(1)
	if f.cl != nil {
		go f.deleter()
	} else {
		go f.reclaimer()
	}
	go func() { f.done <- f.srv.Serve(f.ln) }()
	return f, nil
}

func floorKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func (f *floorServer) handle(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	seq := f.next.Add(1)
	key := floorKey(seq)
	var value []byte
	if f.cl != nil {
		value = bytes.Clone(body) // the record outlives the request
	}
	b := f.db.NewBatch()
	err := b.Set(key, body, nil)
	if err == nil {
		err = b.Commit(f.wo) // with pebble.Sync: returns after the group's fsync
	}
	_ = b.Close()
	if err != nil {
		f.failed.Add(1)
		ctx.Error("floor: "+err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	if f.cl != nil {
		f.cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				f.prodErrs.Add(1)
				return // stays in Pebble, as a relay would keep it for a retry
			}
			f.produced.Add(1)
			f.delMu.Lock()
			f.acked = append(f.acked, seq)
			f.delMu.Unlock()
			select {
			case f.delWake <- struct{}{}:
			default:
			}
		})
	}
	f.bytes.Add(uint64(len(body)))
	f.served.Add(1)
	ctx.SetContentType("application/json")
	ctx.SetBodyString("{}")
}

// deleter deletes acknowledged keys, one NoSync batch for whatever was
// acknowledged since the last one (losing a delete in a crash only resends).
func (f *floorServer) deleter() {
	defer f.bg.Done()
	var keys []uint64
	for {
		var stopping bool
		select {
		case <-f.delWake:
		case <-f.stop:
			stopping = true
		}
		f.delMu.Lock()
		keys, f.acked = f.acked, keys[:0]
		f.delMu.Unlock()
		if len(keys) > 0 {
			b := f.db.NewBatch()
			for _, k := range keys {
				_ = b.Delete(floorKey(k), nil)
			}
			if err := b.Commit(pebble.NoSync); err != nil {
				floorLogger{}.Errorf("delete acknowledged keys: %v", err)
			}
			_ = b.Close()
		}
		if stopping {
			return
		}
	}
}

// reclaimer drops, every cfg.reclaim, every key handed out before the
// previous tick: those are committed or failed by now (a commit still in
// flight lands above the range deletion and is dropped at the next tick).
func (f *floorServer) reclaimer() {
	defer f.bg.Done()
	if f.cfg.reclaim < 0 {
		<-f.stop
		return
	}
	t := time.NewTicker(f.cfg.reclaim)
	defer t.Stop()
	var upTo uint64 // keys below this were handed out a tick ago
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		if upTo > 1 {
			if err := f.db.DeleteRange(floorKey(0), floorKey(upTo), pebble.NoSync); err != nil {
				floorLogger{}.Errorf("reclaim: %v", err)
			}
		}
		upTo = f.next.Load() + 1
	}
}

// URL is the base URL to load.
func (f *floorServer) URL() string { return "http://" + f.ln.Addr().String() }

// Close stops serving, waits for the produced records' acknowledgements
// (10 s at most) and their deletes, and closes Pebble.
func (f *floorServer) Close() error {
	var errs []error
	if err := f.srv.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("floor server: shutdown: %w", err))
	}
	_ = f.ln.Close()
	if err := <-f.done; err != nil {
		errs = append(errs, err)
	}
	if f.cl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := f.cl.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("floor server: flush kafka: %w", err))
		}
		cancel()
		f.cl.Close()
	}
	close(f.stop)
	f.bg.Wait()
	if err := f.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("floor server: close pebble: %w", err))
	}
	return errors.Join(errs...)
}

// summary is what --serve-floor prints on exit.
func (f *floorServer) summary() string {
	s := fmt.Sprintf("floor server %s served %d requests, %d body bytes, %d failed commits", f.cfg.kind, f.served.Load(), f.bytes.Load(), f.failed.Load())
	if f.cl != nil {
		s += fmt.Sprintf("; produced %d to %s, %d produce errors", f.produced.Load(), floorTopic, f.prodErrs.Load())
	}
	return s
}

// floorListening is the first line --serve-floor prints; a parent baton-load
// reads the URL back from it.
const floorListening = "floor server listening on %s (kind %s, pebble %s); stop with Ctrl-C\n"

// serveFloor runs one floor server until ctx is done. Without --floor-dir
// its Pebble directory is a temporary one, removed on exit.
func serveFloor(ctx context.Context, o options, stdout, stderr io.Writer) int {
	dir := o.floorDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "baton-floor-"+o.serveFloor+"-")
		if err != nil {
			fmt.Fprintln(stderr, "baton-load:", err)
			return 2
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	f, err := startFloor(floorConfig{kind: o.serveFloor, addr: o.serveFloorAddr, dir: dir, kafka: o.floorKafka})
	if err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	fmt.Fprintf(stdout, floorListening, f.URL(), o.serveFloor, dir)
	<-ctx.Done()
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "baton-load:", err)
		return 2
	}
	fmt.Fprintln(stdout, f.summary())
	return 0
}

// startFloorChild runs a floor server in a child process (this binary with
// --serve-floor), its Pebble directory a fresh one under parent.
func startFloorChild(kind, parent, kafka string, stderr io.Writer) (*noopChild, string, error) {
	dir, err := os.MkdirTemp(parent, kind+"-")
	if err != nil {
		return nil, "", fmt.Errorf("floor server %s: %w", kind, err)
	}
	args := []string{"--serve-floor", kind, "127.0.0.1:0", "--floor-dir", dir}
	if kafka != "" {
		args = append(args, "--floor-kafka", kafka)
	}
	c, err := startChild("floor server "+kind, args, floorListening, stderr)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	return c, dir, nil
}

// startFloors starts one child per kind; the returned func stops them and
// removes their directories. Their Pebble directories go under dir (a
// temporary directory when empty): put it on the disk Baton's buffer is on.
func startFloors(kinds []string, dir, kafka string, stderr io.Writer) ([]*noopChild, func(), error) {
	parent := dir
	if parent == "" {
		tmp, err := os.MkdirTemp("", "baton-floors-")
		if err != nil {
			return nil, nil, err
		}
		parent = tmp
	}
	var children []*noopChild
	var dirs []string
	stop := func() {
		for _, c := range children {
			if err := c.Close(); err != nil {
				fmt.Fprintln(stderr, "baton-load:", err)
			}
		}
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
		if dir == "" {
			_ = os.RemoveAll(parent)
		}
	}
	for _, k := range kinds {
		c, d, err := startFloorChild(k, parent, kafka, stderr)
		if err != nil {
			stop()
			return nil, nil, err
		}
		children, dirs = append(children, c), append(dirs, d)
	}
	return children, stop, nil
}
