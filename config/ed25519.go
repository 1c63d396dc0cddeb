package config

import "math/big"

// ed25519Curve holds p = 2^255-19 and d = -121665/121666 mod p.
var ed25519Curve = func() (c struct{ p, d *big.Int }) {
	c.p = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	inv := new(big.Int).ModInverse(big.NewInt(121666), c.p)
	c.d = new(big.Int).Mul(big.NewInt(-121665), inv)
	c.d.Mod(c.d, c.p)
	return c
}()

// IsEd25519Point reports whether a 32-byte compressed Edwards point
// decompresses, exactly as curve25519-dalek's decompress (which Relay's key
// parsing uses): y is taken mod p (non-canonical encodings accepted), and
// the point exists iff x² = (y²-1)/(d·y²+1) is a square mod p. Config
// validation (auth.static_relays) and relay's key parsing share it, so a key
// that `baton config check` accepts also starts.
func IsEd25519Point(b []byte) bool {
	if len(b) != 32 {
		return false
	}
	be := make([]byte, 32) // big-endian y
	for i := range 32 {
		be[31-i] = b[i]
	}
	be[0] &= 0x7f // drop the sign bit of x
	p := ed25519Curve.p
	y := new(big.Int).SetBytes(be)
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, p)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := new(big.Int).Mul(ed25519Curve.d, y2)
	v.Add(v, big.NewInt(1))
	v.ModInverse(v.Mod(v, p), p) // d·y²+1 ≠ 0: -1/d is not a square
	x2 := u.Mul(u, v)
	x2.Mod(x2, p)
	return big.Jacobi(x2, p) >= 0
}
