package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes. In YAML it is an integer or a string with a
// unit: B; KB, MB, GB, TB, PB (powers of 1000); KiB, MiB, GiB, TiB, PiB
// (powers of 1024). Units are case-insensitive, a space may separate them from
// the number, and a decimal fraction is allowed when the result is a whole
// number of bytes ("1.5GiB").
type ByteSize int64

// Byte size units.
const (
	Byte ByteSize = 1
	KB   ByteSize = 1000
	MB   ByteSize = 1000 * KB
	GB   ByteSize = 1000 * MB
	TB   ByteSize = 1000 * GB
	PB   ByteSize = 1000 * TB
	KiB  ByteSize = 1 << 10
	MiB  ByteSize = 1 << 20
	GiB  ByteSize = 1 << 30
	TiB  ByteSize = 1 << 40
	PiB  ByteSize = 1 << 50
)

// ErrByteSize is wrapped by every ParseByteSize error.
var ErrByteSize = errors.New("invalid byte size")

var sizeUnits = map[string]ByteSize{
	"": Byte, "b": Byte,
	"kb": KB, "mb": MB, "gb": GB, "tb": TB, "pb": PB,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB, "pib": PiB,
}

// ParseByteSize parses a size such as "1048576", "64MiB", "10 GB" or
// "1.5KiB". Errors wrap ErrByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("%w %q: must not be negative", ErrByteSize, s)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if num == "" || !ok {
		return 0, fmt.Errorf("%w %q: want a whole number of bytes or a number with a unit "+
			"(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. \"64MiB\"", ErrByteSize, s)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" {
		whole = "0"
	}
	if strings.Contains(frac, ".") || (frac == "" && strings.HasSuffix(num, ".")) {
		return 0, fmt.Errorf("%w %q: malformed number", ErrByteSize, s)
	}
	// Exact arithmetic: (whole + frac/10^len(frac)) * mult must be an integer
	// that fits in an int64.
	r, ok := new(big.Rat).SetString(whole + "." + frac + "0")
	if !ok {
		return 0, fmt.Errorf("%w %q: malformed number", ErrByteSize, s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("%w %q: not a whole number of bytes", ErrByteSize, s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%w %q: too large (max %d bytes)", ErrByteSize, s, int64(math.MaxInt64))
	}
	return ByteSize(r.Num().Int64()), nil
}

// String formats b with the largest unit that divides it exactly: 64MiB,
// 10GB, 1234B. ParseByteSize accepts the result.
func (b ByteSize) String() string {
	if b < 0 {
		return strconv.FormatInt(int64(b), 10) + "B"
	}
	if b == 0 {
		return "0B"
	}
	for _, u := range []struct {
		size ByteSize
		name string
	}{{PiB, "PiB"}, {PB, "PB"}, {TiB, "TiB"}, {TB, "TB"}, {GiB, "GiB"}, {GB, "GB"}, {MiB, "MiB"}, {MB, "MB"}, {KiB, "KiB"}, {KB, "KB"}} {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText formats b like String.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses text with ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
