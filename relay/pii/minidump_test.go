package pii

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf16"
)

// testDump is a minidump written by the test in Microsoft's layout: one
// thread whose stack is the first memory region, a heap region, Linux
// environ and cmdline streams, and modules with UTF-16LE names and PDB
// 7.0 CodeView records. The offsets of its parts are kept to read them
// back after scrubbing.
type testDump struct {
	data                           []byte
	stack, heap, environ, cmdline  [2]int
	codeFiles, debugFiles          [][2]int
	order                          byteOrder
	noModules, strayRegion, oddUTF bool
}

// byteOrder reads and appends: binary.LittleEndian or BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// module is a module of the dump: its file path and its debug file name.
type module struct{ code, debug string }

var testModules = []module{
	{`C:\projects\breakpad-tools\windows\Release\crash.exe`, `C:\projects\breakpad-tools\windows\Release\crash.pdb`},
	{`/usr/lib/libc.so.6`, `libc.so.6`},
	{`C:\projects\breakpad-tools\windows\Release\crash.exe`, ``}, // the first one's name again
}

const (
	stackText   = "stack: 10.0.0.1 alice@example.com stack"
	heapText    = "heap: 10.0.0.2 bob@example.com heap"
	environText = "HOME=/home/alice\x00REMOTE=10.0.0.3\x00"
	cmdlineText = "crash\x00--peer=10.0.0.4\x00"
)

func (d *testDump) build() []byte {
	var o byteOrder = binary.LittleEndian
	if d.order != nil {
		o = d.order
	}
	var b []byte
	u32 := func(v int) { b = o.AppendUint32(b, uint32(v)) }
	u64 := func(v int) { b = o.AppendUint64(b, uint64(v)) }
	blob := func(s string) [2]int {
		start := len(b)
		b = append(b, s...)
		return [2]int{start, len(b)}
	}
	streams := 5
	if d.noModules {
		streams = 4
	}
	// Header, then the directory, filled in below.
	u32(mdSignature)
	u32(mdVersion)
	u32(streams)
	u32(mdHeaderSize)
	b = append(b, make([]byte, 16)...)
	dirAt := len(b)
	b = append(b, make([]byte, streams*mdDirEntry)...)
	dir := func(i, t, start, end int) {
		o.PutUint32(b[dirAt+i*mdDirEntry:], uint32(t))
		o.PutUint32(b[dirAt+i*mdDirEntry+4:], uint32(end-start))
		o.PutUint32(b[dirAt+i*mdDirEntry+8:], uint32(start))
	}

	d.stack, d.heap = blob(stackText), blob(heapText)
	d.environ, d.cmdline = blob(environText), blob(cmdlineText)
	names := map[string]int{}
	d.codeFiles, d.debugFiles = nil, nil
	type rvas struct{ name, cv, cvSize int }
	var mods []rvas
	for _, m := range testModules {
		r := rvas{name: -1}
		if at, ok := names[m.code]; ok {
			r.name = at
		} else {
			r.name = len(b)
			names[m.code] = r.name
			units := utf16.Encode([]rune(m.code))
			n := 2 * len(units)
			if d.oddUTF {
				n--
			}
			u32(n)
			start := len(b)
			for _, u := range units {
				b = binary.LittleEndian.AppendUint16(b, u)
			}
			b = b[:start+n]
			d.codeFiles = append(d.codeFiles, [2]int{start, start + n})
		}
		if m.debug != "" {
			r.cv = len(b)
			u32(cvPDB70)
			b = append(b, bytes.Repeat([]byte{0xab}, 16)...) // GUID
			u32(1)                                           // age
			s := blob(m.debug + "\x00")
			d.debugFiles = append(d.debugFiles, s)
			r.cvSize = len(b) - r.cv
		}
		mods = append(mods, r)
	}

	threads := len(b)
	u32(1)
	u32(7)                             // thread id
	b = append(b, make([]byte, 12)...) // suspend count, priority class, priority
	u64(0x7000)                        // TEB
	u64(0x7fff0000)                    // stack start
	u32(d.stack[1] - d.stack[0])       // its descriptor: size
	u32(d.stack[0])                    // and rva
	b = append(b, make([]byte, 8)...)  // thread context
	mems := len(b)
	region := func(addr int, r [2]int) { u64(addr); u32(r[1] - r[0]); u32(r[0]) }
	u32(2)
	region(0x7fff0000, d.stack)
	heap := d.heap
	if d.strayRegion {
		heap[1] = heap[0] + 1<<20
	}
	region(0x10000, heap)
	modsAt := len(b)
	u32(len(mods))
	for i, m := range mods {
		u64(0x400000 * (i + 1))
		u32(0x1000) // size of image
		u32(0)      // checksum
		u32(0)      // time stamp
		u32(m.name)
		b = append(b, make([]byte, 52)...) // VS_FIXEDFILEINFO
		u32(m.cvSize)
		u32(m.cv)
		b = append(b, make([]byte, 8+16)...) // misc record, reserved
	}
	end := len(b)
	dir(0, mdThreadList, threads, mems)
	dir(1, mdMemoryList, mems, modsAt)
	dir(2, mdLinuxEnviron, d.environ[0], d.environ[1])
	dir(3, mdLinuxCmdLine, d.cmdline[0], d.cmdline[1])
	if !d.noModules {
		dir(4, mdModuleList, modsAt, end)
	}
	d.data = b
	return b
}

func compileAtt(t *testing.T, config string) *Attachments {
	t.Helper()
	a, err := CompileAttachments([]byte(config))
	if err != nil || a == nil {
		t.Fatalf("CompileAttachments: %v, %v", a, err)
	}
	return a
}

func at(data []byte, r [2]int) string { return string(data[r[0]:r[1]]) }

func utf16At(data []byte, r [2]int) string {
	var units []uint16
	for i := r[0]; i+1 < r[1]; i += 2 {
		units = append(units, binary.LittleEndian.Uint16(data[i:]))
	}
	return string(utf16.Decode(units))
}

// TestMinidumpScrubbing: Relay's minidump tests (relay-pii minidumps.rs),
// on a dump the test writes: which selectors reach the stacks, the heap,
// the Linux streams and the module paths, and that a path keeps its base
// name.
func TestMinidumpScrubbing(t *testing.T) {
	stars := func(s string) string { return strings.Repeat("*", len(s)) }
	const winDir = `C:\projects\breakpad-tools\windows\Release`
	for _, tc := range []struct {
		name, config         string
		stack, heap, environ string // "" unchanged
		code, debug          string // the first module's, "" unchanged
		otherCode            string
		changed              bool
	}{
		{name: "$stack_memory", config: `{"applications":{"$stack_memory":["@anything:mask"]}}`,
			stack: stars(stackText), changed: true},
		{name: "$minidump.stack_memory", config: `{"applications":{"$minidump.stack_memory":["@anything:mask"]}}`,
			stack: stars(stackText), changed: true},
		{name: "$minidump.* (a wildcard counts as specific, as in Relay)", config: `{"applications":{"$minidump.*":["@anything:mask"]}}`,
			stack: stars(stackText), heap: stars(heapText), environ: stars(environText), changed: true,
			code: stars(winDir) + `\crash.exe`, debug: stars(winDir) + `\crash.pdb`, otherCode: `********/libc.so.6`},
		{name: "$binary leaves the stack", config: `{"applications":{"$binary":["@anything:mask"]}}`,
			heap: stars(heapText), environ: stars(environText), changed: true},
		{name: "$minidump.$binary leaves the stack", config: `{"applications":{"$minidump.$binary":["@anything:mask"]}}`,
			heap: stars(heapText), environ: stars(environText), changed: true},
		{name: "$attachments.** leaves the stack", config: `{"applications":{"$attachments.**":["@ip:mask"]}}`,
			heap: "heap: ******** bob@example.com heap", environ: "HOME=/home/alice\x00REMOTE=********\x00", changed: true},
		{name: "$binary && !stack_memory", config: `{"applications":{"$binary && !stack_memory":["@anything:mask"]}}`,
			heap: stars(heapText), environ: stars(environText), changed: true},
		{name: "$heap_memory", config: `{"applications":{"$heap_memory":["@email:replace"]}}`,
			heap: "heap: 10.0.0.2 [email]******** heap", changed: true},
		{name: "paths by key", config: `{"applications":{"debug_file":["@anything:mask"],"$attachments.*.code_file":["@anything:mask"]}}`,
			code: stars(winDir) + `\crash.exe`, debug: stars(winDir) + `\crash.pdb`, otherCode: `********/libc.so.6`, changed: true},
		{name: "paths by $string", config: `{"applications":{"$string":["@anything:mask"]}}`,
			code: stars(winDir) + `\crash.exe`, debug: stars(winDir) + `\crash.pdb`, otherCode: `********/libc.so.6`, changed: true},
		{name: "nothing selected", config: `{"applications":{"$user":["@anything:mask"]}}`},
		{name: "other file", config: `{"applications":{"$attachments.'other.dmp'.heap_memory":["@anything:mask"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &testDump{}
			orig := d.build()
			data := bytes.Clone(orig)
			changed := compileAtt(t, tc.config).ScrubMinidump("crash.dmp", data)
			if changed != tc.changed || len(data) != len(orig) {
				t.Fatalf("changed %v, length %d; want %v, %d", changed, len(data), tc.changed, len(orig))
			}
			for _, c := range []struct {
				what      string
				got, want string
				orig      string
			}{
				{"stack", at(data, d.stack), tc.stack, stackText},
				{"heap", at(data, d.heap), tc.heap, heapText},
				{"environ", at(data, d.environ), tc.environ, environText},
				{"code file", utf16At(data, d.codeFiles[0]), tc.code, testModules[0].code},
				{"debug file", strings.TrimSuffix(at(data, d.debugFiles[0]), "\x00"), tc.debug, testModules[0].debug},
				{"other code file", utf16At(data, d.codeFiles[1]), tc.otherCode, testModules[1].code},
			} {
				want := c.want
				if want == "" {
					want = c.orig
				}
				if c.got != want {
					t.Errorf("%s: %q, want %q", c.what, c.got, want)
				}
			}
			if at(data, d.debugFiles[1]) != "libc.so.6\x00" { // no directory: kept
				t.Errorf("debug file without a directory: %q", at(data, d.debugFiles[1]))
			}
			// The structure is intact: the scrubbed dump reads the same.
			p, err := parseMinidump(data)
			if err != nil {
				t.Fatal(err)
			}
			if items, err := p.items(); err != nil || len(items) != 2+2+2+2 {
				t.Fatalf("scrubbed dump: %d items, %v", len(items), err)
			}
		})
	}
}

// TestMinidumpFallback: a dump Relay's parser refuses is scrubbed as a
// plain attachment ($binary, the stack too), as Relay falls back to.
func TestMinidumpFallback(t *testing.T) {
	a := compileAtt(t, `{"applications":{"$binary":["@ip:mask"]}}`)
	for _, d := range []*testDump{
		{noModules: true},   // no module list
		{strayRegion: true}, // a memory region past the end of the file
		{oddUTF: true},      // a module name of an odd byte count
	} {
		data := d.build()
		if !a.ScrubMinidump("crash.dmp", data) {
			t.Fatalf("%+v: not scrubbed", d)
		}
		if got := at(data, d.stack); got != "stack: ******** alice@example.com stack" {
			t.Errorf("noModules %v, strayRegion %v, oddUTF %v: stack %q, want it scrubbed as binary", d.noModules, d.strayRegion, d.oddUTF, got)
		}
	}
	for _, data := range [][]byte{[]byte("MDMP"), []byte("not a minidump at all, 10.0.0.9, really not")} {
		if !bytes.Contains(data, []byte("10.0.0.9")) {
			if a.ScrubMinidump("crash.dmp", data) {
				t.Errorf("%q changed", data)
			}
			continue
		}
		if !a.ScrubMinidump("crash.dmp", data) || bytes.Contains(data, []byte("10.0.0.9")) {
			t.Errorf("not a minidump, scrubbed as binary: %q", data)
		}
	}
}

// TestMinidumpBigEndian: a dump written big-endian is read as such (its
// UTF-16 strings stay little-endian, as Relay reads them).
func TestMinidumpBigEndian(t *testing.T) {
	d := &testDump{order: binary.BigEndian}
	data := d.build()
	if !compileAtt(t, `{"applications":{"$stack_memory":["@ip:mask"]}}`).ScrubMinidump("crash.dmp", data) {
		t.Fatal("not scrubbed")
	}
	if got := at(data, d.stack); got != "stack: ******** alice@example.com stack" {
		t.Errorf("stack %q", got)
	}
}

// TestMinidumpPlainGate: plain attachments are scrubbed only when the
// config names a file; minidumps with any config.
func TestMinidumpPlainGate(t *testing.T) {
	a := compileAtt(t, `{"applications":{"$binary":["@ip:mask"]}}`)
	if a.ScrubsPlain() {
		t.Error("a config naming no file scrubs plain attachments")
	}
	plain := []byte("ip 10.0.0.1")
	if a.Scrub("a.txt", plain) || string(plain) != "ip 10.0.0.1" {
		t.Errorf("plain attachment scrubbed: %q", plain)
	}
	d := &testDump{}
	data := d.build()
	if !a.ScrubMinidump("crash.dmp", data) || at(data, d.heap) == heapText {
		t.Error("minidump heap not scrubbed")
	}
	if a, err := CompileAttachments([]byte(`{"applications":{}}`)); a != nil || err != nil {
		t.Errorf("no applications: %v, %v", a, err)
	}
}

func FuzzMinidump(f *testing.F) {
	f.Add((&testDump{}).build())
	f.Add((&testDump{order: binary.BigEndian}).build())
	f.Add([]byte("MDMP"))
	a, err := CompileAttachments([]byte(`{"applications":{"$binary":["@ip:mask"],"$stack_memory":["@email"],"$string":["@anything:mask"]}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data)
		a.ScrubMinidump("f.dmp", data) // never panics, keeps the length
		if len(data) != n {
			t.Fatal("length changed")
		}
	})
}
