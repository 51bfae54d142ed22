// Package encoding is the lance-encoding layer of core/lance: Lance 2.0 pages
// and their encodings, buffer compression, and the mapping between Arrow
// types and Lance fields.
//
// It owns:
//
//	types.go        Arrow type <-> Lance logical type strings (§6)
//	schema.go       Field (lance.file.Field), Schema: field ids, the tree, Arrow schemas
//	arrayenc.go     the ArrayEncoding tree of a 2.0 page, decoded (§9)
//	build.go        the ArrayEncoding messages the writer emits
//	compress.go     zstd / lz4 buffer framing (§9.1), on core/codec's shared zstd pair
//	page_write.go   Arrow arrays -> pages, one column per field in pre-order (Encoder, PageSink)
//	page_read.go    pages -> Arrow data (DecodeLeaf), NULL arrays of any type
//	errors.go       ErrUnsupported, shared by file and table
//
// Invariants: a page carries no type of its own, so decoding always takes
// the schema's type; every length and index read from a page is checked
// against its buffers (corrupt pages are errors, never panics, and no claim
// makes the reader allocate more than maxMaterializeBytes or
// maxDecompressed); what this package does not implement is refused with an
// error wrapping ErrUnsupported rather than misread; struct validity is not
// stored (2.0 has none), so struct nulls are pushed down to the children.
// It knows nothing of files, manifests or storage.
package encoding
