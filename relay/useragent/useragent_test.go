package useragent

import (
	"runtime"
	"testing"
)

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// TestOneParser: the filter's lookup (Browser) and the normalizer's
// (Parse) go through one parser and one cache: the second finds the
// browser the first parsed, the same value.
func TestOneParser(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := Browser(chrome)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("heap after building the parser: +%.1f MiB", float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
	if b.Family != "Chrome" || b.Major != "131" {
		t.Errorf("browser %+v", b)
	}
	r, err := Parse(chrome)
	if err != nil {
		t.Fatal(err)
	}
	if r.Browser != b {
		t.Errorf("Parse's browser %p is not Browser's %p: two parsers or two caches", r.Browser, b)
	}
	if r.OS.Family != "Windows" || r.Device == nil || r.Device.Family != "Other" {
		t.Errorf("os %+v, device %+v", r.OS, r.Device)
	}
	p1, _ := parser()
	p2, _ := parser()
	if p1 != p2 {
		t.Error("the parser was built twice")
	}
}
