package table

import (
	"bytes"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/persisting/persisting/core/lance/file"
	"github.com/persisting/persisting/core/lance/pb"
)

// manifestFileOf lays out sections then the Manifest message body, as Lance
// does, and returns the file.
func manifestFileOf(sections, body []byte) []byte {
	b := binary.LittleEndian.AppendUint32(bytes.Clone(sections), uint32(len(body)))
	b = append(b, body...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(sections)))
	b = binary.LittleEndian.AppendUint16(b, manifestFooterMajorZero)
	b = binary.LittleEndian.AppendUint16(b, manifestFooterVersion)
	return append(b, file.Magic...)
}

func lenPrefixed(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// Every top-level field we do not rebuild is carried or dropped by the rule
// of carriedField, in the order read, whatever its wire type.
func TestManifestCarriesUnknownFields(t *testing.T) {
	base := pb.AppendMessage(nil, 1, pb.AppendString(pb.AppendInt32(pb.AppendString(nil, 2, "id"), 4, -1), 5, "int64"))
	base = pb.AppendUint(base, 3, 7)
	base = pb.AppendMessage(base, 15, pb.AppendString(pb.AppendString(nil, 1, "lance"), 2, "2.0"))
	var body, want []byte
	add := func(f []byte, carried bool) {
		body = append(body, f...)
		if carried {
			want = append(want, f...)
		}
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	add(base, false)
	add(varint(4, 99), false)                                          // version_aux_data
	add(pb.AppendString(nil, 8, "tag"), false)                         // tag
	add(varint(14, 12), true)                                          // next_row_id
	add(varint(17, 3), false)                                          // blob_dataset_version (reserved)
	add(pb.AppendMessage(nil, 18, pb.AppendString(nil, 4, "/")), true) // base_paths
	add(pb.AppendMessage(nil, 19, pb.AppendString(pb.AppendString(nil, 1, "k"), 2, "v")), true)
	add(pb.AppendString(nil, 20, "br"), true)
	add(pb.AppendMessage(nil, 22, nil), false)          // fragment_tree
	add(varint(24, 9), false)                           // max_allocated_field_id
	add(pb.AppendMessage(nil, 25, varint(1, 3)), false) // clustering
	add(varint(26, 5), false)                           // max_clustering_id
	add(varint(1000, 1), true)
	add(protowire.AppendFixed64(protowire.AppendTag(nil, 27, protowire.Fixed64Type), 42), true)
	add(protowire.AppendFixed32(protowire.AppendTag(nil, 28, protowire.Fixed32Type), 43), true)
	add(protowire.AppendTag(protowire.AppendVarint(protowire.AppendTag(protowire.AppendTag(nil, 29, protowire.StartGroupType), 1, protowire.VarintType), 5), 29, protowire.EndGroupType), true)
	add(varint(1000, 2), true) // repeated, not adjacent: both kept, in order
	m, err := ParseManifest(manifestFileOf(nil, body))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.carried, want) {
		t.Fatalf("carried\n%x\nwant\n%x", m.carried, want)
	}
	// And the next manifest has them, byte for byte.
	m.version++
	next, err := ParseManifest(m.encodeFile())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(next.carried, want) || next.version != 8 {
		t.Fatalf("re-encoded: version %d, carried %x", next.version, next.carried)
	}
}

// Lance 14 writes the inline transaction's offset in field 23 and prefers it
// to 21 (transaction_section_deprecated); older Lance writes 21 only. Neither
// is ever carried: our commit writes its own offset.
func TestManifestTransactionSection(t *testing.T) {
	a, b := pb.AppendUint(nil, 1, 1), pb.AppendUint(nil, 1, 2) // two Transactions, read_version 1 and 2
	sections := append(lenPrefixed(a), lenPrefixed(b)...)
	base := pb.AppendMessage(nil, 1, pb.AppendString(pb.AppendInt32(pb.AppendString(nil, 2, "id"), 4, -1), 5, "int64"))
	for _, c := range []struct {
		name string
		body []byte
		want []byte
	}{
		{"21 only", pb.AppendUintAlways(bytes.Clone(base), 21, 0), a},
		{"23 only", pb.AppendUintAlways(bytes.Clone(base), 23, uint64(4+len(a))), b},
		{"23 wins", pb.AppendUintAlways(pb.AppendUintAlways(bytes.Clone(base), 23, uint64(4+len(a))), 21, 0), b},
		{"23 wins, either order", pb.AppendUintAlways(pb.AppendUintAlways(bytes.Clone(base), 21, uint64(4+len(a))), 23, 0), a},
	} {
		m, err := ParseManifest(manifestFileOf(sections, c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(m.transaction, c.want) || len(m.carried) != 0 {
			t.Fatalf("%s: transaction %x (want %x), carried %x", c.name, m.transaction, c.want, m.carried)
		}
	}
	if _, err := ParseManifest(manifestFileOf(sections, pb.AppendUintAlways(bytes.Clone(base), 23, 1<<40))); err == nil {
		t.Fatal("a transaction offset beyond the file was accepted")
	}
}
