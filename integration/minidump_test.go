package integration

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"mime/multipart"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/ulikunitz/xz"

	"github.com/baton-relay/baton/envelope"
)

func compressWith(t *testing.T, format string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	var err error
	switch format {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zlib":
		w = zlib.NewWriter(&b)
	case "zstd":
		w, err = zstd.NewWriter(&b)
	case "xz":
		w, err = xz.NewWriter(&b)
	case "xz, 8 blocks":
		w, err = xz.WriterConfig{BlockSize: 4096}.NewWriter(&b)
	default:
		t.Fatalf("no compressor %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// minidumpForm is a crashpad-style upload: the dump under
// upload_file_minidump, plus a sentry field.
func minidumpForm(t *testing.T, filename string, dump []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="upload_file_minidump"; filename=%q`, filename))
	h.Set("Content-Type", "application/octet-stream")
	pw, _ := mw.CreatePart(h)
	pw.Write(dump)
	mw.WriteField("sentry", `{"release":"r1"}`)
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// TestCompressedMinidumps: every compression container Relay accepts on the
// minidump endpoint is accepted, and what reaches Kafka is the minidump
// itself, decompressed; a container that inflates past
// limits.max_attachment_size is refused with 413, and an xz stream that
// declares a dictionary too large to allocate with 400, before decoding.
func TestCompressedMinidumps(t *testing.T) {
	n := startNode(t, "limits:\n  max_attachment_size: 1MiB\n")
	dump := readTestdata(t, "minidump.dmp")
	url := n.url + "/api/1/minidump/?sentry_key=" + testKey

	type upload struct {
		name string
		body []byte
		ct   string
	}
	var ok []upload
	containers := map[string][]byte{
		"none":              dump,
		"bzip2 (bzip2 CLI)": readTestdata(t, "minidump.dmp.bz2"),
		"xz, 4 blocks, sizes in headers (xz CLI)": readTestdata(t, "minidump-4blocks.dmp.xz"),
	}
	for _, f := range []string{"gzip", "zlib", "zstd", "xz", "xz, 8 blocks"} {
		containers[f] = compressWith(t, f, dump)
	}
	for name, body := range containers {
		ok = append(ok, upload{name + ", raw body", body, "application/octet-stream"})
		ct, form := minidumpForm(t, "crash.dmp", body)
		ok = append(ok, upload{name + ", multipart", form, ct})
	}
	ids := map[string]string{} // event id (hex) → upload
	for _, u := range ok {
		status, resp, _ := post(t, url, u.body, map[string]string{"Content-Type": u.ct})
		id, err := envelope.ParseEventID(resp)
		if status != 200 || err != nil {
			t.Errorf("%s: POST = %d %q, want 200 and the event id", u.name, status, resp)
			continue
		}
		ids[id.String()] = u.name
	}

	bomb := append([]byte("MDMP\x93\xa7\x00\x00"), make([]byte, 8<<20)...)
	bombs := map[string][]byte{"bzip2 (bzip2 CLI)": readTestdata(t, "bomb-8MiB.dmp.bz2")}
	for _, f := range []string{"gzip", "zlib", "zstd", "xz"} {
		bombs[f] = compressWith(t, f, bomb)
	}
	for name, body := range bombs {
		status, resp, _ := post(t, url, body, map[string]string{"Content-Type": "application/octet-stream"})
		if status != 413 || !strings.Contains(resp, "max_attachment_size") {
			t.Errorf("%s bomb (%d bytes inflating to 8 MiB): POST = %d %s, want 413", name, len(body), status, resp)
		}
	}
	bigDict := xzDeclaringDictionary(t, compressWith(t, "xz", dump), 30) // 128 MiB
	status, resp, _ := post(t, url, bigDict, map[string]string{"Content-Type": "application/octet-stream"})
	if status != 400 || !strings.Contains(resp, "dictionary") {
		t.Errorf("xz declaring a 128 MiB dictionary: POST = %d %s, want 400", status, resp)
	}

	seen := map[string]bool{}
	consumeUntil(t, n.kafka, "baton.error", 20*time.Second, func(recs []*kgo.Record) bool {
		for _, r := range recs[len(seen):] {
			env, err := envelope.Parse(r.Value)
			if err != nil {
				t.Fatalf("record is not an envelope: %v", err)
			}
			name := ids[env.Header.EventID.String()]
			seen[env.Header.EventID.String()] = true
			var got []byte
			for _, it := range env.Items {
				if it.AttachmentType == envelope.AttachmentTypeMinidump {
					got = it.Payload
				}
			}
			if !bytes.Equal(got, dump) {
				t.Errorf("%s: the forwarded minidump is %d bytes, not the %d-byte dump decompressed", name, len(got), len(dump))
			}
		}
		return len(seen) >= len(ids)
	})
	st := waitBalanced(t, n, 10*time.Second)
	if got := st.Rejected["too_large"]; got != int64(len(bombs)) {
		t.Errorf("rejected too_large = %d, want %d (the bombs)", got, len(bombs))
	}
	if got := st.Classes["error"].Delivered.Records; got != int64(len(ids)) {
		t.Errorf("error records delivered = %d, want %d", got, len(ids))
	}
}

// xzDeclaringDictionary rewrites the dictionary size of the first block of a
// single-block xz stream to code (the header's CRC fixed), which leaves a
// valid stream that makes a decoder allocate that dictionary.
func xzDeclaringDictionary(t *testing.T, stream []byte, code byte) []byte {
	t.Helper()
	s := bytes.Clone(stream)
	size := (int(s[12]) + 1) * 4
	h := s[12 : 12+size]
	if h[1]&0xc3 != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected xz block header % x", h)
	}
	h[4] = code
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return s
}
