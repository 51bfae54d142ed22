package engine

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/persisting/persisting/core/codec"
)

// A frame is byte for byte the Arrow IPC stream ipc.Writer writes (so logs
// written before the schema message was cached replay the same way), and it
// decodes to the batch, across schema changes, with every codec.
func TestFramesAreWholeIPCStreams(t *testing.T) {
	var enc frameEncoder
	recs := []struct {
		name string
		vals []int64
	}{{"x", []int64{1, 2}}, {"x", []int64{3}}, {"y", []int64{4, 5, 6}}, {"x", []int64{7}}}
	for _, c := range []string{"none", "zstd", "lz4", "snappy"} {
		cd, err := codec.ByName(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			rec := intBatch(t, r.name, r.vals...)
			payload, raw, err := enc.encode(rec, cd)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			w := ipc.NewWriter(&want, ipc.WithSchema(rec.Schema()))
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			w.Close()
			data, err := codec.Decode(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, want.Bytes()) || raw != want.Len() {
				t.Fatalf("%s %v: frame differs from ipc.Writer's stream (%d vs %d bytes)", c, r, len(data), want.Len())
			}
			got, err := decodeFrame(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !array.RecordEqual(got, rec) {
				t.Fatalf("%s %v: decoded %v", c, r, got)
			}
			got.Release()
			rec.Release()
		}
	}
}
