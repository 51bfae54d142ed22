// Package lance reads and writes Lance datasets whose data files use Lance file
// format 2.0, in pure Go, so that the real Lance engine (pylance) can open what
// persisting flushes and persisting can read what Lance appends or compacts.
//
// The byte-level specification is docs/lance-format.md; section numbers
// in comments (§8, §13.1, ...) refer to it.
//
// core/lance is split as Lance itself splits; dependencies run one way,
// table -> file -> encoding -> pb:
//
//	pb        field numbers by name, protobuf wire helpers
//	encoding  pages, encodings, buffer compression, Arrow <-> Lance types and fields
//	file      the data file container: writer, reader, footer, magic
//	table     this package: manifests, transactions, commits, versions,
//	          deletion files, Open / OpenVersion / ListVersions, Append,
//	          ReadRange, schema evolution, compaction and cleanup
//
// Every byte this package reads or writes goes through a core/store.Store
// (Options.Store, else store.Local on Options.FS): commits use its atomic
// put-if-absent, data files its streamed creates, reads its ranged reads.
//
// Files of this package, one job each:
//
//	errors.go          ErrUnsupported, ErrSchemaMismatch, ErrCommitUncertain, ConflictError
//	manifest.go        Manifest, feature flags, carriedField, readable/writable checks
//	manifest_file.go   the manifest file layout, parsing and encoding (§4)
//	fragment.go        DataFragment, DataFile, DeletionFile messages
//	transaction.go     Transaction messages, operation bodies, conflict classification
//	deletion.go        deletion vectors (.arrow via arrowipc.go, .bin via roaring.go)
//	versions.go        _versions/ naming and listing
//	commit.go          the atomic create-if-not-exists commit
//	dataset.go         Options, Open / OpenVersion / ListVersions, the row-range index
//	readrange.go       ReadRange
//	append.go          Append: the commit loop and conflict rebase
//	plan.go            how a record fits the dataset's schema
//	write.go           data files and the extra files of rewritten columns
//	build_manifest.go  the next version's manifest
//	evolve.go          schema evolution on append: evolved field trees
//	compact.go         Compact: planning runs of small fragments, rewriting them
//	compact_commit.go  the Rewrite transaction, its manifest, rebase and conflicts
//	cleanup.go         Cleanup: version retention and unreferenced files
//	indices.go         the index section: index UUIDs and fragment coverage
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
