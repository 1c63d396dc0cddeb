// Package relay wires Baton together: the fasthttp ingest server, the
// forwarders that drain the buffer into sinks, outcomes and lifecycle.
package relay
