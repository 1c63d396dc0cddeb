package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/baton-relay/baton/relay/telemetry"
	"github.com/baton-relay/baton/routing"
	"github.com/baton-relay/baton/routing/lanes"
)

// cmdLanes runs the deadline-lane worker (routing/lanes) until SIGINT or
// SIGTERM; a second signal stops at once, leaving what is in hand to be
// redelivered.
func cmdLanes(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := loadConfigArgs("baton lanes", "config file with a lanes section; repeat to overlay", args, stderr)
	if code != 0 {
		return code
	}
	log := newLogger(cfg, stderr)
	opts, err := lanes.FromConfig(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "baton lanes: %v\n", err)
		return exitError
	}
	w, err := lanes.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "baton lanes: %v\n", err)
		return exitError
	}
	// The lane instruments go through relay/telemetry as `baton run`'s do:
	// Prometheus on lanes.metrics_listen (telemetry.metrics_listen is
	// `baton run`'s, often in the same file), OTLP push per telemetry.*.
	tc := cfg.Telemetry
	tel, err := telemetry.New(telemetry.Options{
		Prometheus:   cfg.Lanes.MetricsListen != "",
		OTLPEndpoint: tc.OTLPEndpoint,
		OTLPHeaders:  tc.OTLPHeaders,
		OTLPInterval: tc.OTLPInterval,
		ServiceName:  "baton-lanes",
		Version:      version,
		Logger:       log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "baton lanes: %v\n", err)
		return exitError
	}
	atOnce := false // a second signal: no last push either
	defer func() {
		if atOnce {
			return
		}
		// The last push carries the counts of the drain.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			log.Warn("lanes: telemetry: last OTLP export", "err", err)
		}
	}()
	if tel.Enabled() {
		// Registered for the process's life: the last push, after Run,
		// still reads them.
		if _, err := w.RegisterMetrics(tel.MeterProvider()); err != nil {
			fmt.Fprintf(stderr, "baton lanes: metrics: %v\n", err)
			return exitError
		}
	}
	quit := make(chan os.Signal, 2)
	signal.Notify(quit, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(quit)

	var chains []string
	for _, c := range cfg.LaneChain() {
		chains = append(chains, strings.Join(c, " → "))
	}
	where := strings.Join(cfg.LaneBrokers(), ",")
	if cfg.Lanes.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.Lanes.MetricsListen)
		if err != nil {
			fmt.Fprintf(stderr, "baton lanes: lanes.metrics_listen %s: %v\n", cfg.Lanes.MetricsListen, err)
			return exitError
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", tel.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Fprintf(stdout, "baton lanes %s listening on http://%s (metrics at /metrics; kafka %s %s)\n",
			version, routing.ReachableAddr(ln.Addr()), cfg.Lanes.Kafka, where)
	} else {
		fmt.Fprintf(stdout, "baton lanes %s running (kafka %s %s)\n", version, cfg.Lanes.Kafka, where)
	}
	for _, c := range chains {
		fmt.Fprintf(stdout, "  lanes: %s → dead letter\n", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err = <-done:
	case <-quit:
		log.Info("lanes: stopping: finishing records in hand, committing, leaving the groups; Ctrl-C again stops at once")
		cancel()
		select {
		case err = <-done:
		case <-quit:
			log.Warn("lanes: second signal: stopping at once; records in hand are redelivered")
			atOnce = true
			return exitError
		}
	}
	cancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "baton lanes: %v\n", err)
		return exitError
	}
	return exitOK
}
