// Package lance reads and writes Lance datasets whose data files use Lance file
// format 2.0, in pure Go, so that the real Lance engine (pylance) can open what
// persisting flushes and persisting can read what Lance appends or compacts.
//
// The byte-level specification is shared/docs/lance-format.md; section numbers
// in comments (§8, §13.1, ...) refer to it.
//
// Layout of the package, one job per file:
//
//	errors.go         ErrUnsupported, ErrSchemaMismatch, ErrCommitUncertain, ConflictError
//	pb.go             protobuf wire helpers (hand encoding with protowire)
//	types.go          Arrow type <-> Lance logical type strings
//	schema.go         Lance fields, field ids, the schema tree
//	encoding.go       the 2.0 ArrayEncoding tree (decode and build)
//	compress.go       zstd / lz4 buffer framing
//	page_write.go     Arrow arrays -> 2.0 pages
//	page_read.go      2.0 pages -> Arrow arrays
//	file_write.go     the data-file container writer
//	file_read.go      the data-file container reader and column range reads
//	file.go           FileReader: one data file read on its own (tools, fuzzing)
//	manifest.go       the Manifest protobuf and the manifest file layout
//	transaction.go    Transaction protobufs and conflict classification
//	deletion.go       deletion vectors (.arrow via arrowipc.go, .bin via roaring.go)
//	versions.go       _versions/ naming and listing
//	commit.go         atomic create-if-not-exists commit
//	dataset.go        Open / OpenVersion / ListVersions and the row-range index
//	append.go         Append: planning, extra files for rewritten columns, conflict rebase
//	evolve.go         schema evolution on append: evolved field trees, value conversion
//	readrange.go      ReadRange
//
// Invariants this package keeps on every commit (§13): data files, deletion
// files and manifests are immutable once referenced; a fragment id or a field
// id is never reused; config, table and schema metadata, base paths, the index
// section, the transaction-file feature flag and the manifest fields this
// package does not know (except the per-version ones listed at carriedField)
// are carried forward verbatim, and so is everything stored in the existing
// fragments and schema fields; a manifest becomes visible only through an
// atomic create-if-not-exists.
package table
