package encoding

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/klauspost/compress/zstd"

	"github.com/persisting/persisting/core/lance/pb"
)

func u64s(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func decodeOne(t *testing.T, enc []byte, typ arrow.DataType, n uint64, bufs ...[]byte) arrow.Array {
	t.Helper()
	e, err := DecodeArrayEncoding(enc, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeLeaf(e, typ, n, bufs)
	if err != nil {
		t.Fatal(err)
	}
	return array.MakeFromData(d)
}

// The string page of §9 notes: ["n0", null, "n2"] is stored as end offsets
// [2, 7, 4] with null_adjustment 5 and data "n0n2".
func TestDecodeBinarySpecExample(t *testing.T) {
	enc := encBinaryBytes(encNoNulls(encFlatBytes(64, 0, "")), encFlatBytes(8, 1, ""), 5)
	a := decodeOne(t, enc, arrow.BinaryTypes.String, 3, u64s(2, 7, 4), []byte("n0n2"))
	if a.String() != `["n0" (null) "n2"]` {
		t.Fatalf("got %v", a)
	}
}

// Dictionary pages as Lance's 2.0 writer emits them: index 0 is null.
func TestDecodeDictionary(t *testing.T) {
	items := encBinaryBytes(encNoNulls(encFlatBytes(64, 1, "")), encFlatBytes(8, 2, ""), 13)
	enc := pb.AppendMessage(nil, 7, pb.AppendUint(pb.AppendMessage(pb.AppendMessage(nil, 1, encNoNulls(encFlatBytes(8, 0, ""))), 2, items), 3, 3))
	a := decodeOne(t, enc, arrow.BinaryTypes.String, 5, []byte{0, 1, 2, 3, 1}, u64s(5, 9, 12), []byte("greenbluered"))
	if a.String() != `[(null) "green" "blue" "red" "green"]` {
		t.Fatalf("got %v", a)
	}
	_, err := DecodeLeaf(mustEnc(t, enc), arrow.BinaryTypes.String, 1, [][]byte{{4}, u64s(5, 9, 12), []byte("greenbluered")})
	if err == nil {
		t.Fatal("dictionary index beyond the items was accepted")
	}
}

func mustEnc(t *testing.T, b []byte) *ArrayEncoding {
	e, err := DecodeArrayEncoding(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCompressionFraming(t *testing.T) {
	raw := bytes.Repeat([]byte("lance buffer "), 200)
	for _, scheme := range []string{CompressionZstd, CompressionLZ4} {
		out, ok, err := compressBuffer(scheme, raw)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", scheme, ok, err)
		}
		switch scheme {
		case CompressionZstd:
			if binary.LittleEndian.Uint64(out) != uint64(len(raw)) || !bytes.Equal(out[8:12], zstdMagic) {
				t.Fatalf("zstd framing %x", out[:12])
			}
		case CompressionLZ4:
			if binary.LittleEndian.Uint32(out) != uint32(len(raw)) {
				t.Fatalf("lz4 framing %x", out[:4])
			}
		}
		back, err := decompressBuffer(scheme, out)
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("%s round trip: %v", scheme, err)
		}
	}
	// Lance's reader also accepts a bare zstd frame.
	enc, _ := zstd.NewWriter(nil)
	if back, err := decompressBuffer(CompressionZstd, enc.EncodeAll(raw, nil)); err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("bare zstd frame: %v", err)
	}
	// The reference writer's literal-only LZ4 block.
	lit := append([]byte{5, 0, 0, 0, 0x50}, "hello"...)
	if back, err := decompressBuffer(CompressionLZ4, lit); err != nil || string(back) != "hello" {
		t.Fatalf("literal-only lz4 block: %q %v", back, err)
	}
	// Incompressible data is not marked compressed.
	if _, ok, _ := compressBuffer(CompressionLZ4, []byte("abc")); ok {
		t.Fatal("3 bytes compressed")
	}
}
