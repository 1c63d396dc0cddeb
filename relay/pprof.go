package relay

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// profiler serves Go's net/http/pprof on telemetry.pprof_listen, a
// listener of its own: profiles expose the process's internals and a CPU
// profile costs CPU while it runs, so it is opt-in and never on the ingest
// or /metrics ports.
type profiler struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// startPprof listens on telemetry.pprof_listen and serves /debug/pprof/.
func (r *Relay) startPprof() error {
	addr := r.cfg.Telemetry.PprofListen
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError("telemetry.pprof_listen", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, allocs, goroutine, threadcreate, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p := &profiler{ln: ln, done: make(chan struct{})}
	// No write timeout: a CPU profile or trace answers after ?seconds=.
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	r.pprof = p
	return nil
}

// stopPprof closes the profiling listener; a profile still being taken is
// cut off when ctx ends.
func (r *Relay) stopPprof(ctx context.Context) {
	if r.pprof == nil {
		return
	}
	if err := r.pprof.srv.Shutdown(ctx); err != nil {
		_ = r.pprof.srv.Close()
	}
	<-r.pprof.done
}

// PprofAddr is where /debug/pprof/ is served, or nil when it is off.
func (r *Relay) PprofAddr() net.Addr {
	if r.pprof == nil {
		return nil
	}
	return r.pprof.ln.Addr()
}
