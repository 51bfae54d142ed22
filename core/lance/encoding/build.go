package encoding

import "github.com/persisting/persisting/core/lance/pb"

// Builders for the encodings the writer emits (§9 table). Sub-messages are
// always emitted, even when empty, because Lance's decoder unwraps them.

func encFlatBytes(bits uint64, buf int, compression string) []byte {
	var b []byte
	b = pb.AppendUint(b, pb.FlatBitsPerValue, bits)
	b = pb.AppendMessage(b, pb.FlatBuffer, pb.AppendUint(nil, pb.BufferIndex, uint64(buf)))
	if compression != "" {
		b = pb.AppendMessage(b, pb.FlatCompression, pb.AppendString(nil, pb.CompressionScheme, compression))
	}
	return pb.AppendMessage(nil, pb.ArrayFlat, b)
}

func encNoNulls(values []byte) []byte {
	noNulls := pb.AppendMessage(nil, pb.NoNullsValues, values)
	return pb.AppendMessage(nil, pb.ArrayNullable, pb.AppendMessage(nil, pb.NullableNoNulls, noNulls))
}

func encSomeNulls(validity, values []byte) []byte {
	someNulls := pb.AppendMessage(pb.AppendMessage(nil, pb.SomeNullsValidity, validity), pb.SomeNullsValues, values)
	return pb.AppendMessage(nil, pb.ArrayNullable, pb.AppendMessage(nil, pb.NullableSomeNulls, someNulls))
}

func encAllNulls() []byte {
	return pb.AppendMessage(nil, pb.ArrayNullable, pb.AppendMessage(nil, pb.NullableAllNulls, nil))
}

func encFSLBytes(dim int, items []byte) []byte {
	fsl := pb.AppendMessage(pb.AppendUint(nil, pb.FixedSizeListDimension, uint64(dim)), pb.FixedSizeListItems, items)
	return pb.AppendMessage(nil, pb.ArrayFixedSizeList, fsl)
}

func encListBytes(offsets []byte, nullAdj, numItems uint64) []byte {
	l := pb.AppendMessage(nil, pb.ListOffsets, offsets)
	l = pb.AppendUint(l, pb.ListNullOffsetAdjustment, nullAdj)
	l = pb.AppendUint(l, pb.ListNumItems, numItems)
	return pb.AppendMessage(nil, pb.ArrayList, l)
}

func encStructBytes() []byte {
	return pb.AppendMessage(nil, pb.ArrayStruct, nil)
}

func encBinaryBytes(indices, bytes []byte, nullAdj uint64) []byte {
	bin := pb.AppendMessage(pb.AppendMessage(nil, pb.BinaryIndices, indices), pb.BinaryBytes, bytes)
	return pb.AppendMessage(nil, pb.ArrayBinary, pb.AppendUint(bin, pb.BinaryNullAdjustment, nullAdj))
}
