// Package event is the JSON tree that normalization (relay/normalize) and
// PII scrubbing (relay/pii) work on, so that an event is parsed once,
// changed in place by both, and written once.
//
// The tree is built for events that are mostly passed through: Parse keeps
// the source bytes of every scalar, and AppendJSON writes an unchanged value
// back as it came (numbers are never reformatted, strings never
// re-escaped). A container parsed from compact JSON keeps its source span
// too and is written as that span while nothing in it changed: every
// mutator marks the changed node and the containers it was parsed into. Nodes, child lists and new bytes come from an arena that
// belongs to the Tree and is reused through a pool, so a parse makes a
// small, constant number of allocations. Object keys keep their order;
// new keys are appended.
//
// Stack frames that are flat objects (scalars and arrays of scalars, such
// as context lines, under plain keys) are kept lazy (lazy.go): checked as
// strictly as parsed, kept as their span and keys, and parsed the first
// time a reader needs their values; ParseEager is the reference that
// parses everything at once.
//
// What a processor changes is recorded as Relay does, under the event's
// `_meta` (Meta: remarks, errors, original length and value), either on a
// node (MetaOf) or at a path whose value was removed (MetaAt). AppendJSON
// merges these records into the `_meta` object the event already has.
//
// A Tree aliases the bytes it was parsed from: they must stay unchanged
// until Release, and AppendJSON's dst must not overlap them.
package event
