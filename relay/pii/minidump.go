package pii

import (
	"encoding/binary"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// Minidumps, scrubbed by their structure as Relay's relay-pii minidumps.rs
// does it, so that the stack memory crash processing needs survives
// generic rules. The file is the path [$attachments root, file name] with
// type $minidump; below it:
//
//   - each memory region of the memory list that is a thread's stack:
//     key stack_memory, types $binary and $stack_memory, pii maybe (only
//     specific selectors reach it: `$stack_memory`,
//     `$minidump.stack_memory`; not `**` nor `$binary`);
//   - every other region: heap_memory, $binary and $heap_memory, pii true;
//   - the Linux environ and cmdline streams: key "", $binary, pii true;
//   - each module's file path (UTF-16LE) and debug file name (UTF-8, from
//     a PDB 7.0 or 2.0 CodeView record): code_file and debug_file, type
//     $string, pii true; only the directory is scrubbed, the base name is
//     kept.
//
// Memory and streams are scrubbed as attachments are (bytes, then the
// UTF-16LE text between matches), the paths in their own encoding only.
// Everything stays in place and keeps its length. A file that does not
// parse as a minidump (a missing thread, memory or module list, a region
// or string outside the file, a path that does not decode) is scrubbed as
// a plain attachment, type $binary, as Relay falls back to; like Relay,
// what was scrubbed before the fault is kept.

// Minidump format constants (Microsoft's minidumpapiset.h, Breakpad's
// Linux streams).
const (
	mdSignature  = 0x504d444d // "MDMP"
	mdVersion    = 0xa793     // the low half of the header's version
	mdHeaderSize = 32
	mdDirEntry   = 12

	mdThreadList   = 3
	mdModuleList   = 4
	mdMemoryList   = 5
	mdLinuxCmdLine = 0x47670006
	mdLinuxEnviron = 0x47670007

	mdThreadSize = 48  // MINIDUMP_THREAD
	mdMemorySize = 16  // MINIDUMP_MEMORY_DESCRIPTOR
	mdModuleSize = 108 // MINIDUMP_MODULE

	cvPDB70 = 0x53445352 // "RSDS": signature, GUID, age, then the name
	cvPDB20 = 0x3031424e // "NB10": signature, offset, timestamp, age, then the name
)

// errMinidump is any fault reading a minidump's structure.
var errMinidump = errors.New("pii: malformed minidump")

type dumpKind uint8

const (
	dumpStack dumpKind = iota
	dumpHeap
	dumpLinux // environ, cmdline
	dumpCodeFile
	dumpDebugFile
)

// dumpItem is a part of a minidump to scrub: data[start:end].
type dumpItem struct {
	kind       dumpKind
	start, end int
}

// minidump reads the structure of a minidump.
type minidump struct {
	data  []byte
	order binary.ByteOrder
	dir   []byte // the stream directory
}

func parseMinidump(data []byte) (*minidump, error) {
	if len(data) < mdHeaderSize {
		return nil, errMinidump
	}
	d := &minidump{data: data, order: binary.LittleEndian}
	switch binary.LittleEndian.Uint32(data) {
	case mdSignature:
	case 0x4d444d50: // written big-endian
		d.order = binary.BigEndian
	default:
		return nil, errMinidump
	}
	if d.order.Uint32(data[4:])&0xffff != mdVersion {
		return nil, errMinidump
	}
	n, rva := int(d.order.Uint32(data[8:])), int(d.order.Uint32(data[12:]))
	dir, ok := d.slice(rva, n*mdDirEntry)
	if !ok || n > len(data)/mdDirEntry {
		return nil, errMinidump
	}
	d.dir = dir
	return d, nil
}

// slice is data[off:off+n], if it is inside data.
func (d *minidump) slice(off, n int) ([]byte, bool) {
	if off < 0 || n < 0 || off > len(d.data) || n > len(d.data)-off {
		return nil, false
	}
	return d.data[off : off+n], true
}

func (d *minidump) u32(b []byte, off int) int { return int(d.order.Uint32(b[off:])) }

// stream is the range of the first stream of type t; ok is false when the
// dump has none. A stream outside the file is an error.
func (d *minidump) stream(t uint32) (start, end int, ok bool, err error) {
	for e := d.dir; len(e) >= mdDirEntry; e = e[mdDirEntry:] {
		if d.order.Uint32(e) != t {
			continue
		}
		size, rva := d.u32(e, 4), d.u32(e, 8)
		if _, in := d.slice(rva, size); !in {
			return 0, 0, false, errMinidump
		}
		return rva, rva + size, true, nil
	}
	return 0, 0, false, nil
}

// list is the entries of a list stream of type t (a count, then entries
// of size bytes each); a missing stream is an error, as for Relay.
func (d *minidump) list(t uint32, size int) ([]byte, int, error) {
	start, end, ok, err := d.stream(t)
	if err != nil || !ok || end-start < 4 {
		return nil, 0, errMinidump
	}
	n := d.u32(d.data, start)
	if n > (end-start-4)/size {
		return nil, 0, errMinidump
	}
	return d.data[start+4 : start+4+n*size], n, nil
}

// items is what to scrub, in Relay's order: the memory regions, the Linux
// streams, then each module's paths (a module name shared by several
// modules once).
func (d *minidump) items() ([]dumpItem, error) {
	threads, nt, err := d.list(mdThreadList, mdThreadSize)
	if err != nil {
		return nil, err
	}
	mems, nm, err := d.list(mdMemoryList, mdMemorySize)
	if err != nil {
		return nil, err
	}
	stacks := make(map[int]struct{}, nt)
	for j := range nt { // a thread's stack descriptor has its rva at 36
		stacks[d.u32(threads[j*mdThreadSize:], 36)] = struct{}{}
	}
	var items []dumpItem
	for i := range nm {
		m := mems[i*mdMemorySize:]
		size, rva := d.u32(m, 8), d.u32(m, 12)
		kind := dumpHeap
		if _, ok := stacks[rva]; ok {
			kind = dumpStack
		}
		items = append(items, dumpItem{kind, rva, rva + size})
	}
	for _, t := range [...]uint32{mdLinuxEnviron, mdLinuxCmdLine} {
		start, end, ok, err := d.stream(t)
		if err != nil {
			return nil, err
		}
		if ok {
			items = append(items, dumpItem{dumpLinux, start, end})
		}
	}
	mods, nmod, err := d.list(mdModuleList, mdModuleSize)
	if err != nil {
		return nil, err
	}
	seen := make(map[int]struct{}, nmod)
	for i := range nmod {
		m := mods[i*mdModuleSize:]
		rva := d.u32(m, 20)
		if _, ok := seen[rva]; ok {
			continue
		}
		seen[rva] = struct{}{}
		b, ok := d.slice(rva, 4)
		if !ok {
			return nil, errMinidump
		}
		items = append(items, dumpItem{dumpCodeFile, rva + 4, rva + 4 + d.u32(b, 0)})
		cvSize, cvRVA := d.u32(m, 76), d.u32(m, 80)
		sig, ok := d.slice(cvRVA, 4)
		if !ok {
			return nil, errMinidump
		}
		switch d.order.Uint32(sig) {
		case cvPDB70:
			items = append(items, dumpItem{dumpDebugFile, cvRVA + 24, cvRVA + cvSize})
		case cvPDB20:
			items = append(items, dumpItem{dumpDebugFile, cvRVA + 16, cvRVA + cvSize})
		}
	}
	// The parts of a real dump do not overlap. Parts that do (a list of
	// many regions over the same bytes) would cost the rules' work once
	// per copy: such a file is scrubbed whole, once, as malformed.
	total := 0
	for _, it := range items {
		if it.start > it.end || it.end > len(d.data) {
			return nil, errMinidump
		}
		if total += it.end - it.start; total > len(d.data) {
			return nil, errMinidump
		}
	}
	return items, nil
}

// ScrubMinidump scrubs data, the payload of the minidump attachment named
// filename, in place by its structure (see above) and reports whether it
// changed anything. Its length stays. Every minidump of a project with a
// piiConfig is scrubbed, whatever the config's selectors name, as Relay's
// attachment processing does.
func (a *Attachments) ScrubMinidump(filename string, data []byte) bool {
	if a == nil || len(data) == 0 {
		return false
	}
	file := []state{
		{key: []byte{}, types: tAttachments, pii: piiTrue},
		{key: []byte(filename), types: tMinidump, pii: piiTrue},
		{}, // the part
	}
	changed, err := a.scrubMinidump(file, data)
	if err != nil {
		file[1].types = tBinary
		changed = a.scrubPath(file[:2], data, scrubAll) || changed
	}
	return changed
}

func (a *Attachments) scrubMinidump(path []state, data []byte) (bool, error) {
	d, err := parseMinidump(data)
	if err != nil {
		return false, err
	}
	items, err := d.items()
	if err != nil {
		return false, err
	}
	part := &path[len(path)-1]
	changed := false
	for _, it := range items {
		b := data[it.start:it.end]
		switch it.kind {
		case dumpStack:
			*part = state{key: []byte("stack_memory"), types: tBinary | tStackMemory, pii: piiMaybe}
			changed = a.scrubPath(path, b, scrubAll) || changed
		case dumpHeap:
			*part = state{key: []byte("heap_memory"), types: tBinary | tHeapMemory, pii: piiTrue}
			changed = a.scrubPath(path, b, scrubAll) || changed
		case dumpLinux:
			*part = state{key: []byte{}, types: tBinary, pii: piiTrue}
			changed = a.scrubPath(path, b, scrubAll) || changed
		case dumpCodeFile:
			if !validUTF16LE(b) {
				return changed, errMinidump
			}
			*part = state{key: []byte("code_file"), types: tString, pii: piiTrue}
			if i := lastSepUTF16(b); i >= 0 {
				changed = a.scrubPath(path, b[:i], scrubUTF16Only) || changed
			}
		case dumpDebugFile:
			if !utf8.Valid(b) {
				return changed, errMinidump
			}
			*part = state{key: []byte("debug_file"), types: tString, pii: piiTrue}
			if i := lastSep(b); i >= 0 {
				changed = a.scrubPath(path, b[:i], scrubUTF8Only) || changed
			}
		}
	}
	return changed, nil
}

// validUTF16LE reports whether b is whole UTF-16LE code units with every
// surrogate paired.
func validUTF16LE(b []byte) bool {
	if len(b)%2 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 2 {
		u := rune(binary.LittleEndian.Uint16(b[i:]))
		if !utf16.IsSurrogate(u) {
			continue
		}
		if u >= 0xdc00 || i+3 >= len(b) {
			return false
		}
		if v := binary.LittleEndian.Uint16(b[i+2:]); v < 0xdc00 || v > 0xdfff {
			return false
		}
		i += 2
	}
	return true
}

// lastSepUTF16 is the byte offset of the last '/' or '\' of UTF-16LE b,
// or -1.
func lastSepUTF16(b []byte) int {
	for i := len(b) - 2; i >= 0; i -= 2 {
		if u := binary.LittleEndian.Uint16(b[i:]); u == '/' || u == '\\' { // never half of a pair
			return i
		}
	}
	return -1
}

// lastSep is the offset of the last '/' or '\' of b, or -1.
func lastSep(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' || b[i] == '\\' {
			return i
		}
	}
	return -1
}
