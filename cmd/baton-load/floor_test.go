package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
)

// readFloorDir returns the values of every live key in a closed floor
// server's Pebble directory.
func readFloorDir(t *testing.T, dir string) []string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ErrorIfNotExists: true, Logger: floorLogger{}})
	if err != nil {
		t.Fatalf("reopen %s: %v", dir, err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.First(); it.Valid(); it.Next() {
		out = append(out, string(it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// consumeFloorTopic reads n records of the floor topic from the broker at addr.
func consumeFloorTopic(t *testing.T, addr string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(floorTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kafka holds %d records of %s, want %d", len(out), floorTopic, n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// TestFloorServers drives each floor server in this process: concurrent
// requests all get 200 {}; the pebble kinds' directory then holds every
// body, the kafka kinds' broker holds every body and their directory none
// (each key is deleted once Kafka acknowledged its record).
func TestFloorServers(t *testing.T) {
	for _, kind := range floorKinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			cfg := floorConfig{kind: kind, addr: "127.0.0.1:0", dir: dir, reclaim: -1}
			if floorProduces(kind) {
				kf, err := startKfake(context.Background(), "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer kf.Close()
				cfg.kafka = kf.ListenAddrs()[0]
			}
			f, err := startFloor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := &fasthttp.HostClient{Addr: strings.TrimPrefix(f.URL(), "http://"), MaxConns: 8, MaxIdleConnDuration: 100 * time.Millisecond}
			const n = 40
			var want []string
			for i := range n {
				want = append(want, fmt.Sprintf(`{"event":%d,"pad":"%s"}`, i, strings.Repeat("x", 1000+i)))
			}
			var wg sync.WaitGroup
			statuses := make([]int, n)
			answers := make([][]byte, n)
			for w := range 8 { // 8 at a time: commits share fsyncs
				wg.Go(func() {
					for i := w; i < n; i += 8 {
						statuses[i], answers[i] = post(t, c, "/api/1/envelope/", want[i])
					}
				})
			}
			wg.Wait()
			c.CloseIdleConnections()
			for i := range n {
				if statuses[i] != 200 || string(answers[i]) != "{}" {
					t.Errorf("request %d: %d %q, want 200 {}", i, statuses[i], answers[i])
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if f.served.Load() != n || f.failed.Load() != 0 {
				t.Errorf("%s", f.summary())
			}
			stored := readFloorDir(t, dir)
			slices.Sort(want)
			slices.Sort(stored)
			if !floorProduces(kind) {
				if !slices.Equal(stored, want) {
					t.Errorf("pebble holds %d values, want the %d bodies sent", len(stored), n)
				}
				return
			}
			if f.produced.Load() != n || f.prodErrs.Load() != 0 || len(stored) != 0 {
				t.Errorf("%s; pebble still holds %d values, want none", f.summary(), len(stored))
			}
			got := consumeFloorTopic(t, cfg.kafka, n)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("kafka holds %d records, want the %d bodies sent", len(got), n)
			}
		})
	}
}

// TestFloorReclaim: the pebble-only floors drop what they wrote a tick ago,
// so their directory does not grow with the load.
func TestFloorReclaim(t *testing.T) {
	dir := t.TempDir()
	f, err := startFloor(floorConfig{kind: floorPebbleNoSync, addr: "127.0.0.1:0", dir: dir, reclaim: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := &fasthttp.HostClient{Addr: strings.TrimPrefix(f.URL(), "http://"), MaxIdleConnDuration: 100 * time.Millisecond}
	for i := range 5 {
		if code, _ := post(t, c, "/", fmt.Sprint("body ", i)); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	// Wait (without sleeping) until a range deletion covered key 5.
	for {
		it, err := f.db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		empty := !it.First()
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if empty {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test ended before the floor reclaimed")
		default:
		}
		runtime.Gosched()
	}
	c.CloseIdleConnections()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if stored := readFloorDir(t, dir); len(stored) != 0 {
		t.Errorf("pebble holds %d values after the reclaim", len(stored))
	}
}

// TestFloorSweep runs --floor through run(): each floor is a child process
// (--serve-floor) loaded beside the --url target and the ceiling, with its
// CPU per request measured; the kafka floor's records reach the broker; the
// children exit and their directories are removed.
func TestFloorSweep(t *testing.T) {
	noop, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer noop.Close()
	kf, err := startKfake(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	addr := kf.ListenAddrs()[0]
	floorDir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--url", noop.URL(), "--floor", "pebble,kafka-nosync", "--floor-kafka", addr,
		"--floor-dir", floorDir, "--ceiling", "--connections-sweep", "2", "--runs", "2", "--duration", "300ms",
		"--pool", "2", "--json", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var rep sweepReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
	}
	var names []string
	for _, tg := range rep.Targets {
		names = append(names, tg.Name)
		if tg.Floor {
			if tg.CPUPID == 0 || tg.CPUPID == os.Getpid() {
				t.Errorf("floor %s measured in process %d, want its child", tg.Name, tg.CPUPID)
			}
			if err := syscall.Kill(tg.CPUPID, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("floor child %d still exists after the run (kill 0: %v)", tg.CPUPID, err)
			}
		}
	}
	if want := []string{"t1", "pebble", "kafka-nosync", "noop"}; !slices.Equal(names, want) {
		t.Fatalf("targets %v, want %v", names, want)
	}
	p := rep.Points[0]
	var kafkaAccepted int64
	for i, r := range p.Results {
		if r.AcceptedPerSec <= 0 || r.Non2xx+r.TransportErrors != 0 || len(r.Runs) != 2 {
			t.Errorf("%s: %.0f req/s, %d non-2xx, %d transport errors, %d runs", r.Target, r.AcceptedPerSec, r.Non2xx, r.TransportErrors, len(r.Runs))
		}
		if rep.Targets[i].Floor && (r.CPUMicros == nil || *r.CPUMicros <= 0 || r.ToCeiling == nil) {
			t.Errorf("%s: CPU per request %v, ratio to the ceiling %v", r.Target, r.CPUMicros, r.ToCeiling)
		}
		if r.Target == floorKafkaNoSync {
			for _, run := range r.Runs {
				kafkaAccepted += int64(run.Accepted)
			}
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), floorTopic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	var produced int64
	ends.Each(func(o kadm.ListedOffset) { produced += o.Offset })
	if produced != kafkaAccepted { // the child flushed its producer before exiting
		t.Errorf("%s holds %d records, the kafka-nosync floor accepted %d", floorTopic, produced, kafkaAccepted)
	}
	if left, err := os.ReadDir(floorDir); err != nil || len(left) != 0 {
		t.Errorf("--floor-dir holds %d entries after the run (%v), want its children's directories removed", len(left), err)
	}

	// The text report has the spread table and the pairs.
	var text bytes.Buffer
	if err := writeSweep(&text, &rep, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kafka-nosync", "medians (min–max) over 2 runs", "t1 ÷ pebble:", "CPU ÷ noop"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestServeFloorFlags: --serve-floor KIND ADDR takes flags after ADDR; bad
// kinds and a kafka floor without a broker are refused.
func TestServeFloorFlags(t *testing.T) {
	o, err := parseFlags([]string{"--serve-floor", "kafka", "127.0.0.1:8082", "--floor-dir", "d", "--floor-kafka", "k:1"}, io.Discard)
	if err != nil || o.serveFloor != "kafka" || o.serveFloorAddr != "127.0.0.1:8082" || o.floorDir != "d" || o.floorKafka != "k:1" {
		t.Errorf("parsed %+v, %v", o, err)
	}
	if o, err := parseFlags([]string{"--serve-floor", "pebble"}, io.Discard); err != nil || o.serveFloorAddr != "127.0.0.1:0" {
		t.Errorf("default address %q, %v", o.serveFloorAddr, err)
	}
	for _, args := range [][]string{{"--floor", "rocks"}, {"--floor", "pebble,kafka"}, {"--floor", "pebble,pebble"},
		{"--serve-floor", "kafka"}, {"--floor-dir", "x"}, {"--serve-floor", "pebble", "a:1", "extra"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "floor") && !strings.Contains(errb.String(), "argument") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming the flag", args, code, errb.String())
		}
	}
}
