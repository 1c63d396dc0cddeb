package relay

import (
	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/project"
)

// scrubsViewHierarchies reports whether st has view hierarchies scrubbed
// as JSON (relay/pii viewhierarchy.go): Relay does so only for
// organizations with the view-hierarchy-scrubbing feature, and scrubs
// them as plain attachments otherwise (scrubAttachments).
func scrubsViewHierarchies(st *project.State) bool {
	return st != nil && st.ViewHierarchy != nil && st.HasFeature(project.FeatureViewHierarchyScrubbing)
}

// viewHierarchySize is the bytes of env's view hierarchy payloads.
func viewHierarchySize(env *envelope.Envelope) int {
	n := 0
	for i := range env.Items {
		if it := &env.Items[i]; isViewHierarchy(it) {
			n += len(it.Payload)
		}
	}
	return n
}

func isViewHierarchy(it *envelope.Item) bool {
	return it.Type == envelope.ItemAttachment && it.AttachmentType == envelope.AttachmentTypeViewHierarchy
}

// scrubViewHierarchies scrubs the view hierarchies of env as JSON with
// st's piiConfig when st has the feature: a changed one is appended to
// *buf and its item points there (AppendTo writes its new length). It
// reports whether one changed.
func scrubViewHierarchies(env *envelope.Envelope, st *project.State, buf *[]byte) bool {
	if !scrubsViewHierarchies(st) {
		return false
	}
	changed := false
	for i := range env.Items {
		it := &env.Items[i]
		if !isViewHierarchy(it) {
			continue
		}
		start := len(*buf)
		out, ok := st.ViewHierarchy.Scrub(*buf, it.Payload)
		if !ok {
			continue
		}
		*buf = out
		it.Payload, changed = out[start:len(out):len(out)], true
	}
	return changed
}
