package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/baton-relay/baton/relay/grouping"
	"github.com/baton-relay/baton/relay/normalize"
)

const groupingUsage = "usage: baton grouping hash [--normalized] [FILE] | baton grouping check [--normalized] DIR"

// cmdGrouping runs `baton grouping hash` and `baton grouping check`.
func cmdGrouping(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, groupingUsage)
		return exitUsage
	}
	switch args[0] {
	case "hash":
		return cmdGroupingHash(args[1:], stdin, stdout, stderr)
	case "check":
		return cmdGroupingCheck(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, groupingUsage)
	return exitUsage
}

// cmdGroupingHash prints the issue hash Sentry's default grouping gives an
// event, with every variant and its contributing components, so an
// operator can see what Baton groups by (docs/grouping.md).
func cmdGroupingHash(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("baton grouping hash", stderr, "baton grouping hash [--normalized] [FILE]")
	normalized := fs.Bool("normalized", false, "the event is already normalized (skip Baton's normalization)")
	if err := fs.Parse(args); err != nil {
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
	h, err := newEventHasher(*normalized)
	if err != nil {
		fmt.Fprintf(stderr, "baton grouping hash: %v\n", err)
		return exitError
	}
	res, err := h.hash(src)
	if err != nil {
		fmt.Fprintf(stderr, "baton grouping hash: %s: %v\n", name, err)
		return exitError
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	stdout.Write(append(out, '\n'))
	return exitOK
}

// eventHasher normalizes an event as Baton does at ingest (unless it is
// already normalized) and hashes it.
type eventHasher struct{ n *normalize.Normalizer }

func newEventHasher(normalized bool) (eventHasher, error) {
	if normalized {
		return eventHasher{}, nil
	}
	n, err := normalize.New(normalize.Options{})
	return eventHasher{n}, err
}

func (h eventHasher) hash(src []byte) (grouping.Result, error) {
	if h.n != nil {
		var err error
		if src, err = h.n.Event(nil, src, &normalize.Input{}); err != nil {
			return grouping.Result{}, err
		}
	}
	return grouping.HashJSON(src)
}

// snapshotDir is where Sentry keeps the newstyle:2023-01-11 snapshots of
// test_variants under tests/sentry/grouping.
var snapshotDir = filepath.Join("snapshots", "test_variants", "test_event_hash_variant", "newstyle@2023_01_11")

// cmdGroupingCheck measures Baton's agreement with Sentry on Sentry's own
// grouping inputs: DIR is Sentry's tests/sentry/grouping (inputs in
// grouping_inputs/, snapshots under snapshots/test_variants/...), or one
// directory holding both. An input's snapshot is named as Sentry names
// it: the input's base name with '-' as '_', extension .pysnap. It prints
// the totals, the agreement among hashes Baton claims final and every
// disagreement; it exits 1 when a claimed-final hash disagrees.
func cmdGroupingCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("baton grouping check", stderr, "baton grouping check [--normalized] DIR")
	normalized := fs.Bool("normalized", false, "the inputs are already normalized (skip Baton's normalization)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	dir := fs.Arg(0)
	inputs, snaps := dir, dir
	if isDir(filepath.Join(dir, "grouping_inputs")) {
		inputs = filepath.Join(dir, "grouping_inputs")
	}
	if isDir(filepath.Join(dir, snapshotDir)) {
		snaps = filepath.Join(dir, snapshotDir)
	}
	files, err := filepath.Glob(filepath.Join(inputs, "*.json"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("%s: no grouping inputs (*.json)", inputs)
	}
	h, herr := newEventHasher(*normalized)
	if err = errors.Join(err, herr); err != nil {
		fmt.Fprintf(stderr, "baton grouping check: %v\n", err)
		return exitError
	}
	sort.Strings(files)
	var total, final, agreeFinal, agreeAll, noSnap int
	var lines []string
	for _, f := range files {
		name := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(f), ".json"), "-", "_")
		raw, err := os.ReadFile(filepath.Join(snaps, name+".pysnap"))
		if errors.Is(err, iofs.ErrNotExist) {
			noSnap++
			continue
		}
		var snap grouping.Snapshot
		if err == nil {
			snap, err = grouping.ParseSnapshot(raw)
		}
		var src []byte
		if err == nil {
			src, err = os.ReadFile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "baton grouping check: %s: %v\n", name, err)
			return exitError
		}
		total++
		want, wantVariant := snap.Primary()
		res, err := h.hash(src)
		if err != nil { // Sentry grouped it; Baton cannot read it: a disagreement, not final
			lines = append(lines, fmt.Sprintf("disagree %s: Baton cannot hash it (%v); Sentry %s (%s)", name, err, nullHash(want), wantVariant))
			continue
		}
		if res.Final {
			final++
		}
		if res.Primary == want {
			agreeAll++
			if res.Final {
				agreeFinal++
			}
			continue
		}
		claim := "not final: " + res.Reason
		if res.Final {
			claim = "CLAIMED FINAL"
		}
		lines = append(lines, fmt.Sprintf("disagree %s: Baton %s (%s), Sentry %s (%s); %s",
			name, nullHash(res.Primary), res.PrimaryVariant, nullHash(want), wantVariant, claim))
	}
	fmt.Fprintf(stdout, "inputs %d (without a snapshot: %d)\n", total, noSnap)
	fmt.Fprintf(stdout, "claimed final %d, agreeing %d (%s)\n", final, agreeFinal, percent(agreeFinal, final))
	fmt.Fprintf(stdout, "all inputs: agreeing %d of %d (%s)\n", agreeAll, total, percent(agreeAll, total))
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if agreeFinal < final {
		return exitError
	}
	return exitOK
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func nullHash(h string) string {
	if h == "" {
		return "null"
	}
	return h
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
