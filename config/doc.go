// Package config is Baton's configuration: one YAML schema (Config), its
// defaults, loading with overlays and environment expansion, and validation.
//
// # Defaults
//
// default.yaml, embedded in the binary, is the whole schema with every
// default and its documentation; `baton config default` prints it
// (DefaultYAML). Default decodes it, so the documentation and the defaults
// cannot drift. Map entries (upstreams, Kafka clusters, routes, projects) take
// their defaults from the `defaults:` section of the same file.
//
// # Loading
//
// Load(paths...) starts from default.yaml and overlays each file in order, at
// the yaml.Node level so every value keeps the file and line it came from:
//
//   - mappings merge key by key at any depth;
//   - scalars and lists in a later file replace the earlier value;
//   - `key: null` removes what earlier files set for key;
//   - in a route, setting `upstream` drops an inherited `kafka` and `topic`,
//     and setting `kafka` or `topic` drops an inherited `upstream`.
//
// Then ${NAME} and ${NAME:-fallback} in scalar values are expanded from the
// environment, the `defaults:` templates are applied to map entries,
// project_files are read into projects, the tree is decoded into Config by a
// strict decoder of our own (it reports every unknown key, with a "did you
// mean" hint, and every type error, where yaml's KnownFields stops at the
// first), and Validate runs.
//
// # Errors
//
// Every problem is reported at once as an Errors value: one Problem per
// line, formatted "file:line: field.path: what is wrong", sorted by file load
// order and line. Each Problem wraps one of ErrRead, ErrSyntax,
// ErrUnknownKey, ErrType, ErrEnv or ErrInvalid. A value that fails to decode
// is not checked again by Validate, so one mistake yields one problem. If a
// file cannot be read or parsed, only those problems are reported: checking
// a merge without that file would report problems that are not there. A
// value left at its default is reported at the closest node a user wrote.
//
// # Other formats
//
// DecodeFile lends the strict decoder and the YAML rules to formats built
// on Baton's config (config/topology), with positions for their own
// checks; Raw carries a subtree through as written. ParseFiles is Load for
// files in memory.
package config
