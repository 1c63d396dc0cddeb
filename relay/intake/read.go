package intake

import (
	"errors"
	"io"
)

// ErrTooLarge means the body passed its size limit (HTTP 413).
var ErrTooLarge = errors.New("intake: request body exceeds the size limit")

// minGrow is the first allocation of a body read as it arrives.
const minGrow = 32 << 10

// Buf is a byte slice whose memory is charged to a Lease: every array it
// grows into in full, and the part of a pooled array a request uses, so
// that neither a large body nor many small ones escape the budget. The
// array a Buf leaves is handed back at once (the collector's lag is what
// the GOGC factor in DESIGN.md's formula covers).
type Buf struct {
	B       []byte
	charged int // bytes of B's array charged to the lease
}

// Reserve makes cap(b.B)-len(b.B) at least n, charging l for what it will
// use. On error b is unchanged.
func (b *Buf) Reserve(n int, l *Lease) error {
	need := len(b.B) + n
	if need > cap(b.B) {
		return b.growTo(need, l)
	}
	return b.charge(need, l)
}

// charge makes the lease pay for the first upTo bytes of b's array.
func (b *Buf) charge(upTo int, l *Lease) error {
	if upTo <= b.charged {
		return nil
	}
	if err := l.Grow(upTo - b.charged); err != nil {
		return err
	}
	b.charged = upTo
	return nil
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
// fails with ErrTooLarge, and a declared length the budget could never
// give the request with ErrOverBudget, both before anything is read. Memory is reserved as bytes arrive, never for a length only
// declared: a client that announces a large body and sends nothing holds
// nothing. On error b keeps its original length.
func Read(b *Buf, r io.Reader, n, limit int, l *Lease) error {
	start := len(b.B)
	if n > limit {
		return ErrTooLarge
	}
	if n > cap(b.B)-start && !l.couldGrow(n) {
		return ErrOverBudget
	}
	end := start + limit + 1 // one byte past the limit tells it passed
	if n >= 0 {
		end = start + n
	}
	for len(b.B) < end {
		if len(b.B) == cap(b.B) {
			// 1.5 times the size (32 KiB at first), never past end.
			if err := b.growTo(min(max(cap(b.B)+cap(b.B)/2, len(b.B)+minGrow), end), l); err != nil {
				b.B = b.B[:start]
				return err
			}
		}
		room := min(cap(b.B), end)
		if err := b.charge(room, l); err != nil {
			b.B = b.B[:start]
			return err
		}
		m, err := r.Read(b.B[len(b.B):room])
		b.B = b.B[:len(b.B)+m]
		if n < 0 && len(b.B)-start > limit {
			b.B = b.B[:start]
			return ErrTooLarge
		}
		switch {
		case err == io.EOF && n < 0:
			return nil
		case err == io.EOF && len(b.B) < end:
			err = io.ErrUnexpectedEOF
		case err == io.EOF:
			err = nil
		}
		if err != nil {
			b.B = b.B[:start]
			return err
		}
	}
	return nil
}
