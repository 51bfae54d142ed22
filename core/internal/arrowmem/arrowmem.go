// Package arrowmem measures the memory Arrow data holds.
package arrowmem

import "github.com/apache/arrow-go/v18/arrow"

// Bytes is the size of a record's buffers, children included, counting a
// shared buffer once per reference: an estimate for stats, backpressure and
// benchmark throughput, not an allocator figure.
func Bytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
