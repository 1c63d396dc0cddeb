package intake

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// failReader fails the test if anything reads it.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Fatal("the body was read although its declared length is over the limit")
	return 0, io.EOF
}

func TestReadDeclaredLength(t *testing.T) {
	b := NewBudget(1 << 20)
	l := b.Lease()
	body := bytes.Repeat([]byte("z"), 1000)
	var buf Buf
	if err := Read(&buf, bytes.NewReader(body), len(body), 1000, &l); err != nil || !bytes.Equal(buf.B, body) {
		t.Fatalf("err %v, %d bytes", err, len(buf.B))
	}
	if l.Held() != 1000 || cap(buf.B) != 1000 {
		t.Fatalf("a declared length is allocated exactly and charged: held %d, cap %d", l.Held(), cap(buf.B))
	}
	buf.B = buf.B[:0]
	if err := Read(&buf, failReader{t}, 1001, 1000, &l); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("declared over the limit: %v", err)
	}
	if err := Read(&buf, failReader{t}, 1<<20, 2<<20, &l); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("declared over what the budget could ever give: %v", err)
	}
	if err := Read(&buf, bytes.NewReader(body[:10]), 20, 1000, &l); !errors.Is(err, io.ErrUnexpectedEOF) || len(buf.B) != 0 {
		t.Fatalf("short body: %v, %d bytes kept", err, len(buf.B))
	}
	// A pooled array is not allocated again, but what the request uses of
	// it is charged.
	l.Release()
	buf.Recycle(SmallRequest)
	if err := Read(&buf, bytes.NewReader(body[:600]), 600, 1000, &l); err != nil || l.Held() != 600 || cap(buf.B) != 1000 {
		t.Fatalf("reusing a pooled array: err %v, held %d, cap %d", err, l.Held(), cap(buf.B))
	}
	l.Release()

	// A declared length holds nothing until its bytes arrive.
	l = NewBudget(4 << 20).Lease()
	pr, pw := io.Pipe()
	defer pw.Close()
	held := make(chan int64)
	go func() {
		pw.Write(body[:100])
		held <- l.Held()
		pw.Write(body[100:])
		held <- l.Held()
	}()
	go Read(&Buf{}, pr, 1<<20, 1<<20, &l)
	if h := <-held; h > minGrow {
		t.Fatalf("after 100 bytes of a declared MiB, %d bytes are held", h)
	}
	<-held
}

func TestReadChunked(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB, unknown length
	b := NewBudget(64 << 20)
	l := b.Lease()
	var buf Buf
	if err := Read(&buf, iotest.HalfReader(bytes.NewReader(body)), -1, len(body), &l); err != nil || !bytes.Equal(buf.B, body) {
		t.Fatalf("err %v, %d bytes", err, len(buf.B))
	}
	if l.Held() != int64(cap(buf.B)) {
		t.Fatalf("held %d, but the array in use is %d: old arrays must be handed back", l.Held(), cap(buf.B))
	}
	if cap(buf.B) > len(body)+1 {
		t.Fatalf("capacity %d for a %d byte body at its limit", cap(buf.B), len(body))
	}
	l.Release()

	buf = Buf{}
	if err := Read(&buf, bytes.NewReader(body), -1, len(body)-1, &l); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
	l.Release()

	small := NewBudget(512 << 10)
	l = small.Lease()
	buf = Buf{}
	if err := Read(&buf, bytes.NewReader(body), -1, 1<<30, &l); !errors.Is(err, ErrOverBudget) {
		t.Fatalf("a chunked body larger than the budget: %v", err)
	}
	if len(buf.B) != 0 {
		t.Fatalf("kept %d bytes", len(buf.B))
	}
	l.Release()
	if small.Used() != 0 {
		t.Fatalf("used %d", small.Used())
	}
}

// BenchmarkRead is reading a 5 KB body of declared length off the wire
// into a pooled buffer.
func BenchmarkRead(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 5<<10)
	budget := NewBudget(64 << 20)
	var buf Buf
	r := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		l := budget.Lease()
		r.Reset(body)
		buf.B = buf.B[:0]
		if err := Read(&buf, r, len(body), 1<<20, &l); err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}
