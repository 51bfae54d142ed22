// Package file is the lance-file layer of core/lance: the Lance 2.0 data
// file container (§8), written from Arrow arrays and read by column ranges.
//
// It owns:
//
//	file_write.go   Write: pages, FileDescriptor, column metadata, offset tables, footer; Magic
//	file_read.go    OpenReader: footer and metadata parsing; Reader.ReadField by slot range
//	file.go         FileReader: one data file read on its own (tools, fuzzing)
//
// Invariants: global buffer 0 (the FileDescriptor) precedes the column
// metadata and page buffers are padded to 64 bytes, as Lance requires; the
// footer says (0,3) for 2.0 and any other version is refused with
// encoding.ErrUnsupported; every offset and size read from a file is
// checked against the file's size before it is used, so corrupt files are
// errors, never panics; a file is read through an io.ReaderAt and written
// to an io.Writer, so this package knows nothing of paths, durability or
// the store (core/lance/table makes files durable through core/store).
package file
