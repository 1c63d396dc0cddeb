package normalize

import (
	"bytes"

	"github.com/baton-relay/baton/relay/event"
)

// rootKeys records which root members a step may read, from one pass over
// the root, so that a step whose member is absent costs no scan of the root
// (most of an event's fields are absent). Only members that no step adds to
// the root are listed (a step may delete one: the bit then only costs the
// Get it saved); contexts is added by userAgentContexts alone, after its
// last guarded reader.
type rootKeys uint32

const (
	rkAlias rootKeys = 1 << iota // a legacyAliases source key
	rkLogentry
	rkException
	rkThreads
	rkBreadcrumbs
	rkStacktrace
	rkSpans
	rkRequest
	rkMeasurements
	rkType
	rkServerName
	rkSite
	rkContexts
	rkMeta // _meta, read for an earlier pass's clock corrections
)

var aliasPrefix = []byte("sentry.interfaces.")

func scanRoot(ev *event.Node) rootKeys {
	var k rootKeys
	for i := range ev.Len() {
		switch key := ev.Key(i); string(key) {
		case "message":
			k |= rkAlias
		case "logentry":
			k |= rkLogentry
		case "exception":
			k |= rkException
		case "threads":
			k |= rkThreads
		case "breadcrumbs":
			k |= rkBreadcrumbs
		case "stacktrace":
			k |= rkStacktrace
		case "spans":
			k |= rkSpans
		case "request":
			k |= rkRequest
		case "measurements":
			k |= rkMeasurements
		case "type":
			k |= rkType
		case "server_name":
			k |= rkServerName
		case "site":
			k |= rkSite
		case "contexts":
			k |= rkContexts
		case "_meta":
			k |= rkMeta
		default:
			if bytes.HasPrefix(key, aliasPrefix) {
				k |= rkAlias
			}
		}
	}
	return k
}

// has reports whether the root may hold k.
func (e *norm) has(k rootKeys) bool { return e.root&k != 0 }
