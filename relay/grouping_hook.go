package relay

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/grouping"
	"github.com/baton-relay/baton/relay/project"
)

// reasonDiscardedHash is the filtered outcome's reason for an error event
// whose issue hash the project's grouping part discards.
const reasonDiscardedHash = "discarded_hash"

// errDiscardedHash is an event item dropped for its issue hash: its class
// is dropped as filtered (reason discarded_hash), not as invalid.
var errDiscardedHash = errors.New(reasonDiscardedHash)

// discardHash computes the issue hash of a processed (normalized,
// scrubbed) error event into group, with the hash-only path, and reports
// whether st's grouping part discards it (docs/grouping.md "At the edge").
func discardHash(t *event.Tree, st *project.State, group *grouping.Brief) bool {
	*group = grouping.Sum(t.Root())
	return st.Grouping.Discards(group.Primary)
}

// groupingHeader sets grouping_hash and grouping_final in the item header
// hdr, appending the new header to buf.
func groupingHeader(buf *[]byte, hdr []byte, group *grouping.Brief) []byte {
	q, _ := json.Marshal(group.Primary) // a legacy checksum is any string
	hdr = setField(buf, hdr, "grouping_hash", q)
	return setField(buf, hdr, "grouping_final", strconv.AppendBool(nil, group.Final))
}
