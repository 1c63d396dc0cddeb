package event

// ParseValue parses src, one JSON value, into t's arena and returns it
// unattached, for a processor that turns a string holding JSON into the
// value (Relay's request.data inference). src is aliased like Parse's: it
// must stay unchanged until Release, e.g. a string of t itself. Errors
// wrap ErrSyntax.
func (t *Tree) ParseValue(src []byte) (*Node, error) {
	return parse(src, &t.a, false)
}
