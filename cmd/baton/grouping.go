package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/baton-relay/baton/relay/grouping"
	"github.com/baton-relay/baton/relay/normalize"
)

// cmdGrouping prints the issue hash Sentry's default grouping gives an
// event, with every variant and its contributing components, so an
// operator can see what Baton groups by (docs/grouping.md).
func cmdGrouping(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "hash" {
		fmt.Fprintln(stderr, "usage: baton grouping hash [--normalized] [FILE]")
		return exitUsage
	}
	fs := newFlagSet("baton grouping hash", stderr, "baton grouping hash [--normalized] [FILE]")
	normalized := fs.Bool("normalized", false, "the event is already normalized (skip Baton's normalization)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "baton grouping hash: unexpected argument %q\n", fs.Arg(1))
		fs.Usage()
		return exitUsage
	}
	name, src, err := readInput(fs, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "baton grouping hash: %v\n", err)
		return exitError
	}
	if !*normalized {
		n, err := normalize.New(normalize.Options{})
		if err != nil {
			fmt.Fprintf(stderr, "baton grouping hash: %v\n", err)
			return exitError
		}
		if src, err = n.Event(nil, src, &normalize.Input{}); err != nil {
			fmt.Fprintf(stderr, "baton grouping hash: %s: %v\n", name, err)
			return exitError
		}
	}
	res, err := grouping.HashJSON(src)
	if err != nil {
		fmt.Fprintf(stderr, "baton grouping hash: %s: %v\n", name, err)
		return exitError
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	stdout.Write(append(out, '\n'))
	return exitOK
}
