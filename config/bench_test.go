package config

import (
	"os"
	"testing"
)

// BenchmarkLoad measures a typical two-file load (startup cost only).
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("testdata/base.yaml", "testdata/region-eu.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAliasBomb bounds the cost of a hostile file.
func BenchmarkParseAliasBomb(b *testing.B) {
	data, err := os.ReadFile("testdata/alias-bomb.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse("bomb.yaml", data); err == nil {
			b.Fatal("alias bomb parsed")
		}
	}
}
