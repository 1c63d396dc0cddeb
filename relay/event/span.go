package event

// Span is n's JSON text as it came when writing n would reproduce it: the
// token of a scalar nothing rewrote, or the source span of a compact
// container in which nothing changed since Parse; nil otherwise (built
// strings, changed containers, containers parsed with whitespace or
// re-escaped keys). A caller that only needs an upper bound of what n holds
// (a size limit, whether a key can occur) reads it instead of walking n.
func (n *Node) Span() []byte {
	if n == nil || n.dirty {
		return nil
	}
	return n.raw
}
