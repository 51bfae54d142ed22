package file

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/lance/encoding"
)

// The list example of encodings_v2_0.proto, [[A,B], null, [], [C,D,E]],
// with the adjustment the proto recommends (1 + number of items = 6):
// offsets [2, 8, 2, 5].
func TestWriteListSpecExample(t *testing.T) {
	rec := recordOf(t, `[{"l":["A","B"]},{"l":null},{"l":[]},{"l":["C","D","E"]}]`, nf("l", arrow.ListOf(arrow.BinaryTypes.String)))
	_, r := writeRecordFile(t, rec, WriteOptions{MaxPageBytes: 1 << 20})
	p := r.columns[0].pages[0]
	if p.enc.Kind != encoding.EncList || p.enc.NullAdj != 6 || p.enc.NumItems != 5 {
		t.Fatalf("list encoding %+v", *p.enc)
	}
	f, _ := os.ReadFile(r.path)
	bufs, _ := r.readBuffers(bytes.NewReader(f), &p)
	if !bytes.Equal(bufs[0], u64s(2, 8, 2, 5)) {
		t.Fatalf("offsets %x", bufs[0])
	}
}

func TestRefuseDataFile21(t *testing.T) {
	rec := recordOf(t, `[{"x": 1}]`, nf("x", arrow.PrimitiveTypes.Int64))
	_, r := writeRecordFile(t, rec, WriteOptions{MaxPageBytes: 1 << 20})
	data, _ := os.ReadFile(r.path)
	binary.LittleEndian.PutUint16(data[len(data)-8:], 2)
	binary.LittleEndian.PutUint16(data[len(data)-6:], 1)
	if _, err := OpenFile(bytes.NewReader(data), int64(len(data)), "x.lance"); !errors.Is(err, encoding.ErrUnsupported) {
		t.Fatalf("2.1 footer: %v", err)
	}
}
