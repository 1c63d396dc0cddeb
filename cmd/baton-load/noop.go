package main

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// noopServer is the ceiling reference: a fasthttp server that reads the body
// and answers 200 {} without doing anything else, like row a1 of
// performance-anchors.md.
type noopServer struct {
	srv    *fasthttp.Server
	ln     net.Listener
	served atomic.Uint64
	bytes  atomic.Uint64
	done   chan error
}

// startNoop listens on addr (e.g. 127.0.0.1:0) and serves in the background.
func startNoop(addr string) (*noopServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("no-op server: listen on %s: %w", addr, err)
	}
	n := &noopServer{ln: ln, done: make(chan error, 1)}
	n.srv = &fasthttp.Server{
		Handler:               n.handle,
		Name:                  "baton-load-noop",
		MaxRequestBodySize:    64 << 20,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		DisableKeepalive:      false,
		ReadBufferSize:        16 << 10,
		NoDefaultServerHeader: true,
		// fasthttp's worker-pool cleaner notices Shutdown only after sleeping
		// this long; 1 s (not 10 s) lets Close return a clean process quickly.
		MaxIdleWorkerDuration: time.Second,
	}
	go func() { n.done <- n.srv.Serve(ln) }()
	return n, nil
}

func (n *noopServer) handle(ctx *fasthttp.RequestCtx) {
	n.bytes.Add(uint64(len(ctx.PostBody())))
	n.served.Add(1)
	ctx.SetContentType("application/json")
	ctx.SetBodyString("{}")
}

// URL is the base URL to load.
func (n *noopServer) URL() string { return "http://" + n.ln.Addr().String() }

// Close stops accepting, closes open connections and waits for Serve to return.
func (n *noopServer) Close() error {
	if err := n.srv.Shutdown(); err != nil {
		return fmt.Errorf("no-op server: shutdown: %w", err)
	}
	_ = n.ln.Close() // Shutdown misses a Serve that has not started yet
	return <-n.done
}
