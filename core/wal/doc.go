// Package wal is the write-ahead log of the storage core: every record is
// appended here (and fsynced, per the engine's durability mode) before it is
// acknowledged, buffered in memory, and later written to Lance; segments
// whose rows are all in Lance are then released.
//
// Layout. The log is a directory of segment files named
// "%016x-%016x.wal" (sequence number, offset of the first row) so that
// names sort in log order. A segment is a 32-byte header followed by
// 8-byte-aligned frames; format.go documents the bytes. One Append is one
// frame: the offset of its first row, its row count, and an opaque payload
// (Arrow IPC bytes, possibly compressed).
//
// Durability protocol (ALICE, fsyncgate):
//   - A segment is created under a temporary name, its header fsynced,
//     renamed into place, and the directory fsynced, so a visible segment
//     always has a whole header.
//   - Append is a single write(2) of a whole frame; Sync is fdatasync of the
//     active segment. Before a segment stops being active it is fsynced, so
//     a successful Sync covers every earlier frame in every segment.
//   - Segment removals (release, salvage) are each followed by a directory
//     fsync, so after any crash the segments form a contiguous sequence.
//   - Any I/O failure while writing poisons the Log; fsync is never retried.
//     The caller closes the Log and opens it again.
//
// Recovery. Open validates every frame of every segment (CRC-32C), cuts a
// torn or zero-filled tail of the last segment, and refuses (with
// *CorruptionError) damage anywhere else unless Options.TruncateCorrupt is
// set. See Open for the exact rules and RecoveryInfo for what is reported.
//
// Not provided: a directory lock against two processes opening the same
// log, and chained checksums across frames
// (each frame is checked on its own; order is checked through the row
// offsets and the segment sequence).
package wal
