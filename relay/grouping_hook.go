package relay

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/baton-relay/baton/envelope"
	"github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/grouping"
	"github.com/baton-relay/baton/relay/groups"
	"github.com/baton-relay/baton/relay/project"
)

// reasonDiscardedHash is the filtered outcome's reason for an error event
// whose issue hash the project's grouping part discards.
const reasonDiscardedHash = "discarded_hash"

// reasonGroupingStorm is the filtered outcome's reason for an error event
// past its issue's storm limit.
const reasonGroupingStorm = "grouping_storm"

// errDiscardedHash is an event item dropped for its issue hash: its class
// is dropped as filtered (reason discarded_hash), not as invalid.
var errDiscardedHash = errors.New(reasonDiscardedHash)

// errGroupingStorm is an event item dropped by storm control: filtered,
// reason grouping_storm.
var errGroupingStorm = errors.New(reasonGroupingStorm)

// groupingReason is the filtered reason of an error from processing that
// drops an event for its issue, or "".
func groupingReason(err error) string {
	switch {
	case errors.Is(err, errDiscardedHash):
		return reasonDiscardedHash
	case errors.Is(err, errGroupingStorm):
		return reasonGroupingStorm
	}
	return ""
}

// judgeHash computes the issue hash of a processed (normalized, scrubbed)
// error event into group, with the hash-only path (not final when the
// project's part knows of rules Baton does not apply), and returns
// errDiscardedHash when st's grouping part discards it, errGroupingStorm
// when its issue is past the part's storm limit (docs/grouping.md "At the
// edge"). With a storm limit or the count switch every event not
// discarded is counted in table, under key (the DSN public key it came
// with).
func judgeHash(t *event.Tree, st *project.State, key []byte, table *groups.Table, group *grouping.Brief) error {
	*group = grouping.Sum(t.Root())
	if why := st.Grouping.NotFinal(); why != "" {
		if group.Final {
			group.Final, group.Reason = false, why
		} else {
			group.Reason += "; " + why
		}
	}
	if st.Grouping.Discards(group.Primary) {
		return errDiscardedHash
	}
	if !st.Grouping.Counts() || table == nil || group.Primary == "" {
		return nil
	}
	limit, window := st.Grouping.StormLimit() // limit 0: counted, always kept
	if !table.Observe(st.ProjectID, key, group.Primary, limit, window) {
		return errGroupingStorm
	}
	return nil
}

// grouped reports whether items of type t are hashed for a project with a
// grouping part: error events and security reports (CSP, HPKP,
// Expect-CT, Expect-Staple), which Sentry groups by their report.
func grouped(t envelope.ItemType) bool {
	return t == envelope.ItemEvent || t == envelope.ItemSecurity || t == envelope.ItemRawSecurity
}

// groupingHeader sets grouping_hash and grouping_final in the item header
// hdr, appending the new header to buf.
func groupingHeader(buf *[]byte, hdr []byte, group *grouping.Brief) []byte {
	q, _ := json.Marshal(group.Primary) // a legacy checksum is any string
	hdr = setField(buf, hdr, "grouping_hash", q)
	return setField(buf, hdr, "grouping_final", strconv.AppendBool(nil, group.Final))
}

// dropGroupingHeader nulls grouping_hash and grouping_final in the header
// of an event Baton did not hash (a client's, or one of a project without
// grouping), appending the new header to buf: only Baton's own hash, or a
// trusted relay's, travels on (item header, Kafka record headers).
func dropGroupingHeader(buf *[]byte, hdr []byte) []byte {
	hdr = setField(buf, hdr, "grouping_hash", []byte("null"))
	return setField(buf, hdr, "grouping_final", []byte("null"))
}

// relayHashed reports whether the item header hdr of an event a trusted
// relay normalized carries that relay's grouping_hash: the relay judged it
// with the project's grouping part (discarded, limited and counted it), so
// it is not hashed, judged or counted again here, which would count every
// event of a chain of Batons once per Baton. The header passes on as is.
func relayHashed(hdr []byte) bool {
	h, ok := envelope.HeaderField(hdr, "grouping_hash")
	return ok && len(h) > 2 && h[0] == '"'
}
