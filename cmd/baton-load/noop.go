package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// noopServer is the ceiling reference: a fasthttp server that reads the body
// and answers 200 {} without doing anything else, like row a1 of
// docs/performance-anchors.md.
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

// noopListening is the first line --serve-noop prints; a parent baton-load
// reads the URL back from it.
const noopListening = "no-op server listening on %s (POST anything; answers 200 {}); stop with Ctrl-C\n"

// childEnv marks a process started by startNoopChild: it serves until its
// stdin closes, which happens when the parent exits however it exits. A test
// binary's TestMain also reads it, to run as baton-load.
const childEnv = "BATON_LOAD_CHILD"

// untilStdinEOF returns a context that ends with ctx or when stdin reaches
// EOF (the parent baton-load is gone).
func untilStdinEOF(ctx context.Context, stdin io.Reader) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	return ctx, cancel
}

// noopChild is the ceiling's no-op server in a child process (this binary
// with --serve-noop). Baton is a process of its own, so the server it is
// compared with is one too, as in the performance anchors' a1 row. A server
// inside the load generator shares its Go scheduler and skips a switch
// between processes per request: on the project's 2-core VM it runs about
// 30% faster, which is not a ceiling Baton could ever reach.
type noopChild struct {
	what  string // for messages: "no-op server", "floor server pebble"
	cmd   *exec.Cmd
	stdin io.Closer // held open while the child should serve
	url   string
	done  chan error
}

// startNoopChild starts the child and waits until it listens.
func startNoopChild(stderr io.Writer) (*noopChild, error) {
	return startChild("no-op server", []string{"--serve-noop", "127.0.0.1:0"}, noopListening, stderr)
}

// startChild starts this executable with args and waits until its first
// line, listening (a format whose first %s is the URL), says where it serves.
func startChild(what string, args []string, listening string, stderr io.Writer) (*noopChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%s: find this executable to start it as a child: %w", what, err)
	}
	lines := &firstLine{ch: make(chan string, 1)}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = lines, stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s %s: %w", what, exe, strings.Join(args, " "), err)
	}
	c := &noopChild{what: what, cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	select {
	case line := <-lines.ch:
		prefix, _, _ := strings.Cut(listening, "%s")
		rest, ok := strings.CutPrefix(line, prefix)
		if c.url, _, _ = strings.Cut(rest, " "); !ok || c.url == "" {
			c.kill()
			return nil, fmt.Errorf("%s: child said %q, want %q and its URL", what, line, prefix)
		}
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("%s: child exited before listening: %v", what, err)
	case <-time.After(10 * time.Second):
		c.kill()
		return nil, fmt.Errorf("%s: child did not listen within 10s", what)
	}
}

// URL is the base URL to load.
func (c *noopChild) URL() string { return c.url }

// PID is the child's process id.
func (c *noopChild) PID() int { return c.cmd.Process.Pid }

// Close asks the child to stop (its stdin closes) and waits for it, killing
// it after 10s.
func (c *noopChild) Close() error {
	_ = c.stdin.Close()
	select {
	case err := <-c.done:
		if err != nil {
			return fmt.Errorf("%s: child %d: %w", c.what, c.PID(), err)
		}
		return nil
	case <-time.After(10 * time.Second):
		c.kill()
		return fmt.Errorf("%s: child %d still served 10s after its stdin closed; killed", c.what, c.PID())
	}
}

func (c *noopChild) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// firstLine passes the first line written to it to ch and discards the rest.
type firstLine struct {
	buf  []byte
	ch   chan string
	sent bool
}

func (w *firstLine) Write(p []byte) (int, error) {
	if !w.sent {
		w.buf = append(w.buf, p...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.ch <- string(w.buf[:i])
			w.sent, w.buf = true, nil
		}
	}
	return len(p), nil
}
