package policy

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/baton-relay/baton/envelope"
	evtree "github.com/baton-relay/baton/relay/event"
	"github.com/baton-relay/baton/relay/internal/testutil"
)

// Inbound filters read the same event from a tree with lazy frames
// (relay/event lazy.go) as from one parsed at once.
func TestEventFromTreeLazy(t *testing.T) {
	lines := bytes.Split(testutil.ErrorEnvelope(), []byte("\n"))
	in := [][]byte{lines[2],
		[]byte(`{"exception":{"values":[{"type":"TypeError","value":"x","stacktrace":{"frames":[{"abs_path":"chrome-extension://x/a.js"},{"abs_path":"<anonymous>","lineno":1},{"function":"f"}]}}]}}`),
		[]byte(`{"exception":{"values":[{"stacktrace":{"frames":[{"abs_path":"moz-extension://a"},{"in_app":true}]}}]}}`),
	}
	for _, b := range testutil.Fixtures(t, "../../envelope/testdata/sdk-envelopes/*") {
		in = append(in, bytes.Split(b, []byte("\n"))...)
	}
	n := 0
	for _, src := range in {
		eager, err := evtree.ParseEager(src)
		if err != nil {
			continue
		}
		lazy, err := evtree.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []envelope.ItemType{envelope.ItemEvent, envelope.ItemTransaction} {
			got, want := EventFromTree(kind, lazy.Root()).e, EventFromTree(kind, eager.Root()).e
			// contexts is the tree's node: its JSON, not its fields.
			if (got.contexts == nil) != (want.contexts == nil) ||
				got.contexts != nil && !bytes.Equal(got.contexts.AppendJSON(nil), want.contexts.AppendJSON(nil)) {
				t.Errorf("%.200s: lazy and eager contexts differ", src)
			}
			got.contexts, want.contexts = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%.200s: lazy tree reads %+v, eager %+v", src, got, want)
			}
		}
		n++
		lazy.Release()
		eager.Release()
	}
	if n < 20 {
		t.Fatalf("only %d events", n)
	}
}

// Inbound filters read a browser event's frames from the last back to the
// first path they judge: the frames before it stay lazy, and the
// extension filter answers as on the whole list.
func TestEventFromTreeReadsLastFrames(t *testing.T) {
	for _, c := range []struct {
		frames string
		lazy   int // frames left lazy
		ext    bool
	}{
		{`{"abs_path":"app:///a.js"},{"abs_path":"app:///b.js"},{"abs_path":"app:///c.js","in_app":true}`, 2, false},
		{`{"abs_path":"app:///a.js"},{"abs_path":"chrome-extension://x/b.js"},{"abs_path":"<anonymous>"},{"abs_path":"[native code]"}`, 1, true},
		{`{"abs_path":"chrome-extension://x/a.js"},{"function":"f"}`, 2, false}, // no path: read from the keys
		{`{"abs_path":"<anonymous>"},{"abs_path":"<anonymous>"}`, 0, false},
	} {
		src := []byte(`{"exception":{"values":[{"type":"E","value":"v","stacktrace":{"frames":[` + c.frames + `]}}]}}`)
		tree, err := evtree.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		ev := EventFromTree(envelope.ItemEvent, tree.Root())
		frames := tree.Root().Get("exception").Get("values").Index(0).Get("stacktrace").Get("frames")
		lazy := 0
		for i := range frames.Len() {
			if _, _, ok := frames.Index(i).LazyKeys(); ok {
				lazy++
			}
		}
		if lazy != c.lazy {
			t.Errorf("%s: %d frames left lazy, want %d", c.frames, lazy, c.lazy)
		}
		if got := matchBrowserExtensions(ev.e); got != c.ext {
			t.Errorf("%s: browser extension %v, want %v", c.frames, got, c.ext)
		}
		if want := matchBrowserExtensions(EventFromJSON(envelope.ItemEvent, src).e); want != c.ext {
			t.Errorf("%s: from JSON browser extension %v, want %v", c.frames, want, c.ext)
		}
		tree.Release()
	}
}
