package intake

import (
	"errors"
	"io"
)

// ErrTooLarge means the body passed its size limit (HTTP 413).
var ErrTooLarge = errors.New("intake: request body exceeds the size limit")

// minGrow is the first allocation of a body of unknown length.
const minGrow = 32 << 10

// Buf is a byte slice whose growth is charged to a Lease. Capacity it had
// when it came from a pool is free; every array it grows into is charged,
// and the array it leaves is handed back (the collector's lag is what the
// GOGC factor in DESIGN.md's formula covers).
type Buf struct {
	B       []byte
	charged int // bytes of cap(B) charged to the lease
}

// Reserve makes cap(b.B)-len(b.B) at least n, charging l for a new array
// when it must grow. On error b is unchanged.
func (b *Buf) Reserve(n int, l *Lease) error {
	if cap(b.B)-len(b.B) >= n {
		return nil
	}
	return b.growTo(len(b.B)+n, l)
}

func (b *Buf) growTo(newCap int, l *Lease) error {
	if err := l.Grow(newCap); err != nil {
		return err
	}
	nb := make([]byte, len(b.B), newCap)
	copy(nb, b.B)
	l.Shrink(b.charged)
	b.B, b.charged = nb, newCap
	return nil
}

// Recycle readies b for a pool once its lease is released: an array larger
// than keep goes back to the allocator, a smaller one stays, uncharged.
func (b *Buf) Recycle(keep int) {
	if cap(b.B) > keep {
		b.B = nil
	}
	b.B, b.charged = b.B[:0], 0
}

// Read appends to b the body r yields: n bytes when n >= 0 (a declared
// Content-Length), else everything until io.EOF. A body longer than limit
// fails with ErrTooLarge, before anything is read when its length is
// declared. On error b keeps its original length.
func Read(b *Buf, r io.Reader, n, limit int, l *Lease) error {
	start := len(b.B)
	if n > limit {
		return ErrTooLarge
	}
	if n < 0 {
		return readAll(b, r, limit, l)
	}
	if err := b.Reserve(n, l); err != nil {
		return err
	}
	b.B = b.B[:start+n]
	if _, err := io.ReadFull(r, b.B[start:]); err != nil {
		b.B = b.B[:start]
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// readAll appends r to b until io.EOF, growing against l, failing with
// ErrTooLarge past limit bytes.
func readAll(b *Buf, r io.Reader, limit int, l *Lease) error {
	start := len(b.B)
	for {
		if len(b.B) == cap(b.B) {
			// 1.5 times the size (32 KiB at first), never more than the
			// limit can still need: one byte past it tells it passed.
			newCap := min(max(cap(b.B)+cap(b.B)/2, len(b.B)+minGrow), start+limit+1)
			if newCap <= len(b.B) {
				b.B = b.B[:start]
				return ErrTooLarge
			}
			if err := b.growTo(newCap, l); err != nil {
				b.B = b.B[:start]
				return err
			}
		}
		room := min(cap(b.B), start+limit+1) - len(b.B)
		m, err := r.Read(b.B[len(b.B) : len(b.B)+room])
		b.B = b.B[:len(b.B)+m]
		if len(b.B)-start > limit {
			b.B = b.B[:start]
			return ErrTooLarge
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			b.B = b.B[:start]
			return err
		}
	}
}
