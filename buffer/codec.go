package buffer

import (
	"encoding/binary"
	"hash/crc32"
	"time"
)

// Key prefixes. Each key space is contiguous and ordered by (stream, seq), so
// one stream's records form one range that DeleteRange and iterator bounds can
// address directly.
const (
	prefixMeta       = 'm' // 'm' stream            → meta value
	prefixQuarantine = 'q' // 'q' stream seq        → raw corrupt value
	prefixRecord     = 'r' // 'r' stream seq        → record value
)

const (
	metaKeyLen   = 1 + 4
	recordKeyLen = 1 + 4 + 8

	recordVersion   = 1
	recordHeaderLen = 1 + 4 + 8 // version, crc32c, append unix-nanos

	metaVersion   = 2
	metaLen       = 1 + 8*8 + 4 // version, 8 counters, crc32c
	metaVersionV1 = 1           // without weights: decoded, then weighed at Open
	metaLenV1     = 1 + 6*8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize is the number of bytes a record with a payload of n bytes adds to
// the budget: its key plus its value, which is what Pebble stores (before
// compression).
func recordSize(n int) int64 { return int64(recordKeyLen + recordHeaderLen + n) }

func putRecordKey(dst []byte, prefix byte, s Stream, q Seq) {
	_ = dst[recordKeyLen-1]
	dst[0] = prefix
	binary.BigEndian.PutUint32(dst[1:], uint32(s))
	binary.BigEndian.PutUint64(dst[5:], uint64(q))
}

func recordKey(s Stream, q Seq) []byte {
	k := make([]byte, recordKeyLen)
	putRecordKey(k, prefixRecord, s, q)
	return k
}

func quarantineKey(s Stream, q Seq) []byte {
	k := make([]byte, recordKeyLen)
	putRecordKey(k, prefixQuarantine, s, q)
	return k
}

// streamEnd is the exclusive upper bound of every key of stream s in the key
// space of prefix.
func streamEnd(prefix byte, s Stream) []byte {
	k := make([]byte, metaKeyLen)
	k[0] = prefix
	binary.BigEndian.PutUint32(k[1:], uint32(s))
	for i := len(k) - 1; i > 0; i-- { // increment stream id, carrying
		k[i]++
		if k[i] != 0 {
			return k
		}
	}
	return []byte{prefix + 1}
}

func decodeRecordKey(k []byte) (prefix byte, s Stream, q Seq, ok bool) {
	if len(k) != recordKeyLen {
		return 0, 0, 0, false
	}
	return k[0], Stream(binary.BigEndian.Uint32(k[1:])), Seq(binary.BigEndian.Uint64(k[5:])), true
}

func metaKey(s Stream) []byte {
	k := make([]byte, metaKeyLen)
	k[0] = prefixMeta
	binary.BigEndian.PutUint32(k[1:], uint32(s))
	return k
}

// putRecordValue encodes a record value into dst, which must be exactly
// recordHeaderLen+len(payload) bytes. The checksum covers the append time and
// the payload, so a flipped bit in either is caught.
func putRecordValue(dst []byte, appended int64, payload []byte) {
	dst[0] = recordVersion
	binary.BigEndian.PutUint64(dst[5:], uint64(appended))
	copy(dst[recordHeaderLen:], payload)
	binary.BigEndian.PutUint32(dst[1:], crc32.Checksum(dst[5:], castagnoli))
}

// decodeRecordValue returns the payload (aliasing v) and the append time, or
// ok=false if v is short, of an unknown version or fails its checksum.
func decodeRecordValue(v []byte) (payload []byte, appended time.Time, ok bool) {
	if len(v) < recordHeaderLen || v[0] != recordVersion {
		return nil, time.Time{}, false
	}
	if crc32.Checksum(v[5:], castagnoli) != binary.BigEndian.Uint32(v[1:]) {
		return nil, time.Time{}, false
	}
	return v[recordHeaderLen:], time.Unix(0, int64(binary.BigEndian.Uint64(v[5:]))), true
}

// meta is the durable per-stream state. It is rewritten in every batch that
// changes it, so it is always consistent with the records in the same batch.
// Pending records, bytes and weight are derived from the counters, which
// keeps Open O(streams) instead of O(records).
type meta struct {
	Watermark     Seq   // every seq ≤ Watermark is acked or dropped
	Next          Seq   // next seq to assign; never reused
	AppendedCount int64 // records ever appended
	AppendedBytes int64
	RemovedCount  int64 // records ever acked, dropped or quarantined
	RemovedBytes  int64
	// Weights (Options.Weigh) of the records appended and removed; since
	// meta version 2.
	AppendedWeight int64
	RemovedWeight  int64
}

func (m *meta) pendingCount() int64  { return m.AppendedCount - m.RemovedCount }
func (m *meta) pendingBytes() int64  { return m.AppendedBytes - m.RemovedBytes }
func (m *meta) pendingWeight() int64 { return m.AppendedWeight - m.RemovedWeight }

func (m *meta) encode(dst []byte) []byte {
	dst = append(dst[:0], metaVersion)
	for _, v := range [...]uint64{uint64(m.Watermark), uint64(m.Next),
		uint64(m.AppendedCount), uint64(m.AppendedBytes), uint64(m.RemovedCount), uint64(m.RemovedBytes),
		uint64(m.AppendedWeight), uint64(m.RemovedWeight)} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
}

// decode reads a meta of either version; weighed is false for version 1,
// whose pending weight Open must compute from the records.
func (m *meta) decode(v []byte) (ok, weighed bool) {
	n := len(v)
	if n == 0 || !(n == metaLen && v[0] == metaVersion || n == metaLenV1 && v[0] == metaVersionV1) ||
		crc32.Checksum(v[:n-4], castagnoli) != binary.BigEndian.Uint32(v[n-4:]) {
		return false, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[1+8*i:]) }
	*m = meta{Seq(u(0)), Seq(u(1)), int64(u(2)), int64(u(3)), int64(u(4)), int64(u(5)), 0, 0}
	if weighed = v[0] == metaVersion; weighed {
		m.AppendedWeight, m.RemovedWeight = int64(u(6)), int64(u(7))
	}
	return m.Watermark < m.Next && m.RemovedCount <= m.AppendedCount && m.RemovedBytes <= m.AppendedBytes, weighed
}
