package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/baton-relay/baton/relay/normalize"
)

// cmdNormalize prints what Baton makes of an event payload, so an operator
// sees what is sent upstream.
func cmdNormalize(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("baton normalize", stderr, "baton normalize [--type event|security|nel] [--client-ip IP] [--user-agent UA] [--sent-at RFC3339] [FILE]")
	kind := fs.String("type", "event", "payload type: event (an event item), security (a CSP/Expect-CT/Expect-Staple/HPKP report), nel (one NEL report)")
	var in normalize.Input
	fs.StringVar(&in.ClientAddr, "client-ip", "", `client address for "{{auto}}" and security reports`)
	fs.StringVar(&in.UserAgent, "user-agent", "", "User-Agent header of the request (security and NEL reports)")
	fs.StringVar(&in.Release, "release", "", "sentry_release query parameter (security reports)")
	fs.StringVar(&in.Environment, "environment", "", "sentry_environment query parameter (security reports)")
	sentAt := fs.String("sent-at", "", "the envelope's sent_at (RFC 3339), for clock-drift correction")
	received := fs.String("received", "", "receive time (RFC 3339; default now)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	for _, t := range []struct {
		flag, val string
		dst       *time.Time
	}{{"--sent-at", *sentAt, &in.SentAt}, {"--received", *received, &in.Received}} {
		if t.val == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.val)
		if err != nil {
			fmt.Fprintf(stderr, "baton normalize: %s %q: want RFC 3339, e.g. 2026-01-01T12:00:00Z\n", t.flag, t.val)
			return exitUsage
		}
		*t.dst = v
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "baton normalize: unexpected argument %q\n", fs.Arg(1))
		fs.Usage()
		return exitUsage
	}
	name, src, err := readInput(fs, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "baton normalize: %v\n", err)
		return exitError
	}
	n, err := normalize.New(normalize.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "baton normalize: %v\n", err)
		return exitError
	}
	var out []byte
	switch *kind {
	case "event":
		out, err = n.Event(nil, src, &in)
	case "security": // a Reporting API batch gives one event per CSP report, a line each
		var ends []int
		if out, ends, err = n.SecurityReports(nil, src, &in, nil); err == nil {
			lines := make([]byte, 0, len(out)+len(ends))
			start := 0
			for _, end := range ends[:len(ends)-1] {
				lines = append(append(lines, out[start:end]...), '\n')
				start = end
			}
			out = append(lines, out[start:]...)
		}
	case "nel":
		out, err = n.NEL(nil, src, &in)
	default:
		fmt.Fprintf(stderr, "baton normalize: --type %q: want event, security or nel\n", *kind)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton normalize: %s: %v\n", name, err)
		return exitError
	}
	stdout.Write(append(out, '\n'))
	return exitOK
}

// readInput reads the one FILE argument of fs, or stdin when there is
// none, and names what it read for messages.
func readInput(fs *flag.FlagSet, stdin io.Reader) (name string, src []byte, err error) {
	if fs.NArg() == 1 {
		name = fs.Arg(0)
		src, err = os.ReadFile(name)
		return name, src, err
	}
	src, err = io.ReadAll(stdin)
	return "stdin", src, err
}
