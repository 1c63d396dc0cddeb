// Package envelope implements Sentry's envelope format: parsing and
// serialization, the item-type registry, traffic classes and the conversions
// the ingest endpoints need. It does no I/O and imports only the standard
// library.
package envelope
