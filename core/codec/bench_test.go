package codec

import (
	"fmt"
	"testing"
)

// benchData is a realistic mix for WAL payloads: JSON-like text records and
// Arrow-like numeric columns, at a typical group-commit frame size and a
// large one.
func benchData() []struct {
	name string
	data []byte
} {
	mixed := func(n int) []byte {
		b := jsonLike(n/2, 21)
		return append(b, columns(n-len(b), 22)...)
	}
	return []struct {
		name string
		data []byte
	}{
		{"json-64KiB", jsonLike(64<<10, 20)},
		{"numbers-64KiB", columns(64<<10, 23)},
		{"mixed-64KiB", mixed(64 << 10)},
		{"mixed-1MiB", mixed(1 << 20)},
		{"mixed-4KiB", mixed(4 << 10)},
	}
}

// BenchmarkEncode reports MB/s of input and the compression ratio
// (input bytes / stored bytes, header included).
func BenchmarkEncode(b *testing.B) {
	for _, c := range allCodecs(b) {
		for _, d := range benchData() {
			b.Run(fmt.Sprintf("%s/%s", c.Name(), d.name), func(b *testing.B) {
				dst := make([]byte, 0, len(d.data)+1024)
				var err error
				b.SetBytes(int64(len(d.data)))
				b.ReportAllocs()
				for b.Loop() {
					dst, err = c.Encode(dst[:0], d.data)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(d.data))/float64(len(dst)), "ratio")
			})
		}
	}
}

// BenchmarkDecode reports MB/s of decoded output.
func BenchmarkDecode(b *testing.B) {
	for _, c := range allCodecs(b) {
		for _, d := range benchData() {
			enc, err := c.Encode(nil, d.data)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%s", c.Name(), d.name), func(b *testing.B) {
				dst := make([]byte, 0, len(d.data))
				b.SetBytes(int64(len(d.data)))
				b.ReportAllocs()
				for b.Loop() {
					dst, err = c.Decode(dst[:0], enc)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(d.data))/float64(len(enc)), "ratio")
			})
		}
	}
}
