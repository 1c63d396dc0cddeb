package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/config/topology"
)

const topologyUsage = `Usage:
  baton topology check FILE                       report every mistake of the fleet, file:line
  baton topology render FILE --out DIR [--format k8s]
                                                  write one config per node (DIR/nodes.yml lists them),
                                                  or Kubernetes manifests per group (DIR/k8s/GROUP.yml)
  baton topology graph FILE [--format mermaid|dot] print the fleet as a diagram
`

// cmdTopology runs `baton topology`: the fleet declaration (README,
// "Topology").
func cmdTopology(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topologyUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("baton topology "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, topologyUsage) }
	out := fs.String("out", "", "render: the output directory")
	format := fs.String("format", topology.FormatMermaid, "graph: mermaid or dot; render: k8s for Kubernetes manifests")
	file, ok := parseOneFile(fs, args[1:], stderr)
	if !ok {
		return exitUsage
	}
	t, err := loadChecked(file, stderr)
	if err != nil {
		return exitError
	}
	switch args[0] {
	case "check":
		fmt.Fprintf(stdout, "%s: ok (%d nodes)\n", file, len(t.AllNodes()))
	case "render":
		if *out == "" {
			fmt.Fprintln(stderr, "baton topology render: --out DIR is required")
			return exitUsage
		}
		render := t.Render
		switch *format {
		case topology.FormatMermaid: // the flag's default: plain configs
		case "k8s":
			render = t.RenderK8s
		default:
			fmt.Fprintf(stderr, "baton topology render: unknown format %q: want k8s or none\n", *format)
			return exitUsage
		}
		written, removed, err := render(*out)
		for _, f := range removed {
			fmt.Fprintf(stdout, "removed %s\n", f)
		}
		for _, f := range written {
			fmt.Fprintf(stdout, "wrote %s\n", f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "baton topology render: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "%d files written, %d removed, the others unchanged\n", len(written), len(removed))
	case "graph":
		g, err := t.Graph(*format)
		if err != nil {
			fmt.Fprintf(stderr, "baton topology graph: %v\n", err)
			return exitUsage
		}
		fmt.Fprint(stdout, g)
	default:
		fmt.Fprintf(stderr, "baton topology: unknown command %q\n\n%s", args[0], topologyUsage)
		return exitUsage
	}
	return exitOK
}

// parseOneFile parses flags placed before or after the one FILE argument.
func parseOneFile(fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "%s: FILE is required\n\n%s", fs.Name(), topologyUsage)
		return "", false
	}
	file := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return "", false
	}
	return file, true
}

// loadChecked parses and checks the topology file, printing every
// problem.
func loadChecked(file string, stderr io.Writer) (*topology.Topology, error) {
	t, err := topology.Load(file)
	if err == nil {
		err = t.Check()
	}
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintf(stderr, "%s: %d problems:\n%v\n", file, len(errs), err)
		} else {
			fmt.Fprintf(stderr, "baton topology: %v\n", err)
		}
		return nil, err
	}
	return t, nil
}
