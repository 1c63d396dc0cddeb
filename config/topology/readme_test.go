package topology

import (
	"os"
	"strings"
	"testing"
)

// readmeBlock returns the first ```lang block after the Topology heading
// of the README.
func readmeBlock(t *testing.T, readme, lang string) string {
	t.Helper()
	_, sec, ok := strings.Cut(readme, "\n## Topology")
	if !ok {
		t.Fatal("README has no Topology section")
	}
	_, block, ok := strings.Cut(sec, "\n```"+lang+"\n")
	if !ok {
		t.Fatalf("README's Topology section has no %s block", lang)
	}
	block, _, ok = strings.Cut(block, "\n```")
	if !ok {
		t.Fatalf("README's %s block is not closed", lang)
	}
	return block + "\n"
}

// TestREADMEExample: the README's example fleet is testdata/example.yml,
// checks clean, and its graph in the README is what Graph draws.
func TestREADMEExample(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	example := readmeBlock(t, readme, "yaml")
	want, err := os.ReadFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if example != string(want) {
		t.Errorf("the README's example differs from testdata/example.yml:\n%s", example)
	}
	top := loadExample(t, []byte(example))
	graph, err := top.Graph(FormatMermaid)
	if err != nil {
		t.Fatal(err)
	}
	if got := readmeBlock(t, readme, "mermaid"); got != graph {
		t.Errorf("the README's graph is not the example's; `baton topology graph config/topology/testdata/example.yml` prints:\n%s", graph)
	}
}
